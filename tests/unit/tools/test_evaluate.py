"""Tests for controller/tools/evaluate.py: fast-time evaluation end to end, its scores and its CLI.

Short traces (tens of seconds at 10-20 Hz) so the whole module runs in seconds; no wall-clock
assertions (speed lives in bench/evaluate.py). The loop's inputs are tested in test_closed_loop.py,
ageing and the run record in test_run_record.py.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from controller.control.controller import make_dispatch
from controller.control.services import contracts_from
from controller.control.vehicles import lookup
from controller.tools import evaluate as ev
from controller.tools.closed_loop import EFFICIENCY_RANGE
from controller.tools.evaluate import EvaluateError, evaluate, main
from sim_chargers.fleetfile import FleetSpec, parse_fleet
from sim_chargers.traces import Trace
from tests.unit.tools.eval_inputs import ariya_fleet, run_dr, step_trace

SPEC_KEYS = {"service", "contract_kw", "dispatch", "n_vehicles", "duration_s", "compliance_pct",
             "max_shortfall_pct", "energy_shortfall_kwh", "start_delay_s_max",
             "full_delivery_s_max", "soc_min", "soc_max", "losses_kwh"}


def test_ample_ariya_fleet_on_a_dr_step_is_highly_compliant() -> None:
    res = run_dr(100.0)  # 30 x 10 kW for a 100 kW contract
    assert res.compliance_pct >= 99.0
    assert res.max_shortfall_pct < 5.0
    assert res.n_events == 1
    assert res.start_delay_s_max is not None
    assert res.start_delay_s_max <= 2.0  # DR: start by 2 s
    assert res.full_delivery_s_max is not None
    assert res.full_delivery_s_max <= 10.0  # DR: full by 10 s


def test_same_fleet_with_a_huge_contract_falls_short() -> None:
    res = run_dr(1000.0)  # 300 kW of fleet for 1 MW
    assert res.compliance_pct < 70.0  # only the 15 s before and after the step comply
    assert res.max_shortfall_pct > 60.0
    assert res.energy_shortfall_kwh > 1.0
    assert res.events_not_full == 1
    assert res.full_delivery_s_max is None


def test_same_seed_gives_the_same_result_and_another_seed_does_not() -> None:
    def scores(seed: int) -> dict[str, Any]:
        d = run_dr(250.0, seed=seed).to_dict()
        del d["wall_time_s"]
        return d

    assert scores(3) == scores(3)
    assert scores(3) != scores(4)


def test_without_variation_the_seed_does_not_matter() -> None:
    a = run_dr(250.0, seed=1, variation_frac=0.0).to_dict()
    b = run_dr(250.0, seed=2, variation_frac=0.0).to_dict()
    for d in (a, b):
        del d["wall_time_s"], d["seed"]
    assert a == b


def test_json_has_every_spec_key_and_is_one_line() -> None:
    text = run_dr(100.0).to_json()
    assert "\n" not in text
    doc = json.loads(text)
    assert doc.keys() >= SPEC_KEYS | {"wall_time_s", "steps"}
    assert doc["service"] == "DR-L"
    assert doc["contract_kw"] == 100.0
    assert doc["dispatch"] == "compensated"
    assert doc["n_vehicles"] == 30
    assert doc["losses_kwh"] > 0.0
    assert doc["losses_modelled"] is True
    assert "dynamics-aware" in doc["dispatch_note"]


def test_soc_range_covers_the_run_and_falls_when_exporting() -> None:
    res = run_dr(100.0)
    assert 0.0 <= res.soc_min < 0.8 <= res.soc_max <= 1.0


def test_compound_service_is_scored_as_one_at_one_volume() -> None:
    # SoC 0.5: at 0.8 (the top of the default 20-80 % window) the fleet may not charge for DC-H
    res = evaluate(ariya_fleet(soc=0.5), step_trace(50.6, hold_s=10.0),
                   contracts_from([("DC", 100.0)]))
    assert res.service == "DC"
    assert res.contract_kw == 100.0
    assert res.n_events == 1
    assert res.start_delay_s_max is not None  # it charged in answer to the high frequency


def test_sffr_is_held_after_the_frequency_recovers() -> None:
    # 2 s dip below 49.7 Hz, then 50 Hz: SFFR must keep exporting (hold 30 min)
    trace = Trace(np.array([0.0, 5.0, 7.0, 40.0]), np.array([50.0, 49.6, 50.0, 50.0]))
    res = evaluate(ariya_fleet(), trace, contracts_from([("SFFR", 100.0)]))
    assert res.service == "SFFR"
    assert res.n_events == 1
    assert res.compliance_pct > 95.0  # delivered throughout the held period
    assert res.soc_min < 0.8 - 100 * 30 / 3600 / (30 * 87) * 0.9  # ~30 s x 100 kW exported


def test_losses_are_what_the_efficiency_makes_of_the_throughput() -> None:
    # 30 Ariyas export 100 kW for 30 s at the middle of the seed's 94.7-99 % (no variation):
    # the batteries give 100 kW / eta, so the losses are 100 kW x 30 s x (1/eta - 1)
    res = run_dr(100.0, dispatch="naive", variation_frac=0.0)
    eta = sum(EFFICIENCY_RANGE) / 2
    exported_kwh = 100.0 * 30 / 3600  # about: ramps in and out roughly cancel the 10 s window
    assert res.losses_kwh == pytest.approx(exported_kwh * (1 / eta - 1), rel=0.1)


def mixed_fleet(count: int = 10) -> FleetSpec:
    models = ["VW ID3", "Nissan Ariya", "Nissan LEAF e+", "Skoda Enyaq iV 60", "Tesla M3 LRDM",
              "Renault Zoe 40"]
    return parse_fleet({"group": [{"model": m, "count": count, "charger_kw": 11, "soc": 0.5}
                                  for m in models]})


@pytest.mark.parametrize("f_event", [49.5, 50.5])
def test_compensated_holds_dc_on_a_mixed_fleet_where_naive_misses_the_deadline(
        f_event: float) -> None:
    # issue 4 item 5's fleet: 10 of each Table 11 model, 11 kW, SoC 0.5; DC at 150 kW, a step to
    # saturation held 20 s after 15 s at 50 Hz (readiness needs ~10 s to build from idle)
    trace = step_trace(f_event, pre_s=15.0, hold_s=20.0, post_s=10.0, rate_hz=10.0)
    dc = contracts_from([("DC", 150.0)])
    naive = evaluate(mixed_fleet(), trace, dc, dispatch="naive")
    comp = evaluate(mixed_fleet(), trace, dc, dispatch="compensated")
    assert naive.full_delivery_s_max is not None
    assert naive.full_delivery_s_max > 3.0
    assert naive.compliance_pct < 95.0
    assert comp.compliance_pct >= 98.5
    assert comp.compliance_pct > naive.compliance_pct + 6.0
    assert comp.full_delivery_s_max is not None
    assert comp.full_delivery_s_max <= 1.5
    assert 0.45 < comp.soc_min <= comp.soc_max < 0.55


def test_controller_knows_library_values_while_the_plant_uses_the_file(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    real = make_dispatch

    def spy(name: str, priors: Any = None) -> Any:
        seen.append(list(priors))
        return real(name, priors)

    monkeypatch.setattr(ev, "make_dispatch", spy)
    slow = ariya_fleet(count=4, t_a_s=5.0)  # file override: the plant starts 10x later
    # naive: the compensated dispatch keeps vehicles flowing, so t_a would not show
    res = evaluate(slow, step_trace(49.8), contracts_from([("DR-L", 20.0)]),
                   variation_frac=0.0, dispatch="naive")
    assert seen == [[lookup("Nissan Ariya")] * 4]
    assert res.start_delay_s_max is not None
    assert res.start_delay_s_max >= 5.0  # the plant did use the file's 5 s


def test_ocpp_delay_postpones_the_response() -> None:
    def delay(d: float) -> float:
        res = run_dr(100.0, ocpp_delay_s=d, variation_frac=0.0)
        assert res.start_delay_s_max is not None
        return res.start_delay_s_max

    assert delay(1.0) == pytest.approx(delay(0.0) + 1.0, abs=0.06)


def test_progress_is_reported_up_to_done() -> None:
    seen: list[float] = []
    run_dr(100.0, progress=seen.append)
    assert seen[0] == 0.0
    assert seen[-1] == 1.0
    assert seen == sorted(seen)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"dispatch": "clever"}, "dispatch"),
    ({"variation_frac": 1.0}, "variation_frac"),
    ({"ocpp_delay_s": -0.1}, "ocpp_delay_s"),
    ({"tick_s": 0.0}, "tick_s"),
    ({"warmup_s": -1.0}, "warmup_s"),
    ({"warmup_s": 45.0}, "warmup_s"),  # the whole 45 s trace: nothing left to score
])
def test_bad_parameters_are_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(EvaluateError, match=match):
        run_dr(100.0, **kwargs)


def test_warmup_is_run_but_not_scored() -> None:
    # 1 MW on a 300 kW fleet misses the tube only during the 30 s hold (5 s .. 35 s): leaving
    # out the first 4 s keeps every miss and drops 80 in-tube samples, so compliance falls by
    # exactly what the sample counts say; the fleet's state (SoC, losses) is the same run.
    full, later = run_dr(1000.0), run_dr(1000.0, warmup_s=4.0)
    n_full, n_later = full.steps, full.steps - 80
    missed = (1 - full.compliance_pct / 100) * n_full
    assert later.compliance_pct == pytest.approx(100 * (1 - missed / n_later))
    assert later.compliance_pct < full.compliance_pct - 1.0
    assert (later.warmup_s, later.steps, later.duration_s) == (4.0, full.steps, full.duration_s)
    assert (later.soc_min, later.losses_kwh) == (full.soc_min, full.losses_kwh)
    assert later.max_shortfall_pct == full.max_shortfall_pct


def test_no_contract_is_refused() -> None:
    with pytest.raises(EvaluateError, match="contract"):
        evaluate(ariya_fleet(), step_trace(49.8), [])


# -- CLI ------------------------------------------------------------------------------------------
@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text('[[group]]\nmodel = "Nissan Ariya"\ncount = 20\ncharger_kw = 10\n'
                     "soc = 0.9\n", encoding="utf-8")
    trace = tmp_path / "trace.csv"
    trace.write_text("t_s,f_hz\n0,50.0\n2,49.5\n12,50.0\n15,50.0\n", encoding="utf-8")
    return fleet, trace


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_json_prints_one_object(files: tuple[Path, Path],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    fleet, trace = files
    rc, out, err = cli(["--fleet", str(fleet), "--trace", str(trace), "--service", "DC-L",
                        "--contract-kw", "100", "--dispatch", "naive", "--seed", "5", "--json"],
                       capsys)
    assert rc == 0, err
    doc = json.loads(out)
    assert doc.keys() >= SPEC_KEYS
    assert (doc["service"], doc["dispatch"], doc["seed"], doc["n_vehicles"]) == (
        "DC-L", "naive", 5, 20)


def test_cli_without_json_prints_a_summary(files: tuple[Path, Path],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    fleet, trace = files
    rc, out, _ = cli(["--fleet", str(fleet), "--trace", str(trace), "--service", "DC",
                      "--contract-kw", "50"], capsys)
    assert rc == 0
    assert "compliance" in out
    assert out.lstrip().startswith("DC 50 kW, 20 vehicles")


def test_cli_warmup_is_passed_and_shown(files: tuple[Path, Path],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    fleet, trace = files
    base = ["--fleet", str(fleet), "--trace", str(trace), "--service", "DC", "--contract-kw",
            "50", "--warmup-s", "1.5"]
    rc, out, _ = cli([*base, "--json"], capsys)
    assert rc == 0
    assert json.loads(out)["warmup_s"] == 1.5
    rc, out, _ = cli(base, capsys)
    assert "(scored from 1.5 s)" in out


def test_progress_bar_only_on_a_terminal(files: tuple[Path, Path]) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    fleet, trace = files
    args = ["--fleet", str(fleet), "--trace", str(trace), "--service", "DC-L",
            "--contract-kw", "100"]
    p = __import__("argparse").ArgumentParser()
    ev._add_arguments(p)
    out, tty, pipe = io.StringIO(), Tty(), io.StringIO()
    assert ev.run(p.parse_args(args), out=out, err=tty) == 0
    assert ev.run(p.parse_args(args), out=out, err=pipe) == 0
    assert "100 %" in tty.getvalue()
    assert pipe.getvalue() == ""


@pytest.mark.parametrize(("change", "match"), [
    ({"--fleet": "missing.toml"}, "no such fleet file"),
    ({"--fleet": "bad.toml"}, "not valid TOML"),
    ({"--trace": "missing.csv"}, "no such trace file"),
    ({"--trace": "bad.csv"}, "header"),
    ({"--service": "XYZ"}, "unknown service"),
    ({"--contract-kw": "0"}, "contract_kw"),
    ({"--contract-kw": "-5"}, "contract_kw"),
    ({"--contract-kw": "lots"}, "--contract-kw"),
    ({"--seed": "x"}, "--seed"),
    ({"--variation": "1.5"}, "variation_frac"),
    ({"--warmup-s": "soon"}, "--warmup-s"),
    ({"--warmup-s": "20"}, "warmup_s"),  # the trace is 15 s long
])
def test_cli_bad_input_exits_2_with_one_line(files: tuple[Path, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str],
                                             change: dict[str, str], match: str) -> None:
    (tmp_path / "bad.toml").write_text("[[group]\n", encoding="utf-8")
    (tmp_path / "bad.csv").write_text("time,freq\n0,50\n", encoding="utf-8")
    fleet, trace = files
    opts = {"--fleet": str(fleet), "--trace": str(trace), "--service": "DC-L",
            "--contract-kw": "100"}
    for key, val in change.items():
        opts[key] = val if val[0] not in "mb" else str(tmp_path / val)
    argv = [x for kv in opts.items() for x in kv] + ["--json"]
    rc, out, err = cli(argv, capsys)
    assert rc == 2
    assert out == ""
    assert err.count("\n") == 1
    assert match in err


def test_cli_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = cli(["--fleet", "x.toml"], capsys)
    assert rc == 2
    assert "required" in err


def test_add_subparser_registers_evaluate() -> None:
    import argparse  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="v2ghub")
    sub = parser.add_subparsers(dest="command", required=True)
    ev.add_subparser(sub)
    args = parser.parse_args(["evaluate", "--fleet", "f", "--trace", "t", "--service", "DR",
                              "--contract-kw", "1"])
    assert args.func is ev.run
    assert args.dispatch == "compensated"


# -- CLI: battery price and the run record --------------------------------------------------------
AGEING_KEYS = {"ageing_loss_pct_mean", "ageing_loss_pct_max", "ageing_cost",
               "battery_price_per_kwh"}


def test_cli_battery_price_and_record(files: tuple[Path, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    fleet, trace = files
    base = ["--fleet", str(fleet), "--trace", str(trace), "--service", "DC-L",
            "--contract-kw", "100", "--json"]
    rc, out, _ = cli(base, capsys)
    assert rc == 0
    doc = json.loads(out)
    assert doc.keys() >= AGEING_KEYS
    assert doc["battery_price_per_kwh"] == ev.BATTERY_PRICE_PER_KWH
    record = tmp_path / "run.json"
    rc, out, _ = cli([*base, "--battery-price", "300", "--record", str(record)], capsys)
    assert rc == 0
    doc3 = json.loads(out)
    assert doc3["ageing_cost"] == pytest.approx(3 * doc["ageing_cost"] * 100 / doc[
        "battery_price_per_kwh"])
    saved = json.loads(record.read_text())
    assert saved["format"] == ev.RECORD_FORMAT
    assert saved["summary"]["ageing_cost"] == doc3["ageing_cost"]


@pytest.mark.parametrize(("extra", "match"), [
    (["--battery-price", "-1"], "battery_price_per_kwh"),
    (["--battery-price", "free"], "--battery-price"),
    (["--record", "/nonexistent-dir/run.json"], "--record: cannot write"),
])
def test_cli_bad_price_or_record_path_exits_2(files: tuple[Path, Path], extra: list[str],
                                              match: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    fleet, trace = files
    rc, out, err = cli(["--fleet", str(fleet), "--trace", str(trace), "--service", "DC-L",
                        "--contract-kw", "100", "--json", *extra], capsys)
    assert rc == 2
    assert out == ""
    assert err.count("\n") == 1
    assert match in err


def test_compensated_dispatch_keeps_vehicles_in_their_soc_window_through_evaluate() -> None:
    # one vehicle of each model near each edge of the 20-80 % window: the plant's SoC reaches
    # the dispatch through fleet.soc_frac, the low ones take the charging half of the standing
    # baseline and the high ones the discharging half, so nobody moves outward
    from sim_chargers import tracelib  # noqa: PLC0415

    models = ["VW ID3", "Nissan Ariya", "Nissan LEAF e+", "Skoda Enyaq iV 60", "Tesla M3 LRDM",
              "Renault Zoe 40"]
    spec = parse_fleet({"group": [{"model": m, "count": 1, "charger_kw": 11, "soc": s}
                                  for m in models for s in (0.25, 0.75)]})
    trace = tracelib.generate("gb-normal", seconds=300, seed=1, rate_hz=10.0)
    res = evaluate(spec, trace, contracts_from([("DC", 30.0)]), dispatch="compensated")
    assert res.soc_min >= 0.25 - 1e-4
    assert res.soc_max <= 0.75 + 1e-4
    assert res.compliance_pct >= 99.0

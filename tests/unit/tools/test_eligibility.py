"""Tests for controller/tools/eligibility.py: seed Table 12 (paper), strict, simulated, CLI."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.control.services import DEFAULT_DEFINITIONS, ContractedService
from controller.control.vehicles import TABLE_11, VehicleModel
from controller.tools import eligibility as el
from sim_chargers.fleetfile import FleetSpec
from sim_chargers.traces import Trace

TIMINGS = {t.name: t for t in el.service_timings()}
ARIYA, TESLA, LEAF, ID3, ZOE = TABLE_11[1], TABLE_11[4], TABLE_11[2], TABLE_11[0], TABLE_11[5]

# Seed Table 12, all 24 cells: (vehicle, service) -> (eligible, EVs, reasons).
YES100 = (True, 100, ())
LTR = (False, None, ("LTR",))
TABLE_12 = {
    "VW ID3 Pro (2023)": (YES100, LTR, LTR, LTR),
    "Nissan Ariya (2022)": (YES100, (True, 152, ()), (True, 152, ()), YES100),
    "Nissan LEAF e+ (2022)": (YES100, LTR, LTR, LTR),
    "Skoda Enyaq iV 60 (2021)": (YES100, LTR, LTR, YES100),
    "Tesla M3 LRDM (2020)": (YES100, (False, None, ("LTR", "MTFL")),
                             (False, None, ("LTR", "MTFL")), (True, 137, ())),
    "Renault Zoe 40 (2018)": (YES100, LTR, LTR, LTR),
}
PAPER_CELLS = [(v, s, exp) for v, row in TABLE_12.items()
               for s, exp in zip(("SFFR", "DC", "DM", "DR"), row, strict=True)]


def _paper() -> dict[tuple[str, str], el.Verdict]:
    return {(v.vehicle, v.service): v
            for v in el.assess_all(el.default_groups(), el.service_timings(), "paper")}


def test_paper_mode_covers_exactly_the_24_cells_of_table_12() -> None:
    assert set(_paper()) == {(v, s) for v, s, _ in PAPER_CELLS}
    assert len(PAPER_CELLS) == 24


@pytest.mark.parametrize(("vehicle", "service", "expected"), PAPER_CELLS)
def test_paper_mode_reproduces_seed_table_12_cell(vehicle: str, service: str,
                                                  expected: tuple[bool, int | None,
                                                                  tuple[str, ...]]) -> None:
    v = _paper()[(vehicle, service)]
    assert (v.eligible, v.evs_needed, v.reasons) == expected


def test_service_timings_are_seed_table_10() -> None:
    got = {n: (t.start_s, t.full_s, t.sustain_s / 60, t.volume_kw) for n, t in TIMINGS.items()}
    assert got == {"SFFR": (30.0, 30.0, 30.0, 1000.0), "DC": (0.5, 1.0, 15.0, 1000.0),
                   "DM": (0.5, 1.0, 30.0, 1000.0), "DR": (2.0, 10.0, 60.0, 1000.0)}


def test_service_timings_fall_back_to_the_local_table_when_a_product_is_undefined() -> None:
    only_dc = {"DC-L": DEFAULT_DEFINITIONS["DC-L"]}
    assert el.service_timings(only_dc) == el.FALLBACK_TIMINGS


def test_mtfl_floor_is_the_only_rule_marking_tesla_dc_and_nothing_else() -> None:
    marked = {k for k, v in _paper().items() if "MTFL" in v.reasons}
    assert marked == {("Tesla M3 LRDM (2020)", "DC"), ("Tesla M3 LRDM (2020)", "DM")}
    # A floor just above the next-weakest 1 s ramp (Leaf, 5.75 kW) would mark more cells.
    loose = el.Limits(min_ev_power_kw=5.76)
    leaf = el.assess(el.FleetGroup("leaf", LEAF), TIMINGS["DC"], "paper", limits=loose)
    assert "MTFL" in leaf.reasons


@pytest.mark.parametrize(("model", "service", "session", "expected"), [
    # from idle: t_a is dead time inside T_full (Ariya 6.59 kW/s x 0.5 s = 3.295 kW)
    (ARIYA, "DC", "idle", (True, 304, ())),
    (TESLA, "DR", "idle", (True, 172, ())),  # 0.73 x (10 - 2) = 5.84 kW
    (ID3, "DC", "idle", (False, None, ("LTR", "MTFL"))),  # t_a 2.54 s > T_full: nothing by 1 s
    (ID3, "DR", "idle", (False, None, ("LTR",))),
    (TESLA, "SFFR", "idle", (True, 100, ())),
    # kept in an active session: t_c, headroom 10 - 1.38 kW
    (LEAF, "DC", "active", (True, 180, ())),  # 5.75 x 0.97 = 5.58 kW
    (ZOE, "DM", "active", (True, 182, ())),
    (TESLA, "DC", "active", (False, None, ("MTFL",))),  # 0.73 x 0.98 < 1 kW
    (ID3, "DC", "active", (False, None, ("LTR",))),  # t_c 0.78 s > 0.5 s
    (ARIYA, "SFFR", "active", (True, 117, ())),  # ceil(1000 / 8.62)
])
def test_strict_mode_cases(model: VehicleModel, service: str, session: el.Session,
                           expected: tuple[bool, int | None, tuple[str, ...]]) -> None:
    v = el.assess(el.FleetGroup(model.name, model), TIMINGS[service], "strict", session)
    assert (v.eligible, v.evs_needed, v.reasons) == expected


def test_strict_is_never_more_generous_than_paper_from_idle() -> None:
    for g in el.default_groups():
        for t in TIMINGS.values():
            assert (el.per_ev_power_kw(g, t, "strict")
                    <= el.per_ev_power_kw(g, t, "paper") + 1e-12)


def test_duration_fails_when_usable_energy_cannot_hold_the_power_for_the_delivery_length() -> None:
    zoe = el.FleetGroup("zoe", ZOE, soc_frac=0.2)  # 8.82 kWh < 10 kW x 60 min
    v = el.assess(zoe, TIMINGS["DR"], "paper")
    assert v.reasons == ("LTR", "duration")
    ariya = el.FleetGroup("ariya", ARIYA, soc_frac=0.2)  # 17.4 kWh >= 10 kWh
    assert el.assess(ariya, TIMINGS["DR"], "paper").eligible
    floor = el.Limits(soc_min_frac=0.1)  # 8.7 kWh usable
    assert el.assess(ariya, TIMINGS["DR"], "paper", limits=floor).reasons == ("duration",)


def test_volume_fails_when_the_group_is_too_small() -> None:
    small = el.FleetGroup("ariya", ARIYA, count=151)
    assert el.assess(small, TIMINGS["DC"], "paper").reasons == ("volume",)
    assert el.assess(replace(small, count=152), TIMINGS["DC"], "paper").evs_needed == 152


def test_fleet_row_combines_groups_strongest_first() -> None:
    groups = [el.FleetGroup("ariya", ARIYA, count=60), el.FleetGroup("tesla", TESLA, count=100),
              el.FleetGroup("leaf", LEAF, count=500)]
    rows = {(v.vehicle, v.service): v
            for v in el.assess_all(groups, [TIMINGS["DR"]], "paper")}
    assert rows[("ariya", "DR")].reasons == ("volume",)
    assert rows[("leaf", "DR")].reasons == ("LTR",)
    fleet = rows[("fleet (all groups)", "DR")]
    # 60 Ariyas x 10 kW = 600 kW, then ceil(400 / 7.3) = 55 Teslas
    assert (fleet.eligible, fleet.evs_needed) == (True, 115)
    short = el.assess_all(groups[1:], [TIMINGS["DC"]], "paper")[-1]
    assert (short.eligible, short.reasons) == (False, ("LTR", "MTFL", "volume"))


def test_evs_for_ignores_float_dust() -> None:
    assert el.evs_for(1000.0, 10.000000000001) == 100
    assert el.evs_for(1000.0, 6.59) == 152


def test_format_table_has_a_row_per_vehicle_and_seed_style_cells() -> None:
    text = el.format_table(el.assess_all(el.default_groups(), el.service_timings()), "paper")
    lines = text.splitlines()
    assert lines[1].split() == ["vehicle", "SFFR", "DC", "DM", "DR"]
    assert len(lines) == 2 + len(TABLE_11)
    tesla = next(line for line in lines if line.startswith("Tesla"))
    assert "No (LTR, MTFL)" in tesla
    assert "Yes (137)" in tesla


# -- simulated mode ----------------------------------------------------------------------------
@given(threshold=st.integers(1, 3000), first=st.integers(1, 3000), max_n=st.integers(1, 3000))
def test_bisection_finds_the_smallest_passing_count(threshold: int, first: int,
                                                    max_n: int) -> None:
    calls: list[int] = []

    def passes(n: int) -> bool:
        calls.append(n)
        return n >= threshold

    got = el.min_evs_by_bisection(passes, first, max_n)
    assert got == (threshold if threshold <= max_n else None)
    assert len(calls) <= 2 * math.ceil(math.log2(3000)) + 2


@dataclass
class _Result:
    compliance_pct: float


class StandInEvaluator:
    """Small evaluator injected in place of controller.tools.evaluate.evaluate.

    Compliance = 100 % x the share of the contract that n vehicles reach by T_full under the
    strict from-idle rule; it records every call.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[int, str, float, str, int]] = []
        self.warmups: set[float] = set()

    def __call__(self, spec: FleetSpec, trace: Trace, contracts: list[ContractedService], *,
                 dispatch: str, seed: int, warmup_s: float) -> _Result:
        (c,) = contracts
        m = spec.models[0]
        self.calls.append((spec.n, c.definition.name, float(trace.f_hz[-1]), dispatch, seed))
        self.warmups.add(warmup_s)
        per_ev_w = min(float(spec.charger_w[0]),
                       m.ramp_up_w_s * max(0.0, c.definition.full_s - m.t_a_s))
        return _Result(100.0 * min(1.0, spec.n * per_ev_w / c.contract_w))


def test_simulated_mode_bisects_to_the_fewest_evs_reaching_the_target() -> None:
    fake = StandInEvaluator()
    sim = el.SimSettings(target_pct=95.0, dispatch="naive", seed=7)
    groups = [el.FleetGroup(ARIYA.name, ARIYA), el.FleetGroup(TESLA.name, TESLA)]
    verdicts, skipped = el.assess_simulated(groups, [TIMINGS["DC"], TIMINGS["DR"]], fake,
                                            sim=sim)
    got = {(v.vehicle, v.service): (v.eligible, v.evs_needed, v.reasons) for v in verdicts}
    assert skipped == []
    assert got == {
        (ARIYA.name, "DC"): (True, math.ceil(950 / (6.59 * 0.5)), ()),  # 289
        # 95 EVs reach 95 % of the tube, but 95 x 10 kW cannot carry a 1 MW contract
        (ARIYA.name, "DR"): (True, 100, ()),
        (TESLA.name, "DC"): (False, None, ("MTFL",)),  # never reaches 95 %
        (TESLA.name, "DR"): (True, math.ceil(950 / (0.73 * 8)), ()),
    }
    assert {(c[1], c[2]) for c in fake.calls} == {("DC-L", 49.5), ("DR-L", 49.8)}
    assert {(c[3], c[4]) for c in fake.calls} == {("naive", 7)}
    assert fake.warmups == {0.0}  # naive: nothing to build, every second is scored
    assert max(c[0] for c in fake.calls) <= sim.max_evs


@dataclass
class _ResultWithStart(_Result):
    start_delay_s_max: float | None = None


class StandInWithStart(StandInEvaluator):
    """The same, also reporting the fleet's start delay (t_a; None: never started)."""

    def __call__(self, spec: FleetSpec, trace: Trace, contracts: list[ContractedService], *,
                 dispatch: str, seed: int, warmup_s: float) -> _ResultWithStart:
        res = super().__call__(spec, trace, contracts, dispatch=dispatch, seed=seed,
                               warmup_s=warmup_s)
        start = spec.models[0].t_a_s if res.compliance_pct > 0 else None
        return _ResultWithStart(res.compliance_pct, start)


def test_simulated_mode_fails_a_late_start_even_when_the_tube_is_met() -> None:
    groups = [el.FleetGroup(LEAF.name, LEAF), el.FleetGroup(ARIYA.name, ARIYA),
              el.FleetGroup(TESLA.name, TESLA)]
    verdicts, _ = el.assess_simulated(groups, [TIMINGS["DR"], TIMINGS["DC"]],
                                      StandInWithStart())
    got = {(v.vehicle, v.service): (v.eligible, v.evs_needed, v.reasons) for v in verdicts}
    assert got[(LEAF.name, "DR")] == (False, None, ("LTR",))  # 3.6 s > 2 s, tube met
    assert got[(ARIYA.name, "DR")] == (True, 100, ())  # the volume floor, not the tube
    assert got[(TESLA.name, "DC")] == (False, None, ("LTR", "MTFL"))  # never started


def test_simulated_mode_skips_services_without_a_definition() -> None:
    defs = {k: v for k, v in DEFAULT_DEFINITIONS.items() if k != "SFFR"}
    verdicts, skipped = el.assess_simulated([el.FleetGroup(ARIYA.name, ARIYA)],
                                            el.service_timings(), StandInEvaluator(),
                                            definitions=defs)
    assert skipped == ["SFFR"]
    assert [v.service for v in verdicts] == ["DC", "DM", "DR"]


def test_step_trace_steps_from_nominal_to_the_saturation_point() -> None:
    naive = el.SimSettings(dispatch="naive")  # compensated adds an unscored warm-up (below)
    tr = el.step_trace(DEFAULT_DEFINITIONS["DM-L"], TIMINGS["DM"], 5.0, naive)
    assert tr.f_hz[tr.t_s < 5.0].tolist() == [50.0] * 250  # 50 Hz: 0.5 s start in 25 samples
    assert tr.f_hz[-1] == pytest.approx(49.8)
    assert tr.duration_s == pytest.approx(10.0)
    dr = el.step_trace(DEFAULT_DEFINITIONS["DR-L"], TIMINGS["DR"], 5.0, naive)
    assert dr.duration_s == pytest.approx(100.0)  # 10 x T_full
    assert dr.t_s[1] == pytest.approx(1 / 12.5)


def test_the_step_comes_after_the_slowest_start_up_of_the_fleet() -> None:
    # A 0 W command at t = 0 arms an idle vehicle's start-up timer; the step must come later.
    naive = el.SimSettings(dispatch="naive")
    assert el.pre_step_s(el.default_groups(), naive) == pytest.approx(1.2 * 3.8 + 1.0)
    slow = replace(ARIYA, t_a_s=20.0, t_zero_cross_s=20.0)
    assert el.pre_step_s([el.FleetGroup("slow", slow)], naive) == pytest.approx(25.0)
    assert el.pre_step_s([el.FleetGroup("fast", ARIYA)], naive) == 5.0


def test_compensated_runs_get_an_unscored_warmup_and_the_same_scored_window() -> None:
    # The standing offsets take up to 0.75 x 10 kW / 400 W/s to build: the step comes that much
    # (plus settling) later, and that time is not scored, so both dispatches are judged on
    # equally long windows around the step.
    naive, comp = el.SimSettings(dispatch="naive"), el.SimSettings(dispatch="compensated")
    groups = el.default_groups()
    warm = el.warmup_s(groups, comp)
    assert el.warmup_s(groups, naive) == 0.0
    assert warm == pytest.approx(7500.0 / 400.0 + comp.ready_settle_s)
    assert el.pre_step_s(groups, comp) == pytest.approx(el.pre_step_s(groups, naive) + warm)
    for name in ("DC", "DR", "SFFR"):
        defn = DEFAULT_DEFINITIONS[TIMINGS[name].product]
        traces = {s.dispatch: el.step_trace(defn, TIMINGS[name], el.pre_step_s(groups, s), s,
                                            el.warmup_s(groups, s)) for s in (naive, comp)}
        sample_s = float(traces["naive"].t_s[1])  # the grids may differ by < one sample
        assert traces["compensated"].duration_s - warm == pytest.approx(
            traces["naive"].duration_s, abs=sample_s)
    fake = StandInEvaluator()
    ariya = [el.FleetGroup(ARIYA.name, ARIYA)]
    el.assess_simulated(ariya, [TIMINGS["DR"]], fake, sim=comp)
    assert fake.warmups == {el.warmup_s(ariya, comp)}


def test_soc_option_sets_the_uniform_fleets_and_is_checked(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert {g.soc_frac for g in el.default_groups()} == {1.0}  # the seed's fully charged fleets
    assert {g.soc_frac for g in el.default_groups(0.5)} == {0.5}
    fake = StandInEvaluator()
    socs: list[float] = []
    monkeypatch.setattr(el, "load_evaluate", lambda: fake)
    orig = el.fleet_spec_for

    def spy(group: el.FleetGroup, n: int) -> FleetSpec:
        socs.append(group.soc_frac)
        return orig(group, n)

    monkeypatch.setattr(el, "fleet_spec_for", spy)
    assert el.main(["--mode", "simulated", "--soc", "0.5", "--max-evs", "300"]) == 0
    out = capsys.readouterr().out
    assert "SoC 0.5" in out
    assert set(socs) == {0.5}
    for bad in ("0", "1.2", "nan"):
        assert el.main(["--soc", bad]) == 2
        assert "--soc must be within (0, 1]" in capsys.readouterr().err


# -- CLI ---------------------------------------------------------------------------------------
def test_cli_json_is_the_spec_list_of_24_objects(capsys: pytest.CaptureFixture[str]) -> None:
    assert el.main(["--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 24
    for row in rows:
        assert set(row) == {"vehicle", "service", "eligible", "evs_needed", "reasons"}
        assert row["service"] in {"SFFR", "DC", "DM", "DR"}
        assert set(row["reasons"]) <= {"LTR", "MTFL", "duration", "volume"}
        assert (row["evs_needed"] is None) == (not row["eligible"])
    tesla_dc = next(r for r in rows if r["vehicle"].startswith("Tesla") and r["service"] == "DC")
    assert tesla_dc == {"vehicle": "Tesla M3 LRDM (2020)", "service": "DC", "eligible": False,
                        "evs_needed": None, "reasons": ["LTR", "MTFL"]}


def test_cli_default_output_is_a_human_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert el.main([]) == 0
    out = capsys.readouterr().out
    assert "Yes (152)" in out
    assert "No (LTR, MTFL)" in out


def test_cli_strict_prints_idle_and_active_tables_and_json_for_one_session(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert el.main(["--mode", "strict"]) == 0
    out = capsys.readouterr().out
    assert "from idle" in out
    assert "active session" in out
    assert el.main(["--mode", "strict", "--session", "active", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    leaf_dc = next(r for r in rows if r["vehicle"].startswith("Nissan LEAF")
                   and r["service"] == "DC")
    assert (leaf_dc["eligible"], leaf_dc["evs_needed"]) == (True, 180)


def test_cli_reads_a_fleet_file_and_checks_volume(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text('[[group]]\nmodel = "Nissan Ariya"\ncount = 120\ncharger_kw = 10\n'
                     'soc = 0.9\n')
    assert el.main(["--fleet", str(fleet), "--json"]) == 0
    rows = {r["service"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["DC"]["reasons"] == ["volume"]  # 120 < 152
    assert rows["DR"]["evs_needed"] == 100


def test_cli_bad_fleet_file_exits_2_with_one_line(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text('[[group]]\nmodel = "Trabant"\ncount = 1\ncharger_kw = 10\nsoc = 1\n')
    assert el.main(["--fleet", str(fleet)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Trabant" in err


@pytest.mark.parametrize("argv", [["--mode", "fast"], ["--target", "0"], ["--soc-min", "1"],
                                  ["--max-evs", "0"]])
def test_cli_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert el.main(argv) == 2
    assert capsys.readouterr().err


def test_cli_simulated_uses_the_injected_evaluator(capsys: pytest.CaptureFixture[str]) -> None:
    fake = StandInEvaluator()
    assert el.main(["--mode", "simulated", "--json", "--seed", "3"], evaluate_fn=fake) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["service"] for r in rows} <= {"SFFR", "DC", "DM", "DR"}
    assert {(c[3], c[4]) for c in fake.calls} == {("compensated", 3)}
    ariya_dm = next(r for r in rows if r["vehicle"].startswith("Nissan Ariya")
                    and r["service"] == "DM")
    assert ariya_dm["evs_needed"] == 289


def test_cli_simulated_without_an_evaluator_exits_1(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    def missing() -> el.EvaluateFn:
        raise ImportError("No module named 'controller.tools.evaluate'")

    monkeypatch.setattr(el, "load_evaluate", missing)
    assert el.main(["--mode", "simulated"]) == 1
    assert "controller.tools.evaluate" in capsys.readouterr().err


def test_add_subparser_registers_eligibility() -> None:
    import argparse  # noqa: PLC0415

    parser = argparse.ArgumentParser()
    el.add_subparser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["eligibility", "--mode", "strict", "--json"])
    assert args.func is el.run
    assert (args.mode, args.json) == ("strict", True)


@pytest.mark.parametrize(("dispatch", "leaf_eligible"), [
    ("naive", False),  # from idle the LEAF starts after 3.6 s > 2 s: LTR although the tube holds
    ("compensated", True),  # kept flowing at a standing baseline: the 0.03 s change delay applies
])
def test_simulated_mode_with_the_real_evaluator_on_dr(dispatch: str,
                                                      leaf_eligible: bool) -> None:
    from controller.tools.evaluate import evaluate  # noqa: PLC0415

    # SoC 0.5: a fully charged fleet is above the compensated dispatch's SoC window (20-80 %),
    # may not charge, and so cannot hold the charging half of its standing baseline
    groups = [el.FleetGroup(ARIYA.name, ARIYA, soc_frac=0.5),
              el.FleetGroup(LEAF.name, LEAF, soc_frac=0.5)]
    verdicts, _ = el.assess_simulated(groups, [TIMINGS["DR"]], el.load_evaluate(),
                                      sim=el.SimSettings(max_evs=400, dispatch=dispatch))
    ariya, leaf = verdicts
    assert ariya.eligible
    assert ariya.evs_needed == 100  # 10 kW each: the 1 MW volume is the floor
    assert leaf.eligible is leaf_eligible
    if not leaf_eligible:
        assert leaf.reasons == ("LTR",)
    assert el.load_evaluate() is evaluate

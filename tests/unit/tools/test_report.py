"""Tests for controller/tools/report.py: run records -> one self-contained HTML file."""

from __future__ import annotations

import argparse
import base64
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from controller.control.services import contracts_from
from controller.tools import report as rp
from controller.tools.evaluate import RECORD_FORMAT, RunRecorder, evaluate, write_record
from controller.tools.report import ReportError, main, parse_run, render_html
from sim_chargers.fleetfile import parse_fleet
from sim_chargers.traces import Trace

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def pngs(text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', text)]


def evaluate_doc(n_vehicles: int = 4, n: int = 50) -> dict[str, Any]:
    """A synthetic evaluate --record document: a 1 s step to -100 kW, half delivered."""
    t = np.arange(n) * 0.1
    expected = np.where(t >= 1.0, -100_000.0, 0.0)
    return {
        "format": RECORD_FORMAT, "version": 1, "source": "evaluate",
        "summary": {"service": "DC-L", "contract_kw": 100.0, "dispatch": "naive",
                    "n_vehicles": n_vehicles, "compliance_pct": 61.2345,
                    "max_shortfall_pct": 48.5, "start_delay_s_max": 0.3,
                    "full_delivery_s_max": None, "ageing_loss_pct_mean": 1.234e-05,
                    "ageing_cost": 0.0456, "required_full_delivery_s": 1.0},
        "record": {"t_s": t.tolist(), "f_hz": np.where(t >= 1.0, 49.5, 50.0).tolist(),
                   "expected_w": expected.tolist(), "delivered_w": (expected / 2).tolist(),
                   "soc_min": (0.5 - t / 1000).tolist(), "soc_mean": (0.6 - t / 1000).tolist(),
                   "soc_max": [0.7] * n},
        "vehicles": {"model": ["Nissan Ariya (2022)"] * n_vehicles,
                     "ageing_loss_pct": np.linspace(1e-5, 2e-5, n_vehicles).tolist()},
    }


def demo_doc() -> dict[str, Any]:
    """What controller/demo.py writes: {"summary", "record": asdict(Recorder)}."""
    t = (100.0 + np.arange(40) * 0.1).tolist()
    req = [0.0] * 10 + [-50_000.0] * 30
    return {
        "summary": {"service": "DC-L", "contract_kw": 100.0, "event": "dc-l-dip",
                    "n_vehicles": 20, "baseline_kw": 30.0, "compliance_pct": 87.5,
                    "required_full_delivery_s": 1.0, "start_delay_s": 0.6,
                    "full_delivery_s": None},
        "record": {"t0_s": 1234.5, "t_s": t, "f_hz": [50.0] * 10 + [49.6] * 30,
                   "requested_w": req, "site_w": [30_000.0 + r * 0.9 for r in req],
                   "fallback": [False] * 40},
    }


def write(tmp_path: Path, name: str, doc: Any) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def test_evaluate_record_renders_all_plots_and_the_summary() -> None:
    html = render_html([parse_run(evaluate_doc(), "run.json")], title="T <&>")
    images = pngs(html)
    assert len(images) == 3  # power + frequency, SoC spread, ageing
    assert all(img.startswith(PNG_MAGIC) for img in images)
    assert "<title>T &lt;&amp;&gt;</title>" in html
    for text in ("61.23", "48.5", "1.234e-05", "0.0456", "never", "DC-L", "naive"):
        assert text in html
    assert "http" not in html.replace("http-equiv", "")  # self-contained: nothing to fetch


def test_demo_run_json_renders_power_only_with_the_baseline_removed() -> None:
    run = parse_run(demo_doc(), "demo/run.json")
    assert run.source == "demo"
    assert run.t_s[0] == 0.0  # time from the start of the record
    assert run.delivered_w[-1] == pytest.approx(-45_000.0)  # site - 30 kW baseline
    assert run.soc is None
    assert run.ageing_pct is None
    html = render_html([run])
    assert len(pngs(html)) == 1
    assert "87.5" in html
    assert "dc-l-dip" in html


def test_many_vehicles_get_a_histogram_instead_of_bars() -> None:
    run = parse_run(evaluate_doc(n_vehicles=rp.BAR_CHART_MAX_VEHICLES + 1), "big.json")
    uri = rp.ageing_plot(run)
    assert uri is not None
    assert base64.b64decode(uri.split(",", 1)[1]).startswith(PNG_MAGIC)


def test_report_of_a_real_evaluate_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = parse_fleet({"group": [{"model": "Nissan Ariya", "count": 6, "charger_kw": 10,
                                   "soc": 0.7}]})
    t = np.arange(0, 20.05, 0.05)
    trace = Trace(t, np.where((t >= 2) & (t < 15), 49.6, 50.0), name="step")
    rec = RunRecorder(keep_series=True)
    res = evaluate(spec, trace, contracts_from([("DC-L", 40.0)]), recorder=rec)
    record = write(tmp_path, "eval.json", "")
    write_record(str(record), rec.to_record(res))
    out = tmp_path / "report.html"
    assert main([str(record), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    html = out.read_text(encoding="utf-8")
    assert len(pngs(html)) == 3
    for key in ("compliance_pct", "ageing_loss_pct_mean", "ageing_cost"):
        assert rp.fmt_value(getattr(res, key)) in html


def test_a_directory_gives_one_section_per_run(tmp_path: Path) -> None:
    write(tmp_path, "a.json", evaluate_doc())
    write(tmp_path, "demo-out/run.json", demo_doc())
    out = tmp_path / "r.html"
    assert main([str(tmp_path), "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert html.count("<section>") == 2
    assert len(pngs(html)) == 4
    assert html.index("a.json") < html.index("run.json")


def test_the_demo_writes_a_report_with_its_run(tmp_path: Path) -> None:
    out = rp.write_report([write(tmp_path, "run.json", demo_doc())], tmp_path / "report.html")
    assert pngs(out.read_text(encoding="utf-8"))[0].startswith(PNG_MAGIC)


@pytest.mark.parametrize(("content", "match"), [
    (None, "no such file"),
    ("{not json", "not valid JSON"),
    ([1, 2], "not a v2ghub run record"),
    ({"summary": {}, "record": {}}, "unknown run record"),
    ({"format": RECORD_FORMAT, "summary": {"contract_kw": 1}, "record": {}}, "record.t_s"),
])
def test_unreadable_or_foreign_input_exits_2_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], content: Any, match: str) -> None:
    path = tmp_path / "x.json" if content is None else write(tmp_path, "x.json", content)
    out = tmp_path / "r.html"
    assert main([str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert match in err
    assert err.startswith("v2ghub report: ")
    assert not out.exists()


def _broken(change: str) -> dict[str, Any]:
    doc = evaluate_doc()
    rec, summary = doc["record"], doc["summary"]
    if change == "length":
        rec["f_hz"] = rec["f_hz"][:-1]
    elif change == "order":
        rec["t_s"][5] = rec["t_s"][4]
    elif change == "nan":
        rec["delivered_w"][3] = None
    elif change == "contract":
        summary["contract_kw"] = 0
    elif change == "short":
        rec.update({k: v[:1] for k, v in rec.items()})
    return doc


@pytest.mark.parametrize(("change", "match"), [
    ("length", "differ in length"), ("order", "strictly increasing"),
    ("nan", "delivered_w"), ("contract", "contract_kw"), ("short", "at least 2"),
])
def test_bad_series_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], change: str,
                           match: str) -> None:
    path = write(tmp_path, "x.json", _broken(change))
    assert main([str(path), "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert match in err


def test_empty_directory_and_unwritable_output_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    assert "no run records" in capsys.readouterr().err
    run = write(tmp_path, "a.json", evaluate_doc())
    assert main([str(run), "--out", str(tmp_path / "missing-dir" / "r.html")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_usage_error_exits_2() -> None:
    assert main([]) == 2


def test_a_bad_record_in_a_directory_names_the_file(tmp_path: Path) -> None:
    write(tmp_path, "a.json", evaluate_doc())
    write(tmp_path, "b.json", {"hello": 1})
    with pytest.raises(ReportError, match=r"b\.json"):
        rp.write_report([tmp_path], tmp_path / "r.html")


def test_add_subparser_registers_report() -> None:
    parser = argparse.ArgumentParser(prog="v2ghub")
    sub = parser.add_subparsers(dest="command", required=True)
    rp.add_subparser(sub)
    args = parser.parse_args(["report", "run.json", "--out", "x.html"])
    assert args.func is rp.run
    assert (args.inputs, args.out) == (["run.json"], "x.html")

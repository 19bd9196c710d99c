"""`v2ghub report RUN.json|DIR --out report.html`: a self-contained HTML report of runs.

Reads run records: a demo `run.json` (`{"summary", "record"}`, controller/demo.py) or an
`evaluate --record` file (`format` "v2ghub-run-record", controller/tools/run_record.py), or a
directory of them (`*.json` and `*/run.json`, one section per run). Renders, per run: frequency;
the required envelope (SPEC §3.5 compliance tube, from control.metrics.tube) with the required and
the delivered response; SoC spread (min / mean / max over time) and per-vehicle ageing when the
record has them; and the compliance summary table. PNGs are drawn with matplotlib (Agg, no
display, no pyplot state) and embedded as base64 data URIs, CSS inline: one file, no assets.

`load_run` / `render_html` are pure (no I/O); `write_report` and the CLI are the edge.
Errors: ReportError (a ValueError) with one line naming the file; the CLI exits 2 on it.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from controller.control.metrics import TOL_FRAC, tube
from controller.tools import parse_standalone

FloatArray = npt.NDArray[np.float64]

EXIT_BAD_INPUT = 2
RECORD_FORMAT = "v2ghub-run-record"  # run_record.RECORD_FORMAT (not imported: keeps this light)
BAR_CHART_MAX_VEHICLES = 60  # above this many vehicles the ageing plot is a histogram
PNG_DPI = 100
MAX_SAMPLES = 2_000_000  # > 50 h at 10 Hz; refuses runaway files before plotting them


class ReportError(ValueError):
    """Unusable input or output path; the message is one line."""


@dataclass(frozen=True)
class Run:
    """One run, normalised from either record kind. Powers in W, time in s from the start."""

    name: str
    source: str  # "demo" or "evaluate"
    summary: Mapping[str, Any]
    t_s: FloatArray
    f_hz: FloatArray
    expected_w: FloatArray  # required response E(t) (demo: what the daemon requested)
    delivered_w: FloatArray  # D(t): measured power minus baseline
    contract_w: float
    full_delivery_s: float
    soc: tuple[FloatArray, FloatArray, FloatArray] | None = None  # min, mean, max (0..1)
    ageing_pct: FloatArray | None = None  # per vehicle, % of capacity
    vehicle_models: tuple[str, ...] = ()


# -- loading (pure) -------------------------------------------------------------------------------
def _array(rec: Mapping[str, Any], key: str, where: str) -> FloatArray:
    raw = rec.get(key)
    if not isinstance(raw, list):
        raise ReportError(f"{where}: record.{key} must be a list of numbers")
    if len(raw) > MAX_SAMPLES:
        raise ReportError(f"{where}: record.{key} has more than {MAX_SAMPLES} samples")
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise ReportError(f"{where}: record.{key} must be a list of numbers") from None
    if arr.ndim != 1 or not np.all(np.isfinite(arr)):
        raise ReportError(f"{where}: record.{key} must hold finite numbers only")
    return arr


def _positive(summary: Mapping[str, Any], key: str, where: str) -> float:
    val = summary.get(key)
    if isinstance(val, bool) or not isinstance(val, int | float) or not math.isfinite(val) \
            or val <= 0:
        raise ReportError(f"{where}: summary.{key} must be a number > 0, got {val!r}")
    return float(val)


def _check_time(t: FloatArray, others: Sequence[FloatArray], where: str) -> None:
    if t.size < 2:
        raise ReportError(f"{where}: the record needs at least 2 samples")
    if any(a.size != t.size for a in others):
        raise ReportError(f"{where}: the record's series differ in length")
    if np.any(np.diff(t) <= 0):
        raise ReportError(f"{where}: record.t_s must be strictly increasing")


def _demo_run(name: str, summary: Mapping[str, Any], rec: Mapping[str, Any]) -> Run:
    t, f = _array(rec, "t_s", name), _array(rec, "f_hz", name)
    req, site = _array(rec, "requested_w", name), _array(rec, "site_w", name)
    _check_time(t, (f, req, site), name)
    base = summary.get("baseline_kw")
    if isinstance(base, bool) or not isinstance(base, int | float) or not math.isfinite(base):
        raise ReportError(f"{name}: summary.baseline_kw must be a number, got {base!r}")
    return Run(name, "demo", summary, t - t[0], f, req, site - base * 1e3,
               _positive(summary, "contract_kw", name) * 1e3,
               _positive(summary, "required_full_delivery_s", name))


def _evaluate_run(name: str, doc: Mapping[str, Any], summary: Mapping[str, Any],
                  rec: Mapping[str, Any]) -> Run:
    t, f = _array(rec, "t_s", name), _array(rec, "f_hz", name)
    e, d = _array(rec, "expected_w", name), _array(rec, "delivered_w", name)
    soc = None
    if all(k in rec for k in ("soc_min", "soc_mean", "soc_max")):
        soc = (_array(rec, "soc_min", name), _array(rec, "soc_mean", name),
               _array(rec, "soc_max", name))
    _check_time(t, (f, e, d, *(soc or ())), name)
    ageing: FloatArray | None = None
    models: tuple[str, ...] = ()
    veh = doc.get("vehicles")
    if isinstance(veh, Mapping) and "ageing_loss_pct" in veh:
        ageing = _array(veh, "ageing_loss_pct", f"{name}: vehicles")
        raw_models = veh.get("model", [])
        models = tuple(str(m) for m in raw_models) if isinstance(raw_models, list) else ()
    return Run(name, "evaluate", summary, t, f, e, d,
               _positive(summary, "contract_kw", name) * 1e3,
               _positive(summary, "required_full_delivery_s", name), soc, ageing, models)


def parse_run(doc: Any, name: str) -> Run:
    """A Run from a parsed record document (either kind).

    Raises:
        ReportError: the document is not a run record, or its series are unusable.
    """
    if not isinstance(doc, Mapping) or not isinstance(doc.get("summary"), Mapping) \
            or not isinstance(doc.get("record"), Mapping):
        raise ReportError(f"{name}: not a v2ghub run record (expected a demo run.json or an "
                          "`evaluate --record` file with summary and record)")
    summary, rec = doc["summary"], doc["record"]
    if doc.get("format") == RECORD_FORMAT:
        return _evaluate_run(name, doc, summary, rec)
    if "requested_w" in rec and "site_w" in rec:
        return _demo_run(name, summary, rec)
    raise ReportError(f"{name}: unknown run record (no `format` and no demo series)")


# -- the edge: files ------------------------------------------------------------------------------
def run_files(path: Path) -> list[Path]:
    """The record files behind RUN.json or DIR (sorted; DIR: *.json and */run.json)."""
    if path.is_dir():
        files = sorted({*path.glob("*.json"), *path.glob("*/run.json")})
        if not files:
            raise ReportError(f"{path}: no run records (*.json) in this directory")
        return files
    if not path.exists():
        raise ReportError(f"{path}: no such file or directory")
    return [path]


def load_run(path: Path) -> Run:
    """Read and parse one record file.

    Raises:
        ReportError: unreadable, not JSON, or not a usable run record.
    """
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ReportError(f"{path}: not valid JSON ({str(exc).splitlines()[0]})") from None
    return parse_run(doc, str(path))


def _label(src: Path, path: Path) -> str:
    """Display name: the file name, or its path inside the directory given."""
    return str(path.relative_to(src)) if src.is_dir() else path.name


def write_report(inputs: Sequence[Path], out: Path, *, title: str = "v2ghub report") -> Path:
    """Render the runs in `inputs` (files or directories) into one HTML file at `out`.

    Raises:
        ReportError: bad input, or `out` cannot be written.
    """
    runs = [replace(load_run(p), name=_label(src, p)) for src in inputs for p in run_files(src)]
    text = render_html(runs, title=title)
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"{out}: cannot write: {exc.strerror}") from None
    return out


# -- rendering (pure) -----------------------------------------------------------------------------
def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PNG_DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(height_in: float, rows: int = 1) -> tuple[Any, Any]:
    from matplotlib.figure import Figure  # noqa: PLC0415 - matplotlib only when rendering

    fig = Figure(figsize=(10, height_in), layout="constrained")
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    return fig, axes


def power_plot(run: Run) -> str:
    """Frequency above; required envelope, required and delivered response below (PNG URI)."""
    fig, (ax_f, ax_p) = _figure(6.0, rows=2)
    ax_f.plot(run.t_s, run.f_hz, color="tab:blue", lw=1)
    ax_f.axhline(50.0, color="grey", lw=0.5)
    ax_f.set_ylabel("frequency (Hz)")
    lo, hi = tube(run.t_s, run.expected_w, run.contract_w, run.full_delivery_s)
    ax_p.fill_between(run.t_s, lo / 1e3, hi / 1e3, color="tab:orange", alpha=0.18, lw=0,
                      label=f"required envelope (tube: T_full {run.full_delivery_s:g} s, "
                            f"tol {TOL_FRAC:.0%} of Pc)")
    ax_p.plot(run.t_s, run.expected_w / 1e3, color="tab:orange", lw=1,
              label="required response" if run.source == "evaluate" else "requested response")
    ax_p.plot(run.t_s, run.delivered_w / 1e3, color="tab:green", lw=1,
              label="delivered (fleet power - baseline)")
    ax_p.axhline(0.0, color="grey", lw=0.5)
    ax_p.set_ylabel("power (kW, + import)")
    ax_p.set_xlabel("time (s)")
    ax_p.legend(loc="best", fontsize="small")
    return _png(fig)


def soc_plot(run: Run) -> str | None:
    """SoC min / mean / max over time (PNG URI), None without SoC data."""
    if run.soc is None:
        return None
    lo, mean, hi = run.soc
    fig, (ax,) = _figure(3.0)
    ax.fill_between(run.t_s, lo * 100, hi * 100, color="tab:purple", alpha=0.2, lw=0,
                    label="min .. max over vehicles")
    ax.plot(run.t_s, mean * 100, color="tab:purple", lw=1, label="mean")
    ax.set_ylabel("SoC (%)")
    ax.set_xlabel("time (s)")
    ax.legend(loc="best", fontsize="small")
    return _png(fig)


def ageing_plot(run: Run) -> str | None:
    """Per-vehicle capacity loss: bars up to BAR_CHART_MAX_VEHICLES, else a histogram."""
    if run.ageing_pct is None or not run.ageing_pct.size:
        return None
    pct = run.ageing_pct
    fig, (ax,) = _figure(3.0)
    if pct.size <= BAR_CHART_MAX_VEHICLES:
        ax.bar(np.arange(pct.size), pct, color="tab:red")
        ax.set_xlabel("vehicle (fleet file order)")
        ax.set_ylabel("capacity lost (%)")
    else:
        ax.hist(pct, bins=30, color="tab:red")
        ax.set_xlabel("capacity lost (%)")
        ax.set_ylabel("vehicles")
    ax.set_title(f"ageing over the run: mean {pct.mean():.3g} %, max {pct.max():.3g} %",
                 fontsize="medium")
    return _png(fig)


# Summary rows in display order: key -> (label, unit).
_ROWS: dict[str, tuple[str, str]] = {
    "service": ("service", ""), "event": ("event", ""), "dispatch": ("dispatch", ""),
    "contract_kw": ("contracted power Pc", "kW"), "n_vehicles": ("vehicles", ""),
    "duration_s": ("duration", "s"), "compliance_pct": ("compliance (SPEC §3.5 tube)", "%"),
    "max_shortfall_pct": ("max shortfall", "% of Pc"),
    "energy_shortfall_kwh": ("energy shortfall", "kWh"),
    "start_delay_s": ("time to first response", "s"),
    "start_delay_s_max": ("time to first response (max over events)", "s"),
    "required_start_s": ("required start", "s"),
    "full_delivery_s": ("time to full delivery", "s"),
    "full_delivery_s_max": ("time to full delivery (max over events)", "s"),
    "required_full_delivery_s": ("required full delivery T_full", "s"),
    "n_events": ("events", ""), "events_not_started": ("events never started", ""),
    "events_not_full": ("events never fully delivered", ""),
    "baseline_kw": ("baseline", "kW"), "requested_mean_kw": ("mean requested in event", "kW"),
    "delivered_mean_kw": ("mean delivered in event", "kW"),
    "requested_kwh": ("energy requested", "kWh"), "delivered_kwh": ("energy delivered", "kWh"),
    "soc_min": ("SoC min", "0..1"), "soc_max": ("SoC max", "0..1"),
    "losses_kwh": ("conversion losses", "kWh"),
    "ageing_loss_pct_mean": ("ageing, mean", "% of capacity"),
    "ageing_loss_pct_max": ("ageing, worst vehicle", "% of capacity"),
    "ageing_cost": ("ageing cost", "currency of the price"),
    "battery_price_per_kwh": ("battery price", "per kWh"),
    "seed": ("seed", ""), "variation_frac": ("plant variation", "fraction"),
    "tick_s": ("tick", "s"), "ocpp_delay_s": ("OCPP delivery delay", "s"),
}


def fmt_value(val: Any) -> str:
    """Numbers to 4 significant digits; None reads "never"."""
    if val is None:
        return "never"
    if isinstance(val, bool):
        return "yes" if val else "no"
    if isinstance(val, float):
        return f"{val:.4g}"
    return str(val)


def summary_table(summary: Mapping[str, Any]) -> str:
    """The compliance summary as an HTML table (known keys, in a fixed order)."""
    rows = [f"<tr><th>{html.escape(label)}</th><td>{html.escape(fmt_value(summary[key]))}</td>"
            f"<td class=u>{html.escape(unit)}</td></tr>"
            for key, (label, unit) in _ROWS.items() if key in summary]
    return "<table class=summary>" + "".join(rows) + "</table>"


def _section(run: Run) -> str:
    s = run.summary
    head = " ".join(str(s[k]) for k in ("service", "event", "dispatch") if k in s)
    figs = [(power_plot(run), "Frequency; required envelope with required and delivered power"),
            (soc_plot(run), "SoC spread over the fleet"),
            (ageing_plot(run), "Battery ageing per vehicle (seed eqs. 5-6, Table 3)")]
    imgs = "".join(f'<figure><img alt="{html.escape(cap)}" src="{uri}">'
                   f"<figcaption>{html.escape(cap)}</figcaption></figure>"
                   for uri, cap in figs if uri is not None)
    note = ("" if run.source == "demo" else
            "<p class=note>Plots use the record's samples (at most 10 Hz); the table is the "
            "evaluation's own score at the full tick rate.</p>")
    return (f"<section><h2>{html.escape(head or run.source)} "
            f"<small>{html.escape(run.name)} ({run.source})</small></h2>"
            f"{summary_table(s)}{note}{imgs}</section>")


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1050px;margin:2em auto;color:#222}"
        "h2 small{font-weight:normal;color:#777;font-size:60%}"
        "table.summary{border-collapse:collapse;margin:1em 0}"
        "table.summary th{text-align:left;font-weight:normal;padding:2px 1.5em 2px 0}"
        "table.summary td{text-align:right;font-variant-numeric:tabular-nums;padding:2px 4px}"
        "td.u{text-align:left;color:#777}figure{margin:1em 0}img{max-width:100%}"
        "figcaption,.note{color:#555;font-size:90%}section{border-top:1px solid #ccc}")


def render_html(runs: Sequence[Run], *, title: str = "v2ghub report") -> str:
    """The whole report: one section per run, everything inline."""
    if not runs:
        raise ReportError("no runs to report")
    body = "".join(_section(r) for r in runs)
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p class=note>Compliance tube (SPEC §3.5): the "
            f"delivered response D(t) must lie within min/max of the required response E over "
            f"[t - T_full, t], &plusmn; {TOL_FRAC:.0%} of Pc.</p>{body}</body></html>\n")


# -- CLI ------------------------------------------------------------------------------------------
def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="RUN.json|DIR",
                   help="demo run.json or evaluate --record file, or a directory of them")
    p.add_argument("--out", default="report.html", metavar="report.html",
                   help="output HTML file (default report.html)")
    p.add_argument("--title", default="v2ghub report", help="report title")


def add_subparser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `report` on an argparse subparsers object (func(args) -> int)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "report", help="HTML report of demo runs and evaluate --record files",
        description="Render run records into one self-contained HTML file: frequency, "
                    "required envelope, delivered power, SoC spread, ageing, compliance.")
    _add_arguments(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Execute parsed `report` arguments; 0 written, 2 bad input (one line on stderr)."""
    try:
        out = write_report([Path(i) for i in args.inputs], Path(args.out), title=args.title)
    except ReportError as exc:
        print(f"v2ghub report: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry: `python -m controller.tools.report RUN.json --out report.html`."""
    args = parse_standalone("v2ghub report", __doc__, _add_arguments, argv)
    return args if isinstance(args, int) else run(args)


if __name__ == "__main__":
    sys.exit(main())

"""Fast-time closed-loop evaluation (`v2ghub evaluate`, SPEC §3.1 / §3.5).

The daemon's own `Controller` ticks on a `FleetState` whose rows are the fleet's vehicles, and the
simulator's vectorised `VehiclePlant` is stepped with it on the same fast-time clock: no sockets,
no asyncio, no sleeping. Setpoints reach the plant after a fixed OCPP delivery delay.

What each side knows:
- the PLANT uses the fleet file's parameters with seeded per-vehicle variation (each vehicle's
  dead times and ramp rates scaled by an independent uniform factor in [1 - v, 1 + v]);
- the CONTROLLER knows only the library values of each vehicle's model (vehicles.lookup), handed
  to the dispatch strategy as priors (FleetState dynamics columns). "naive" ignores them
  (capacity-proportional split); "compensated" is control.dispatch_comp (readiness offsets,
  deadline planning on the per-vehicle model, feedback on the measured fleet power).
- the plant models conversion losses: each vehicle's one-way efficiency is drawn (seeded) from
  the seed's 94.7-99 % range unless the fleet gives one; `losses_kwh` is their sum.

Time base: ticks at max(trace rate, 1 / tick_s) (default 10 Hz), capped at the 50 Hz trace limit
of SPEC §3.2; the trace is read at each tick by zero-order hold. At each tick: due setpoints are
delivered to the plant, the plant is advanced and measured (D = fleet power - baseline, baseline
= fleet power at t = 0 before any response), then the controller ticks on the frequency.

Not here: the loop and its inputs (closed_loop.py), ageing and the run record (run_record.py),
file formats (fleetfile, traces), the compliance maths (control.metrics), I/O other than the CLI
edge (`run`, `main`, `write_record`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TextIO

import numpy as np

from controller.control.controller import DISPATCH_NAMES, Controller, ControlParams, make_dispatch
from controller.control.identify import Identifier, IdentParams
from controller.control.metrics import event_timings, score
from controller.control.services import (
    COMPOUND_NAMES,
    ContractedService,
    ServiceError,
    contracts_from,
    expected_w,
)
from controller.control.vehicles import lookup
from controller.tools import parse_standalone
from controller.tools.closed_loop import (
    ClosedLoop,
    EvaluateError,
    fleet_state,
    tick_period_s,
    vary,
)
from controller.tools.run_record import BATTERY_PRICE_PER_KWH, RECORD_FORMAT, RunRecorder
from sim_chargers.fleetfile import FleetFileError, FleetSpec, load_fleet
from sim_chargers.plant import FloatArray, VehiclePlant
from sim_chargers.traces import Trace, TraceError, load_trace

# Public API. Re-exported: EvaluateError (closed_loop.py), RunRecorder and BATTERY_PRICE_PER_KWH
# (run_record.py), which `evaluate`'s signature uses, and RECORD_FORMAT, what `--record` writes.
__all__ = ["BATTERY_PRICE_PER_KWH", "EXIT_BAD_INPUT", "OCPP_DELAY_S", "RECORD_FORMAT",
           "VARIATION_FRAC", "EvalResult", "EvaluateError", "RunRecorder", "add_subparser",
           "evaluate", "main", "run", "service_label", "summary", "write_record"]

EXIT_BAD_INPUT = 2
OCPP_DELAY_S = 0.1  # fixed CSMS -> charger delivery delay; PITFALLS: ~85-125 ms fan-out p50/p99
VARIATION_FRAC = 0.2  # issue 3: +-20 % per-vehicle spread of the plant's dynamics


@dataclass(frozen=True, slots=True)
class EvalResult:
    """One evaluation (SPEC §3.5 keys first). Times s, powers as % of Pc, energy kWh."""

    service: str
    contract_kw: float
    dispatch: str
    n_vehicles: int
    duration_s: float
    compliance_pct: float
    max_shortfall_pct: float
    energy_shortfall_kwh: float
    start_delay_s_max: float | None  # max over events that started (None: no such event)
    full_delivery_s_max: float | None  # max over events fully delivered
    soc_min: float  # over all vehicles and the whole run
    soc_max: float
    losses_kwh: float  # conversion losses of all vehicles over the run (plant.losses_wh)
    losses_modelled: bool
    n_events: int  # runs of |E| > tol with one sign (metrics.event_timings)
    events_not_started: int  # events that ended before any response beyond tol
    events_not_full: int  # events that ended before full delivery
    ageing_loss_pct_mean: float  # capacity lost over the run, % of nominal, mean over vehicles
    ageing_loss_pct_max: float  # the same, worst vehicle
    ageing_cost: float  # fleet total, lost kWh x battery_price_per_kwh (its currency)
    battery_price_per_kwh: float
    dispatch_note: str
    tick_s: float
    ocpp_delay_s: float
    variation_frac: float
    seed: int
    warmup_s: float  # scoring (compliance, shortfall, events) starts here; SoC/losses: whole run
    steps: int
    wall_time_s: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return asdict(self)

    def to_json(self) -> str:
        """One JSON object on one line."""
        return json.dumps(self.to_dict())


_DISPATCH_NOTES = {
    "naive": "capacity-proportional split, no regard to vehicle dynamics",
    "compensated": "dynamics-aware: standing zero-sum readiness offsets, deadline planning "
                   "with per-vehicle priors, feedback on measured power",
}


def service_label(contracts: Sequence[ContractedService]) -> str:
    """"DC" for DC-L + DC-H (and DM, DR), else the part names joined with "+"."""
    names = [c.definition.name for c in contracts]
    for compound, parts in COMPOUND_NAMES.items():
        if all(p in names for p in parts):
            names = [compound if n == parts[0] else n for n in names if n != parts[1]]
    return "+".join(names)


def _start_recorder(recorder: RunRecorder | None, spec: FleetSpec,
                    price_per_kwh: float) -> RunRecorder:
    rec = recorder if recorder is not None else RunRecorder()
    rec.start(spec.model_names, [m.chemistry for m in spec.models], spec.params.capacity_wh,
              spec.soc_frac, price_per_kwh)
    return rec


def evaluate(spec: FleetSpec, trace: Trace, contracts: list[ContractedService], *,
             dispatch: str = "compensated", seed: int = 0,
             variation_frac: float = VARIATION_FRAC, tick_s: float = 0.1,
             ocpp_delay_s: float = OCPP_DELAY_S,
             progress: Callable[[float], None] | None = None,
             battery_price_per_kwh: float = BATTERY_PRICE_PER_KWH,
             recorder: RunRecorder | None = None, identify: bool = True,
             warmup_s: float = 0.0) -> EvalResult:
    """Run the closed loop over the whole trace and score it (SPEC §3.5).

    Args:
        spec: the NOMINAL fleet (load_fleet with its default variation_frac=0); the seeded
            variation is applied here, so do not vary it twice.
        trace: frequency samples, read by zero-order hold at each tick.
        contracts: the contracted services (contracts_from); responses add. Pc for the tube is
            the largest part's volume (DC = DC-L + DC-H at one volume); T_full the largest
            part's full-delivery time.
        dispatch: "naive" or "compensated" (module docstring).
        seed: seed of the plant's per-vehicle variation.
        variation_frac: spread of that variation, 0 <= v < 1.
        tick_s: slowest control tick; the trace's own rate is used when faster (max 50 Hz).
        ocpp_delay_s: fixed delay between a setpoint leaving the controller and reaching the
            vehicle (>= 0).
        progress: called with the fraction done (0..1) about a hundred times.
        battery_price_per_kwh: prices the ageing (`ageing_cost`), >= 0.
        recorder: collects ageing and, if asked, the run record (`RunRecorder`); a fresh
            ageing-only one when None.
        identify: refine the controller's dynamics priors online from the plant's observed
            response (control.identify); False keeps the library priors all run.
        warmup_s: the run starts at t = 0 but is scored from here (0 <= warmup_s < the
            trace's length): time for a dispatch to get ready (standing offsets) that should
            not count for or against it. SoC, losses and ageing cover the whole run.

    Raises:
        EvaluateError: bad dispatch, variation, tick, delay, price or an empty contract list.
    """
    wall0 = time.perf_counter()
    if not contracts:
        raise EvaluateError("contracts: at least one contracted service is required")
    if dispatch not in DISPATCH_NAMES:
        raise EvaluateError(f"dispatch: unknown {dispatch!r}; known: {', '.join(DISPATCH_NAMES)}")
    if not (math.isfinite(ocpp_delay_s) and ocpp_delay_s >= 0):
        raise EvaluateError(f"ocpp_delay_s: must be >= 0, got {ocpp_delay_s!r}")
    if not (math.isfinite(warmup_s) and 0.0 <= warmup_s < trace.duration_s):
        raise EvaluateError(f"warmup_s: must be >= 0 and shorter than the trace "
                            f"({trace.duration_s:g} s), got {warmup_s!r}")
    tick = tick_period_s(trace, tick_s)
    n_steps = math.floor(trace.duration_s / tick + 1e-9) + 1
    t = np.arange(n_steps, dtype=np.float64) * tick
    if warmup_s > t[-1] + 1e-9:
        raise EvaluateError(f"warmup_s: {warmup_s:g} s leaves no tick to score (the last is at "
                            f"{t[-1]:g} s)")
    f = trace.f_at_many(t)
    expected = expected_w(contracts, t, f)

    plant = VehiclePlant(vary(spec.params, variation_frac, seed), spec.soc_frac)
    baseline_w = float(plant.power_w.sum())
    priors = [lookup(m.name) for m in spec.models]  # library values only, never the plant's
    ctl = Controller(contracts, ControlParams(tick_period_s=tick),
                     dispatch=make_dispatch(dispatch, priors))
    rec = _start_recorder(recorder, spec, battery_price_per_kwh)
    fleet = fleet_state(spec)
    ident = (Identifier(fleet, IdentParams(transport_delay_s=ocpp_delay_s)) if identify
             else None)
    loop = ClosedLoop(plant, fleet, ctl, ocpp_delay_s=ocpp_delay_s, recorder=rec,
                      identifier=ident)
    measured = loop.run(t, f, progress)
    rec.finish(t, f, expected, measured - baseline_w,
               max(c.definition.full_s for c in contracts))
    scored = slice(int(np.searchsorted(t, warmup_s - 1e-9)), None)
    return _result(contracts, spec, dispatch=dispatch, t=t[scored], expected=expected[scored],
                   delivered=(measured - baseline_w)[scored], loop=loop,
                   variation_frac=variation_frac, seed=seed, tick=tick,
                   ocpp_delay_s=ocpp_delay_s, wall0=wall0, rec=rec, warmup_s=warmup_s,
                   steps=n_steps)


def _result(contracts: Sequence[ContractedService], spec: FleetSpec, *, dispatch: str,
            t: FloatArray, expected: FloatArray, delivered: FloatArray, loop: ClosedLoop,
            variation_frac: float, seed: int, tick: float, ocpp_delay_s: float,
            wall0: float, rec: RunRecorder, warmup_s: float, steps: int) -> EvalResult:
    pc_w = max(c.contract_w for c in contracts)
    full_s = max(c.definition.full_s for c in contracts)
    comp = score(t, expected, delivered, pc_w, full_s)
    events = event_timings(t, expected, delivered, pc_w)
    starts = [e.start_delay_s for e in events if e.start_delay_s is not None]
    fulls = [e.full_delivery_s for e in events if e.full_delivery_s is not None]
    return EvalResult(
        service=service_label(contracts), contract_kw=pc_w / 1000.0, dispatch=dispatch,
        n_vehicles=spec.n, duration_s=float(t[-1]),
        compliance_pct=comp.compliance_pct, max_shortfall_pct=comp.max_shortfall_pct,
        energy_shortfall_kwh=comp.energy_shortfall_kwh,
        start_delay_s_max=max(starts) if starts else None,
        full_delivery_s_max=max(fulls) if fulls else None,
        soc_min=loop.soc_lo, soc_max=loop.soc_hi, losses_kwh=loop.losses_kwh(),
        losses_modelled=True,
        n_events=len(events), events_not_started=len(events) - len(starts),
        events_not_full=len(events) - len(fulls), dispatch_note=_DISPATCH_NOTES[dispatch],
        ageing_loss_pct_mean=rec.loss_pct_mean, ageing_loss_pct_max=rec.loss_pct_max,
        ageing_cost=rec.cost, battery_price_per_kwh=rec.price_per_kwh,
        tick_s=tick, ocpp_delay_s=ocpp_delay_s, variation_frac=variation_frac, seed=seed,
        warmup_s=warmup_s, steps=steps, wall_time_s=time.perf_counter() - wall0)


# -- CLI edge -------------------------------------------------------------------------------------
def add_subparser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `evaluate` on an argparse subparsers object (func(args) -> int)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "evaluate", help="fast-time closed-loop evaluation of a fleet on a frequency trace",
        description="Simulate the daemon's controller and the fleet's vehicle dynamics together "
                    "on a frequency trace (no sockets) and score delivery with the SPEC §3.5 "
                    "compliance tube.")
    _add_arguments(p)
    p.set_defaults(func=run)
    return p


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fleet", required=True, metavar="FLEET.toml", help="fleet file (SPEC §3.2)")
    p.add_argument("--trace", required=True, metavar="TRACE.csv",
                   help="frequency trace CSV, header t_s,f_hz (SPEC §3.2)")
    p.add_argument("--service", required=True,
                   help="FCR, DC-L, DC-H, DC, DM-L, DM-H, DM, DR-L, DR-H, DR or SFFR")
    p.add_argument("--contract-kw", required=True, metavar="KW", help="contracted power, kW > 0")
    p.add_argument("--dispatch", default="compensated", choices=DISPATCH_NAMES,
                   help="naive: proportional split; compensated: best available (default)")
    p.add_argument("--seed", default="0", metavar="N", help="seed of the plant's variation")
    p.add_argument("--variation", default=str(VARIATION_FRAC), metavar="FRAC",
                   help=f"per-vehicle spread of plant dynamics (default {VARIATION_FRAC})")
    p.add_argument("--ocpp-delay-s", default=str(OCPP_DELAY_S), metavar="S",
                   help=f"setpoint delivery delay (default {OCPP_DELAY_S} s)")
    p.add_argument("--warmup-s", default="0", metavar="S",
                   help="score from this time on (the first S seconds let the dispatch get "
                        "ready, e.g. build its standing baseline; default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object (SPEC §3.5)")
    p.add_argument("--battery-price", default=str(BATTERY_PRICE_PER_KWH), metavar="PER_KWH",
                   help="battery price per kWh of capacity, prices the ageing (default "
                        f"{BATTERY_PRICE_PER_KWH:g}: BNEF 2024 BEV pack average, USD)")
    p.add_argument("--record", metavar="FILE.json", default=None,
                   help="also write the run record (<= 10 Hz series, per-vehicle ageing) that "
                        "`v2ghub report` renders")


def _number(text: str, label: str, kind: type[float] | type[int] = float) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise EvaluateError(f"{label}: expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise EvaluateError(f"{label}: must be finite, got {text!r}")
    return value


def run(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Execute parsed `evaluate` arguments; 0 ok, 2 bad input (one line on stderr)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        kw = _number(args.contract_kw, "--contract-kw")
        contracts = contracts_from([(args.service, kw)])
        seed = int(_number(args.seed, "--seed", int))
        variation = _number(args.variation, "--variation")
        delay = _number(args.ocpp_delay_s, "--ocpp-delay-s")
        warmup = _number(args.warmup_s, "--warmup-s")
        spec = load_fleet(args.fleet)
        trace = load_trace(args.trace)
        price = _number(args.battery_price, "--battery-price")
        rec = RunRecorder(keep_series=args.record is not None)
        bar = _ProgressBar(err) if err.isatty() and not args.json else None
        res = evaluate(spec, trace, contracts, dispatch=args.dispatch, seed=seed,
                       variation_frac=variation, ocpp_delay_s=delay,
                       progress=bar.update if bar else None, battery_price_per_kwh=price,
                       recorder=rec, warmup_s=warmup)
        if args.record is not None:
            write_record(args.record, rec.to_record(res))
    except (EvaluateError, ServiceError, FleetFileError, TraceError) as exc:
        print(f"v2ghub evaluate: {exc}", file=err)
        return EXIT_BAD_INPUT
    print(res.to_json() if args.json else summary(res), file=out)
    return 0


def write_record(path: str, doc: dict[str, Any]) -> None:
    """Write a run record as compact JSON (the CLI edge's only file output).

    Raises:
        EvaluateError: the file cannot be written (one line).
    """
    try:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, separators=(",", ":"))
    except OSError as exc:
        raise EvaluateError(f"--record: cannot write {path}: {exc.strerror}") from None


class _ProgressBar:
    """`[#####.....]  50 %` redrawn in place on a terminal."""

    def __init__(self, stream: TextIO, width: int = 40) -> None:
        self.stream, self.width, self.last = stream, width, -1

    def update(self, frac: float) -> None:
        pct = int(frac * 100)
        if pct == self.last:
            return
        self.last = pct
        done = int(frac * self.width)
        end = "\n" if pct >= 100 else ""
        self.stream.write(f"\r[{'#' * done}{'.' * (self.width - done)}] {pct:3d} %{end}")
        self.stream.flush()


def _fmt_s(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


def summary(res: EvalResult) -> str:
    """Human-readable result."""
    return "\n".join([
        f"{res.service} {res.contract_kw:g} kW, {res.n_vehicles} vehicles, "
        f"{res.duration_s:g} s of trace, dispatch {res.dispatch} ({res.dispatch_note})",
        f"  compliance           {res.compliance_pct:.2f} % of samples in the tube"
        + (f" (scored from {res.warmup_s:g} s)" if res.warmup_s else ""),
        f"  max shortfall        {res.max_shortfall_pct:.2f} % of Pc",
        f"  energy shortfall     {res.energy_shortfall_kwh:.3f} kWh",
        f"  events               {res.n_events} ({res.events_not_started} never started, "
        f"{res.events_not_full} never fully delivered)",
        f"  start delay (max)    {_fmt_s(res.start_delay_s_max)}",
        f"  full delivery (max)  {_fmt_s(res.full_delivery_s_max)}",
        f"  SoC range            {res.soc_min:.4f} .. {res.soc_max:.4f}",
        f"  losses               {res.losses_kwh:.3f} kWh (conversion losses)",
        f"  ageing               {res.ageing_loss_pct_mean:.6f} % mean, "
        f"{res.ageing_loss_pct_max:.6f} % max of capacity; cost {res.ageing_cost:.2f} "
        f"at {res.battery_price_per_kwh:g} per kWh",
        f"  {res.steps} ticks of {res.tick_s:g} s in {res.wall_time_s:.2f} s",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry: `python -m controller.tools.evaluate --fleet ... --json`."""
    args = parse_standalone("v2ghub evaluate", __doc__, _add_arguments, argv)
    return args if isinstance(args, int) else run(args)


if __name__ == "__main__":
    sys.exit(main())

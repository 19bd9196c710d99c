"""Fast-time closed-loop evaluation (`v2ghub evaluate`, SPEC §3.1 / §3.5).

The daemon's own `Controller` ticks on a `FleetState` whose rows are the fleet's vehicles, and the
simulator's vectorised `VehiclePlant` is stepped with it on the same fast-time clock: no sockets,
no asyncio, no sleeping. Setpoints reach the plant after a fixed OCPP delivery delay.

What each side knows:
- the PLANT uses the fleet file's parameters with seeded per-vehicle variation (each vehicle's
  dead times and ramp rates scaled by an independent uniform factor in [1 - v, 1 + v]);
- the CONTROLLER knows only the library values of each vehicle's model (vehicles.lookup), handed
  to the dispatch strategy as priors. "naive" ignores them (capacity-proportional split);
  "compensated" is the best strategy the control core has, which today is the same split: the
  dynamics-aware dispatcher is the next issue's work, and the JSON says which one ran.

Time base: ticks at max(trace rate, 1 / tick_s) (default 10 Hz), capped at the 50 Hz trace limit
of SPEC §3.2; the trace is read at each tick by zero-order hold. At each tick: due setpoints are
delivered to the plant, the plant is advanced and measured (D = fleet power - baseline, baseline
= fleet power at t = 0 before any response), then the controller ticks on the frequency.

Not here: file formats (fleetfile, traces), the compliance maths (control.metrics), I/O other
than the CLI edge (`run`, `main`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, TextIO

import numpy as np
import numpy.typing as npt

from controller.control.controller import DISPATCH_NAMES, Controller, ControlParams, make_dispatch
from controller.control.fleet import FleetState
from controller.control.metrics import event_timings, score
from controller.control.services import (
    COMPOUND_NAMES,
    ContractedService,
    ServiceError,
    contracts_from,
    expected_w,
)
from controller.control.vehicles import lookup
from sim_chargers.fleetfile import FleetFileError, FleetSpec, load_fleet
from sim_chargers.plant import FloatArray, PlantParams, VehiclePlant
from sim_chargers.traces import MAX_RATE_HZ, Trace, TraceError, load_trace

IntArray = npt.NDArray[np.intp]

EXIT_BAD_INPUT = 2
OCPP_DELAY_S = 0.1  # fixed CSMS -> charger delivery delay; PITFALLS: ~85-125 ms fan-out p50/p99
VARIATION_FRAC = 0.2  # issue 3: +-20 % per-vehicle spread of the plant's dynamics
MIN_TICK_S = 1.0 / MAX_RATE_HZ  # SPEC §3.2: traces up to 50 Hz
_TIME_EPS_S = 1e-9  # float slack when a delivery time coincides with a tick
# Dynamics varied per vehicle, in this order (same recipe as sim_chargers.fleetfile).
_VARIED = ("t_a_s", "t_c_s", "t_zero_s", "ramp_up_w_s", "ramp_down_w_s")
_PARAM_FIELDS = ("t_a_s", "t_c_s", "t_zero_s", "ramp_up_w_s", "ramp_down_w_s", "max_charge_w",
                 "max_discharge_w", "capacity_wh", "efficiency")


class EvaluateError(ValueError):
    """Bad evaluation input (volumes, dispatch name, variation); the message is one line."""


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
    losses_kwh: float  # 0.0: the plant does not model conversion losses yet (efficiency 1)
    losses_modelled: bool
    n_events: int  # runs of |E| > tol with one sign (metrics.event_timings)
    events_not_started: int  # events that ended before any response beyond tol
    events_not_full: int  # events that ended before full delivery
    dispatch_note: str
    tick_s: float
    ocpp_delay_s: float
    variation_frac: float
    seed: int
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
    "compensated": "best available in the control core; today identical to naive "
                   "(dynamics-aware dispatch is not implemented yet)",
}


def vary(params: PlantParams, variation_frac: float, seed: int) -> PlantParams:
    """Copy of `params` with each vehicle's dead times and ramps scaled by U[1-v, 1+v] (seeded)."""
    if not (math.isfinite(variation_frac) and 0.0 <= variation_frac < 1.0):
        raise EvaluateError(f"variation_frac: must be in [0, 1), got {variation_frac!r}")
    arrays = {name: getattr(params, name) for name in _PARAM_FIELDS}
    if variation_frac > 0:
        rng = np.random.default_rng(seed)
        for name in _VARIED:
            arrays[name] = arrays[name] * rng.uniform(1 - variation_frac, 1 + variation_frac,
                                                      params.n)
    return PlantParams(**arrays)


def service_label(contracts: Sequence[ContractedService]) -> str:
    """"DC" for DC-L + DC-H (and DM, DR), else the part names joined with "+"."""
    names = [c.definition.name for c in contracts]
    for compound, parts in COMPOUND_NAMES.items():
        if all(p in names for p in parts):
            names = [compound if n == parts[0] else n for n in names if n != parts[1]]
    return "+".join(names)


def tick_period_s(trace: Trace, tick_s: float) -> float:
    """Tick at max(trace rate, 1 / tick_s), never faster than 50 Hz."""
    if not (math.isfinite(tick_s) and tick_s > 0):
        raise EvaluateError(f"tick_s: must be > 0, got {tick_s!r}")
    if trace.t_s.size > 1:
        tick_s = min(tick_s, float(np.median(np.diff(trace.t_s))))
    return round(max(tick_s, MIN_TICK_S), 6)  # 0.05, not 0.05000000000000071 from CSV times


def fleet_state(spec: FleetSpec) -> FleetState:
    """One row per vehicle: online, in an active transaction, limits = charger rating."""
    fleet = FleetState(capacity=spec.n)
    for i, charger_w in enumerate(spec.charger_w.tolist()):
        fleet.row(f"EV{i:06d}", 1, max_power_w=charger_w, can_discharge=True)
    fleet.online[:] = True
    fleet.tx_active[:] = True
    fleet.soc_frac[:] = spec.soc_frac
    return fleet


class PlantLike(Protocol):
    """What the loop needs of a plant (sim_chargers.plant.VehiclePlant; the bench's loop twin)."""

    @property
    def params(self) -> PlantParams: ...
    @property
    def power_w(self) -> FloatArray: ...
    @property
    def soc_frac(self) -> FloatArray: ...
    def command(self, rows: IntArray, setpoint_w: FloatArray, now_s: float) -> None: ...
    def step(self, now_s: float) -> FloatArray: ...


class ClosedLoop:
    """Controller and plant on one fast-time clock; `run` returns fleet power per tick (W).

    Per tick: setpoints whose delivery time has come are handed to the plant (at that time), the
    plant is advanced and measured, then the controller ticks on the frequency and its setpoints
    leave, arriving `ocpp_delay_s` later (0 = at once). The plant is stepped on every tick: the
    cost per tick is a fixed number of numpy calls, whatever the fleet size.
    """

    def __init__(self, plant: PlantLike, fleet: FleetState, ctl: Controller, *,
                 ocpp_delay_s: float) -> None:
        self.plant, self.fleet, self.ctl = plant, fleet, ctl
        self.ocpp_delay_s = ocpp_delay_s
        soc = plant.soc_frac
        self.soc_lo, self.soc_hi = float(soc.min(initial=1.0)), float(soc.max(initial=0.0))
        self._queue: deque[tuple[float, IntArray, FloatArray]] = deque()

    def run(self, t_s: FloatArray, f_hz: FloatArray,
            progress: Callable[[float], None] | None = None) -> FloatArray:
        """Play the ticks t_s (s) with frequencies f_hz; fleet power (W) at each tick."""
        n = t_s.size
        out = np.empty(n)
        every = max(1, n // 100)
        for k, (now_s, freq_hz) in enumerate(zip(t_s.tolist(), f_hz.tolist(), strict=True)):
            self._deliver(now_s)
            out[k] = self._measure(now_s)
            self._control(now_s, freq_hz)
            if progress is not None and k % every == 0:
                progress(k / n)
        if progress is not None:
            progress(1.0)
        return out

    def _deliver(self, now_s: float) -> None:
        q = self._queue
        while q and q[0][0] <= now_s + _TIME_EPS_S:
            at_s, rows, sp = q.popleft()
            self.plant.command(rows, sp, min(at_s, now_s))

    def _measure(self, now_s: float) -> float:
        """Step the plant to now_s; track SoC extremes; copy power and SoC into the fleet."""
        p = self.plant.step(now_s)
        soc = self.plant.soc_frac
        self.soc_lo = min(self.soc_lo, float(soc.min(initial=1.0)))
        self.soc_hi = max(self.soc_hi, float(soc.max(initial=0.0)))
        self.fleet.measured_w[:] = p
        self.fleet.soc_frac[:] = soc
        return float(p.sum())

    def _control(self, now_s: float, freq_hz: float) -> None:
        res = self.ctl.tick(self.fleet, now_s, freq_hz)
        rows = res.send_rows
        if rows.size:
            sp = res.target_w[rows]
            self.fleet.mark_sent(rows, sp, now_s)
            self._queue.append((now_s + self.ocpp_delay_s, rows, sp))
            if self.ocpp_delay_s <= 0:
                self._deliver(now_s)


def evaluate(spec: FleetSpec, trace: Trace, contracts: list[ContractedService], *,
             dispatch: str = "compensated", seed: int = 0,
             variation_frac: float = VARIATION_FRAC, tick_s: float = 0.1,
             ocpp_delay_s: float = OCPP_DELAY_S,
             progress: Callable[[float], None] | None = None) -> EvalResult:
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

    Raises:
        EvaluateError: bad dispatch, variation, tick, delay or an empty contract list.
    """
    wall0 = time.perf_counter()
    if not contracts:
        raise EvaluateError("contracts: at least one contracted service is required")
    if dispatch not in DISPATCH_NAMES:
        raise EvaluateError(f"dispatch: unknown {dispatch!r}; known: {', '.join(DISPATCH_NAMES)}")
    if not (math.isfinite(ocpp_delay_s) and ocpp_delay_s >= 0):
        raise EvaluateError(f"ocpp_delay_s: must be >= 0, got {ocpp_delay_s!r}")
    tick = tick_period_s(trace, tick_s)
    n_steps = math.floor(trace.duration_s / tick + 1e-9) + 1
    t = np.arange(n_steps, dtype=np.float64) * tick
    f = trace.f_at_many(t)
    expected = expected_w(contracts, t, f)

    plant = VehiclePlant(vary(spec.params, variation_frac, seed), spec.soc_frac)
    baseline_w = float(plant.power_w.sum())
    priors = [lookup(m.name) for m in spec.models]  # library values only, never the plant's
    ctl = Controller(contracts, ControlParams(tick_period_s=tick),
                     dispatch=make_dispatch(dispatch, priors))
    loop = ClosedLoop(plant, fleet_state(spec), ctl, ocpp_delay_s=ocpp_delay_s)
    measured = loop.run(t, f, progress)
    return _result(contracts, spec, dispatch=dispatch, t=t, expected=expected,
                   delivered=measured - baseline_w, loop=loop, variation_frac=variation_frac,
                   seed=seed, tick=tick, ocpp_delay_s=ocpp_delay_s, wall0=wall0)


def _result(contracts: Sequence[ContractedService], spec: FleetSpec, *, dispatch: str,
            t: FloatArray, expected: FloatArray, delivered: FloatArray, loop: ClosedLoop,
            variation_frac: float, seed: int, tick: float, ocpp_delay_s: float,
            wall0: float) -> EvalResult:
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
        soc_min=loop.soc_lo, soc_max=loop.soc_hi, losses_kwh=0.0, losses_modelled=False,
        n_events=len(events), events_not_started=len(events) - len(starts),
        events_not_full=len(events) - len(fulls), dispatch_note=_DISPATCH_NOTES[dispatch],
        tick_s=tick, ocpp_delay_s=ocpp_delay_s, variation_frac=variation_frac, seed=seed,
        steps=int(t.size), wall_time_s=time.perf_counter() - wall0)


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
    p.add_argument("--json", action="store_true", help="print one JSON object (SPEC §3.5)")


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
        spec = load_fleet(args.fleet)
        trace = load_trace(args.trace)
        bar = _ProgressBar(err) if err.isatty() and not args.json else None
        res = evaluate(spec, trace, contracts, dispatch=args.dispatch, seed=seed,
                       variation_frac=variation, ocpp_delay_s=delay,
                       progress=bar.update if bar else None)
    except (EvaluateError, ServiceError, FleetFileError, TraceError) as exc:
        print(f"v2ghub evaluate: {exc}", file=err)
        return EXIT_BAD_INPUT
    print(res.to_json() if args.json else summary(res), file=out)
    return 0


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
        f"  compliance           {res.compliance_pct:.2f} % of samples in the tube",
        f"  max shortfall        {res.max_shortfall_pct:.2f} % of Pc",
        f"  energy shortfall     {res.energy_shortfall_kwh:.3f} kWh",
        f"  events               {res.n_events} ({res.events_not_started} never started, "
        f"{res.events_not_full} never fully delivered)",
        f"  start delay (max)    {_fmt_s(res.start_delay_s_max)}",
        f"  full delivery (max)  {_fmt_s(res.full_delivery_s_max)}",
        f"  SoC range            {res.soc_min:.4f} .. {res.soc_max:.4f}",
        f"  losses               {res.losses_kwh:.3f} kWh (conversion losses not modelled yet)",
        f"  {res.steps} ticks of {res.tick_s:g} s in {res.wall_time_s:.2f} s",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry: `python -m controller.tools.evaluate --fleet ... --json`."""
    p = argparse.ArgumentParser(prog="v2ghub evaluate", description=__doc__.splitlines()[0]
                                if __doc__ else None)
    _add_arguments(p)
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:  # argparse: usage error (2) or --help (0)
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

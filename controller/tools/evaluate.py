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

from controller.control.ageing import AgeingState
from controller.control.controller import DISPATCH_NAMES, Controller, ControlParams, make_dispatch
from controller.control.fleet import FleetState
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
from sim_chargers.fleetfile import FleetFileError, FleetSpec, load_fleet
from sim_chargers.plant import FloatArray, PlantParams, VehiclePlant
from sim_chargers.traces import MAX_RATE_HZ, Trace, TraceError, load_trace

IntArray = npt.NDArray[np.intp]

EXIT_BAD_INPUT = 2
OCPP_DELAY_S = 0.1  # fixed CSMS -> charger delivery delay; PITFALLS: ~85-125 ms fan-out p50/p99
VARIATION_FRAC = 0.2  # issue 3: +-20 % per-vehicle spread of the plant's dynamics
# One-way conversion efficiency of bidirectional on-board chargers, seed §VI: 94.7-99 %. A
# vehicle whose fleet file gives none (efficiency 1.0) draws one uniformly from this range.
EFFICIENCY_RANGE = (0.947, 0.99)
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


def vary(params: PlantParams, variation_frac: float, seed: int) -> PlantParams:
    """Copy of `params`: dead times and ramps scaled by U[1-v, 1+v], efficiency drawn (seeded).

    Efficiency: vehicles at 1.0 (none given) draw from EFFICIENCY_RANGE (its middle when v = 0);
    others keep theirs.
    """
    if not (math.isfinite(variation_frac) and 0.0 <= variation_frac < 1.0):
        raise EvaluateError(f"variation_frac: must be in [0, 1), got {variation_frac!r}")
    arrays = {name: getattr(params, name) for name in _PARAM_FIELDS}
    if variation_frac > 0:
        rng = np.random.default_rng(seed)
        for name in _VARIED:
            arrays[name] = arrays[name] * rng.uniform(1 - variation_frac, 1 + variation_frac,
                                                      params.n)
    # losses: own stream, so the dynamics draw above is what it always was for a seed; without
    # variation every such vehicle gets the middle of the range
    lo, hi = EFFICIENCY_RANGE
    drawn = (np.random.default_rng([seed, 1]).uniform(lo, hi, params.n) if variation_frac > 0
             else np.full(params.n, 0.5 * (lo + hi)))
    arrays["efficiency"] = np.where(params.efficiency >= 1.0, drawn, params.efficiency)
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
    """One row per vehicle: online, in an active transaction, limits = charger rating.

    Dynamics priors are the LIBRARY values of each vehicle's model (vehicles.lookup), never
    the file's overrides nor the plant's varied figures.
    """
    fleet = FleetState(capacity=spec.n)
    for i, charger_w in enumerate(spec.charger_w.tolist()):
        fleet.row(f"EV{i:06d}", 1, max_power_w=charger_w, can_discharge=True)
    fleet.online[:] = True
    fleet.tx_active[:] = True
    fleet.soc_frac[:] = spec.soc_frac
    fleet.set_prior(np.arange(spec.n), [lookup(m.name) for m in spec.models])
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
                 ocpp_delay_s: float, recorder: RunRecorder | None = None,
                 identifier: Identifier | None = None) -> None:
        self.plant, self.fleet, self.ctl = plant, fleet, ctl
        self.ocpp_delay_s = ocpp_delay_s
        self.recorder = recorder  # sees each tick's power and SoC (ageing, run record)
        # online identification (control.identify): fed every tick's plant power and every
        # offered setpoint; refines the fleet's dynamics columns the dispatch reads
        self.identifier = identifier
        self._all_rows = np.arange(fleet.n, dtype=np.intp)
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
            # the fleet's summed power is the site meter's p_w here (SPEC §3.3), measured now:
            # the daemon hands its meter samples to the controller the same way
            self._control(now_s, freq_hz, float(out[k]))
            if progress is not None and k % every == 0:
                progress(k / n)
        if progress is not None:
            progress(1.0)
        return out

    def losses_kwh(self) -> float:
        """Conversion losses of the plant so far (kWh); 0 for a plant that does not model them."""
        losses = getattr(self.plant, "losses_wh", None)
        return 0.0 if losses is None else float(np.sum(losses)) / 1000.0

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
        if self.identifier is not None:
            self.identifier.observe(self._all_rows, now_s, p)
        if self.recorder is not None:
            self.recorder.observe(now_s, p, soc)
        return float(p.sum())

    def _control(self, now_s: float, freq_hz: float, site_power_w: float | None = None) -> None:
        res = self.ctl.tick(self.fleet, now_s, freq_hz, site_power_w=site_power_w,
                            site_power_at_s=now_s)
        rows = res.send_rows
        if rows.size:
            sp = res.target_w[rows]
            self.fleet.mark_sent(rows, sp, now_s)
            if self.identifier is not None:
                self.identifier.commanded(rows, sp, now_s)
            self._queue.append((now_s + self.ocpp_delay_s, rows, sp))
            if self.ocpp_delay_s <= 0:
                self._deliver(now_s)


# -- ageing and the run record --------------------------------------------------------------------
# Battery price for `ageing_cost` when none is given, per kWh of nominal capacity: BloombergNEF's
# December 2024 battery price survey gives $97/kWh for BEV packs ($115/kWh over all uses); rounded.
# The cost comes out in the price's currency.
BATTERY_PRICE_PER_KWH = 100.0
# Ageing is stepped once per simulated second, not per tick. Calendar ageing is a per-day rate, and
# a 10 kW charger moves a 40 kWh battery's SoC by < 0.007 % a second, so the decimation only
# misses SoC reversals shorter than a second (half-cycles < 1e-4 deep); throughput is still
# integrated every tick.
AGEING_STEP_S = 1.0
RECORD_PERIOD_S = 0.1  # the run record (--record) keeps samples at most at 10 Hz (issue 3 item 7)
RECORD_FORMAT = "v2ghub-run-record"  # `format` of the --record document; `version` 1
_RECORD_DECIMALS = {"t_s": 3, "f_hz": 5, "expected_w": 1, "delivered_w": 1, "soc_min": 6,
                    "soc_max": 6, "soc_mean": 6}


class RunRecorder:
    """Watches the closed loop tick by tick: per-vehicle ageing and, optionally, a run record.

    `evaluate` starts it, calls `observe` on every tick (from `ClosedLoop`) and `finish` at the
    end; then `ageing` holds the per-vehicle state and, with `keep_series`, `to_record(result)`
    is the `--record` document `v2ghub report` reads. Per tick: a few numpy calls over the
    vehicles, no Python loop over them.
    """

    def __init__(self, *, keep_series: bool = False, ageing_step_s: float = AGEING_STEP_S,
                 record_period_s: float = RECORD_PERIOD_S) -> None:
        self.keep_series = keep_series
        self.ageing_step_s = ageing_step_s
        self.record_period_s = record_period_s
        self.ageing = AgeingState([])
        self.price_per_kwh = BATTERY_PRICE_PER_KWH
        self.models: tuple[str, ...] = ()
        self.capacity_wh = np.zeros(0)
        self.full_delivery_s = math.nan
        self.series: dict[str, FloatArray] = {}
        self._energy_wh = np.zeros(0)
        self._soc_last = np.zeros(0)
        self._t_prev = math.nan
        self._t_aged = 0.0
        self._t_kept = -math.inf
        self._k = 0
        self._kept: list[int] = []
        self._soc_stats: list[tuple[float, float, float]] = []

    def start(self, models: Sequence[str], chemistries: Sequence[str], capacity_wh: FloatArray,
              soc_frac: FloatArray, price_per_kwh: float) -> None:
        """Vehicles at t = 0 (one entry each); sets every SoC reference."""
        if not (math.isfinite(price_per_kwh) and price_per_kwh >= 0):
            raise EvaluateError(f"battery_price_per_kwh: must be >= 0, got {price_per_kwh!r}")
        self.models, self.price_per_kwh = tuple(models), price_per_kwh
        self.capacity_wh = np.asarray(capacity_wh, dtype=np.float64)
        self.ageing = AgeingState(chemistries)
        self.ageing.step(0.0, soc_frac, 0.0, self.capacity_wh)
        self._energy_wh = np.zeros(self.ageing.n)
        self._soc_last = soc_frac

    def observe(self, now_s: float, power_w: FloatArray, soc_frac: FloatArray) -> None:
        """One tick: the plant's power (W) and SoC (0..1) per vehicle at `now_s`."""
        if not math.isnan(self._t_prev):
            self._energy_wh += np.abs(power_w) * ((now_s - self._t_prev) / 3600.0)
        self._t_prev, self._soc_last = now_s, soc_frac
        if now_s - self._t_aged >= self.ageing_step_s - _TIME_EPS_S:
            self._age(now_s, soc_frac)
        if self.keep_series and now_s - self._t_kept >= self.record_period_s - _TIME_EPS_S:
            self._t_kept = now_s
            self._kept.append(self._k)
            self._soc_stats.append((float(soc_frac.min(initial=1.0)),
                                    float(soc_frac.max(initial=0.0)), float(soc_frac.mean())))
        self._k += 1

    def _age(self, now_s: float, soc_frac: FloatArray) -> None:
        dt_s = now_s - self._t_aged
        mean_power_w = self._energy_wh * (3600.0 / dt_s) if dt_s > 0 else 0.0
        self.ageing.step(dt_s, soc_frac, mean_power_w, self.capacity_wh)
        self._energy_wh[:] = 0.0
        self._t_aged = now_s

    def finish(self, t_s: FloatArray, f_hz: FloatArray, expected_w: FloatArray,
               delivered_w: FloatArray, full_delivery_s: float) -> None:
        """Age the last partial step; keep the recorded ticks' samples (with `keep_series`)."""
        if self._t_prev > self._t_aged:
            self._age(self._t_prev, self._soc_last)
        self.full_delivery_s = full_delivery_s
        if self.keep_series:
            idx = np.asarray(self._kept, dtype=np.intp)
            stats = np.asarray(self._soc_stats, dtype=np.float64).reshape(-1, 3)
            self.series = {"t_s": t_s[idx], "f_hz": f_hz[idx], "expected_w": expected_w[idx],
                           "delivered_w": delivered_w[idx], "soc_min": stats[:, 0],
                           "soc_max": stats[:, 1], "soc_mean": stats[:, 2]}

    @property
    def loss_pct_mean(self) -> float:
        """Capacity lost so far, % of nominal, mean over the vehicles."""
        pct = self.ageing.loss_pct
        return float(pct.mean()) if pct.size else 0.0

    @property
    def loss_pct_max(self) -> float:
        """Capacity lost so far, % of nominal, worst vehicle."""
        return float(self.ageing.loss_pct.max(initial=0.0))

    @property
    def cost(self) -> float:
        """Fleet ageing cost so far: lost kWh x battery price."""
        return float(self.ageing.cost(self.price_per_kwh).sum())

    def to_record(self, result: EvalResult) -> dict[str, Any]:
        """The `--record` document: summary, <= 10 Hz series, per-vehicle final ageing."""
        if not self.keep_series:
            raise EvaluateError("to_record: the recorder was made without keep_series")
        return {
            "format": RECORD_FORMAT, "version": 1, "source": "evaluate",
            "summary": {**result.to_dict(), "required_full_delivery_s": self.full_delivery_s},
            "record": {k: np.round(v, _RECORD_DECIMALS[k]).tolist()
                       for k, v in self.series.items()},
            "vehicles": {
                "model": list(self.models),
                "capacity_kwh": (self.capacity_wh / 1000.0).tolist(),
                "ageing_loss_pct": self.ageing.loss_pct.tolist(),
                "ageing_cost": self.ageing.cost(self.price_per_kwh).tolist(),
                "throughput_kwh": (self.ageing.throughput_wh / 1000.0).tolist(),
            },
        }


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

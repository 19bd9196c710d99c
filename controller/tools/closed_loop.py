"""The fast-time closed loop: the daemon's `Controller` and the simulated plant on one clock.

`ClosedLoop` ticks the controller on a `FleetState` whose rows are the fleet's vehicles and steps
the simulator's vectorised plant with it: no sockets, no asyncio, no sleeping. Setpoints reach the
plant after a fixed OCPP delivery delay. Also here, the loop's inputs:
- `vary`: the PLANT's parameters, the fleet file's with seeded per-vehicle variation (dead times
  and ramp rates scaled by an independent uniform factor in [1 - v, 1 + v]) and a drawn one-way
  conversion efficiency (the seed's 94.7-99 % range) unless the fleet gives one;
- `fleet_state`: what the CONTROLLER knows, the library values of each vehicle's model
  (vehicles.lookup) as dynamics priors, never the file's overrides nor the plant's figures;
- `tick_period_s`: the time base, max(trace rate, 1 / tick_s), capped at SPEC §3.2's 50 Hz.

Errors: `EvaluateError` (ValueError), bad evaluation input with a one-line message; raised here,
by run_record.py and by evaluate.py, which re-exports it.

Not here: scoring and the result (evaluate.py), ageing and the run record (run_record.py), any
I/O.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Protocol

import numpy as np
import numpy.typing as npt

from controller.control.controller import Controller
from controller.control.fleet import FleetState
from controller.control.identify import Identifier
from controller.control.vehicles import lookup
from sim_chargers.fleetfile import FleetSpec
from sim_chargers.plant import FloatArray, PlantParams
from sim_chargers.traces import MAX_RATE_HZ, Trace

IntArray = npt.NDArray[np.intp]

# One-way conversion efficiency of bidirectional on-board chargers, seed §VI: 94.7-99 %. A
# vehicle whose fleet file gives none (efficiency 1.0) draws one uniformly from this range.
EFFICIENCY_RANGE = (0.947, 0.99)
MIN_TICK_S = 1.0 / MAX_RATE_HZ  # SPEC §3.2: traces up to 50 Hz
TIME_EPS_S = 1e-9  # float slack when a delivery time coincides with a tick
# Dynamics varied per vehicle, in this order (same recipe as sim_chargers.fleetfile).
_VARIED = ("t_a_s", "t_c_s", "t_zero_s", "ramp_up_w_s", "ramp_down_w_s")
_PARAM_FIELDS = ("t_a_s", "t_c_s", "t_zero_s", "ramp_up_w_s", "ramp_down_w_s", "max_charge_w",
                 "max_discharge_w", "capacity_wh", "efficiency")


class EvaluateError(ValueError):
    """Bad evaluation input (volumes, dispatch name, variation); the message is one line."""


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


class TickObserver(Protocol):
    """What the loop tells an observer on every tick (run_record.RunRecorder)."""

    def observe(self, now_s: float, power_w: FloatArray, soc_frac: FloatArray) -> None: ...


class ClosedLoop:
    """Controller and plant on one fast-time clock; `run` returns fleet power per tick (W).

    Per tick: setpoints whose delivery time has come are handed to the plant (at that time), the
    plant is advanced and measured, then the controller ticks on the frequency and its setpoints
    leave, arriving `ocpp_delay_s` later (0 = at once). The plant is stepped on every tick: the
    cost per tick is a fixed number of numpy calls, whatever the fleet size.
    """

    def __init__(self, plant: PlantLike, fleet: FleetState, ctl: Controller, *,
                 ocpp_delay_s: float, recorder: TickObserver | None = None,
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
        while q and q[0][0] <= now_s + TIME_EPS_S:
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

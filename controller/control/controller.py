"""Controller: one control tick turns a frequency into per-EVSE targets and the rows to send.

Pure numpy: no I/O, no asyncio, no clock reads (`now_s` is an argument). One vectorised pass over
the fleet per tick, no per-row Python loop.

Per tick:
1. request = Σ contracts at `freq_hz` (services.ServiceState, which also keeps the memory of
   static trigger-and-hold products such as SFFR). When `freq_hz` is None (meter stale
   or invalid, SPEC §3.3) no request can be computed: the response ramps linearly from its last
   good value to 0 (baseline) over `fallback_ramp_s`, never jumping and never driven by bad data
   (the service state still advances with a NaN frequency: nothing triggers on bad data).
2. eligible = online & tx_active; targets = the dispatch strategy's split of the response.
   The strategy is a seam (`Dispatcher`): "naive" is the capacity-proportional split with no
   regard to dynamics (dispatch.split_with_headroom); "compensated" is the dynamics-aware
   dispatch of dispatch_comp (standing readiness offsets, deadline planning with the per-row
   dynamics model, feedback on measured power). Its priors are the fleet's dynamics columns,
   which `make_dispatch(name, priors)` can also fill.
3. send_rows = eligible rows never sent, moved ≥ min_step_w from the last offered setpoint, or
   last sent ≥ refresh_s ago (profiles expire by themselves; the refresh keeps them alive).
The caller offers those setpoints and then calls `fleet.mark_sent(rows, target[rows], now_s)`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from controller.control.dispatch import Split, split_with_headroom
from controller.control.dispatch_comp import CompensatedDispatch
from controller.control.services import ContractedService, ServiceState

if TYPE_CHECKING:
    from controller.control.energy import EnergyParams
    from controller.control.fleet import FleetState
    from controller.control.vehicles import VehicleModel
    from controller.settings import ControlConfig

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]


@runtime_checkable
class MeterObserver(Protocol):
    """A dispatch that wants to know how fresh its measurements are (called before each tick).

    `site_power_w` (SPEC §3.3 `p_w`, None: none or stale) measured at `site_power_at_s`;
    `measured_at_s[row]`: when FleetState.measured_w[row] was reported (None: all just now).
    """

    def observe_meters(self, site_power_w: float | None, site_power_at_s: float | None,
                       measured_at_s: FloatArray | None) -> None: ...


class Dispatcher(Protocol):
    """Dispatch strategy: split `response_w` (W, relative to baseline) over the eligible rows.

    Must be vectorised over rows, keep every target within its row's limits and leave ineligible
    rows at baseline; may keep state between ticks (it is called once per tick, `now_s` rising).
    """

    def __call__(self, response_w: float, fleet: FleetState, eligible: BoolArray,
                 now_s: float) -> Split: ...


def proportional_dispatch(response_w: float, fleet: FleetState, eligible: BoolArray,
                          now_s: float) -> Split:
    """Capacity-proportional split, blind to dynamics (dispatch.split_with_headroom)."""
    del now_s  # memoryless
    return split_with_headroom(response_w, fleet.baseline_w, fleet.max_charge_w,
                               fleet.max_discharge_w, fleet.can_discharge, eligible)


DISPATCH_NAMES = ("naive", "compensated")


def make_dispatch(name: str, priors: Sequence[VehicleModel] | None = None,
                  energy: EnergyParams | None = None) -> Dispatcher:
    """The strategy called `name` ("naive" or "compensated").

    Args:
        name: "naive" = proportional split (stateless, ignores priors); "compensated" = a new
            dispatch_comp.CompensatedDispatch (stateful: one per controller).
        priors: per-row vehicle model priors (library values, never the plant's). When given,
            the compensated dispatch writes them into the fleet's dynamics columns on its first
            tick (if the row count matches); otherwise it uses the columns as they are
            (FleetState.set_prior, vehicles.NEUTRAL by default).
        energy: SoC window and restore settings of the compensated dispatch (control.energy;
            default EnergyParams()).

    Raises:
        ValueError: unknown name.
    """
    if name not in DISPATCH_NAMES:
        raise ValueError(f"unknown dispatch {name!r}; known: {', '.join(DISPATCH_NAMES)}")
    if name == "compensated":
        return CompensatedDispatch(priors, energy_params=energy)
    return proportional_dispatch


@dataclass(frozen=True)
class ControlParams:
    """Tuning of the control loop; fields and defaults mirror settings.ControlConfig."""

    tick_period_s: float = 0.1  # issue 2: a tick every 100 ms
    min_step_w: float = 100.0  # smaller moves are not worth an OCPP call
    refresh_s: float = 10.0  # a third of the 30 s profile validity: two retries before lapse
    fallback_ramp_s: float = 2.0  # response decays to baseline over this when the meter is bad

    @classmethod
    def from_config(cls, cfg: ControlConfig) -> ControlParams:
        """Build from the validated daemon config."""
        return cls(tick_period_s=cfg.tick_period_s, min_step_w=cfg.min_step_w,
                   refresh_s=cfg.refresh_s, fallback_ramp_s=cfg.fallback_ramp_s)


@dataclass(frozen=True, slots=True)
class TickResult:
    """Outcome of one tick (all powers in W, + = import)."""

    # What the contracts ask for. In fallback no valid frequency exists, so it equals the
    # ramping response_w (kept finite for telemetry; `fallback` says which it is).
    request_w: float
    response_w: float  # what the fleet is asked to deliver relative to baseline
    target_w: FloatArray  # per row
    send_rows: IntArray  # rows whose target must be offered now
    fallback: bool  # meter bad: response ramping to baseline
    # Part of response_w the eligible rows cannot deliver, signed like response_w (0 if none):
    # deliverable = response_w - shortfall_w.
    shortfall_w: float
    available_down_w: float  # headroom magnitudes (>= 0) of the eligible rows below baseline
    available_up_w: float  # ... and above

    @property
    def available_w(self) -> tuple[float, float]:
        """(down_w, up_w) headroom magnitudes of the eligible rows."""
        return self.available_down_w, self.available_up_w


class Controller:
    """Stateful in the service state (static holds) and the fallback ramp; the rest is FleetState.

    `dispatch` is the split strategy (default: the proportional split the daemon has always used).
    """

    def __init__(self, contracts: Sequence[ContractedService], params: ControlParams, *,
                 dispatch: Dispatcher = proportional_dispatch) -> None:
        self.contracts = tuple(contracts)
        self.params = params
        self.services = ServiceState(self.contracts)
        self.dispatch = dispatch
        # measurement times reach a dispatch that asks for them (MeterObserver) before its tick
        self._observe = dispatch.observe_meters if isinstance(dispatch, MeterObserver) else None
        use_contracts = getattr(dispatch, "use_contracts", None)  # energy reserve (issue 4)
        if use_contracts is not None:
            use_contracts(self.contracts)
        self._last_response_w = 0.0
        self._fallback_from: tuple[float, float] | None = None  # (start now_s, response then)

    def _response(self, now_s: float, freq_hz: float | None) -> tuple[float, float, bool]:
        """(request_w, response_w, fallback)."""
        if freq_hz is not None and math.isfinite(freq_hz):
            self._fallback_from = None
            req = self.services.request_w(now_s, float(freq_hz))
            return req, req, False
        self.services.request_w(now_s, math.nan)  # time runs on; nothing triggers on bad data
        if self._fallback_from is None:
            self._fallback_from = (now_s, self._last_response_w)
        start_s, start_w = self._fallback_from
        ramp_s = self.params.fallback_ramp_s
        left = 0.0 if ramp_s <= 0 else max(0.0, 1.0 - (now_s - start_s) / ramp_s)
        resp = start_w * min(left, 1.0)
        return resp, resp, True

    def tick(self, fleet: FleetState, now_s: float, freq_hz: float | None, *,
             site_power_w: float | None = None, site_power_at_s: float | None = None,
             measured_at_s: FloatArray | None = None) -> TickResult:
        """Compute targets and the rows to send at `now_s` for `freq_hz` (None: meter bad).

        Args:
            fleet: the fleet arrays (read; the dispatch may refresh its dynamics columns).
            now_s: monotonic time of this tick.
            freq_hz: grid frequency, None when the meter is stale or invalid.
            site_power_w: measured site active power (W, + import; SPEC §3.3 `p_w`), None when
                the meter sends none or it is stale. The feedback of a dispatch that observes
                it (compensated) then uses it instead of the per-EVSE MeterValues.
            site_power_at_s: when `site_power_w` was measured (monotonic, same clock as
                `now_s`); `now_s` when None.
            measured_at_s: per row, when `fleet.measured_w` was reported (MeterValues arrive
                every few seconds: older values must not reset the dispatch's model); None
                when every row was measured at `now_s` (fast time).
        """
        if self._observe is not None:
            at_s = now_s if site_power_at_s is None else site_power_at_s
            self._observe(site_power_w, at_s if site_power_w is not None else None,
                          measured_at_s)
        req, resp, fallback = self._response(now_s, freq_hz)
        self._last_response_w = resp
        eligible = fleet.online & fleet.tx_active
        split = self.dispatch(resp, fleet, eligible, now_s)
        target = split.target_w
        last = fleet.setpoint_w
        sent_at = fleet.sent_at_s
        p = self.params
        with np.errstate(invalid="ignore"):
            due = (np.isnan(last) | np.isnan(sent_at)
                   | (np.abs(target - last) >= p.min_step_w)
                   | (now_s - sent_at >= p.refresh_s))
        send_rows: IntArray = np.flatnonzero(eligible & due)
        shortfall = min(0.0, resp + split.down_w) if resp < 0 else max(0.0, resp - split.up_w)
        return TickResult(req, resp, target, send_rows, fallback, shortfall,
                          split.down_w, split.up_w)

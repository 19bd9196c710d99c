"""Departure targets: a vehicle that must leave with a given SoC (issue 4 item 4).

Pure numpy over fleet columns: no I/O, no clock reads (`now_s` is an argument), no loop over
rows. A row has a departure when `departure_at_s` and `target_soc_frac` are both known
(config `[[vehicle]] departure_soc`, or the EV's own NotifyEVChargingNeeds: departureTime and
energyAmount). For such a row, each tick:

- FLOOR: the lowest SoC from which charging at the row's full rate still reaches the target by
  `departure - margin_s`: target - max_charge x efficiency x time left / capacity. It rises
  linearly toward the target and raises the energy window's minimum (control.energy.window),
  so frequency response never takes out energy that could not be put back in time.
- BASELINE: the constant charging power that reaches the target by then from the SoC now,
  (target - SoC) x capacity / efficiency / time left, clipped to [0, max charge]. The response
  is dispatched around it (both dispatches), so the vehicle keeps serving while it charges;
  recomputed every tick, it rises when the service has drawn energy out and falls when it has
  put energy in. At or past `departure - margin_s` it is the full rate until the target.

The BASELINE holds under both dispatches; the FLOOR acts through the energy window, which only
the compensated dispatch applies (naive dispatch splits by capacity, blind to SoC).
Rows without a departure keep a 0 W baseline and no floor. Unknown SoC or capacity: no floor,
and the baseline is the full rate while time is short (the one safe choice), else 0 W.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from controller.control.fleet import FleetState

FloatArray = npt.NDArray[np.float64]
S_PER_H = 3600.0


@dataclass(frozen=True, slots=True)
class DepartureParams:
    # finish this long before the departure (a late plug-out, the last MeterValues' lag)
    margin_s: float = 900.0
    # charger + battery efficiency for planning; the seed's 94.7 % lower bound for
    # bidirectional on-board chargers (Section III), so the plan errs on the early side
    efficiency: float = 0.947


def time_left_s(fleet: FleetState, now_s: float, params: DepartureParams) -> FloatArray:
    """Seconds left to charge (>= 0) per row; NaN where the row has no departure."""
    has = np.isfinite(fleet.departure_at_s) & np.isfinite(fleet.target_soc_frac)
    left = np.maximum(fleet.departure_at_s - params.margin_s - now_s, 0.0)
    return np.where(has, left, np.nan)


def floor_frac(fleet: FleetState, left_s: FloatArray, params: DepartureParams) -> FloatArray:
    """SoC floor keeping the target reachable at full rate (FLOOR); NaN: none."""
    reach = fleet.max_charge_w * params.efficiency * left_s / S_PER_H / fleet.capacity_wh
    floor = np.clip(fleet.target_soc_frac - reach, 0.0, 1.0)
    return np.where(np.isfinite(floor), floor, np.nan)


def charge_w(fleet: FleetState, left_s: FloatArray, params: DepartureParams) -> FloatArray:
    """Baseline charging power per row (BASELINE); 0 W where the row has no departure."""
    need_wh = np.maximum(fleet.target_soc_frac - fleet.soc_frac, 0.0) * fleet.capacity_wh
    known = np.isfinite(need_wh)
    time_up = ~(left_s > 0.0)  # also NaN: masked out below
    plan_w = np.divide(np.where(known, need_wh, 0.0) / params.efficiency * S_PER_H, left_s,
                       out=np.zeros_like(need_wh), where=~time_up)
    # time up: full rate while anything is missing (or while SoC/capacity are unknown)
    short = time_up & (~known | (need_wh > 0.0))
    plan_w = np.where(short, np.inf, plan_w)
    out: FloatArray = np.where(np.isfinite(left_s), np.minimum(plan_w, fleet.max_charge_w), 0.0)
    return out


def update(fleet: FleetState, now_s: float, params: DepartureParams) -> None:
    """Write `soc_floor_frac` and `baseline_w` of the rows with a departure (others: NaN, 0)."""
    left = time_left_s(fleet, now_s, params)
    fleet.soc_floor_frac[:] = floor_frac(fleet, left, params)
    fleet.baseline_w[:] = charge_w(fleet, left, params)

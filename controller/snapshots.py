"""Telemetry payloads (SPEC §3.4) built from the fleet arrays and the last tick.

Pure: plain dicts from state passed in; no I/O, no clock reads (`wall_s` is an argument).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from controller.ageing_tracker import AgeingSummary
from controller.control.controller import TickResult
from controller.control.energy import ContractHeadroom
from controller.control.fleet import FleetState
from controller.control.identify import dynamics_payload
from controller.control.meter import MeterSample
from controller.control.readiness import Readiness

TICK_COSTS_KEPT = 1000  # recent tick costs kept for the p99 in the fleet aggregate


@dataclass(slots=True)
class LoopStats:
    """Control-loop health, published with the fleet aggregate."""

    ticks: int = 0
    overruns: int = 0  # ticks that started more than two periods after the previous one
    last_tick_s: float = float("nan")
    max_gap_s: float = 0.0
    tick_cost_s: list[float] = field(default_factory=list)

    def record(self, start_s: float, end_s: float, period_s: float) -> None:
        if self.ticks:
            gap = start_s - self.last_tick_s
            self.max_gap_s = max(self.max_gap_s, gap)
            if gap > 2 * period_s:
                self.overruns += 1
        self.ticks += 1
        self.last_tick_s = start_s
        self.tick_cost_s.append(end_s - start_s)
        if len(self.tick_cost_s) > TICK_COSTS_KEPT:
            del self.tick_cost_s[: TICK_COSTS_KEPT // 2]

    def cost_p99_ms(self) -> float | None:
        costs = sorted(self.tick_cost_s[-200:])
        return 1e3 * costs[int(0.99 * (len(costs) - 1))] if costs else None


def fleet_payload(fleet: FleetState, result: TickResult | None, sample: MeterSample | None,
                  *, meter_state: str, stations_online: int, stats: LoopStats,
                  wall_s: float, ageing: AgeingSummary | None = None,
                  headroom: Sequence[ContractHeadroom] = (),
                  readiness: Readiness | None = None) -> dict[str, object]:
    """`<prefix>/fleet`: frequency, requested / offered / measured / available power, health.

    With `ageing`: mean and max capacity loss (% of nominal) over the EVSEs ever in service and
    the fleet's total ageing cost (currency of `ageing.battery_price_per_kwh`).
    `headroom` (control.energy.headroom): `headroom` maps each contract's name to how much of
    it the fleet can hold now (`holdable_w`, `holdable_frac` of Pc, for its `sustain_s`), how
    long it can hold the full Pc (`hold_s`, null when SoC or capacity is unknown) and whether
    it is `holdable`.
    `readiness` (compensated dispatch only, else null): the standing offset each row holds
    (`offset_w`) and whether it makes every contract deliverable by its full-delivery
    deadline (`sufficient`, control.readiness).
    """
    active = fleet.online & fleet.tx_active
    r = result
    a = ageing
    return {
        "t": wall_s,
        "f_hz": sample.f_hz if sample else None,
        "meter_state": meter_state,
        "requested_w": r.request_w if r else 0.0,
        "response_w": r.response_w if r else 0.0,
        "setpoint_sum_w": float(np.nansum(fleet.setpoint_w[active])),
        "site_power_w": sample.p_w if sample else None,
        "measured_sum_w": float(np.nansum(fleet.measured_w[active])),
        "available_down_w": r.available_down_w if r else 0.0,
        "available_up_w": r.available_up_w if r else 0.0,
        "shortfall_w": r.shortfall_w if r else 0.0,
        "stations_online": stations_online,
        "evses_active": int(active.sum()),
        "ticks": stats.ticks,
        "tick_overruns": stats.overruns,
        "tick_cost_p99_ms": stats.cost_p99_ms(),
        "ageing_loss_pct_mean": a.loss_pct_mean if a else None,
        "ageing_loss_pct_max": a.loss_pct_max if a else None,
        "ageing_cost": a.cost if a else None,
        "headroom": {h.name: h.to_dict() for h in headroom},
        "readiness": (None if readiness is None else
                      {"offset_w": round(readiness.offset_w, 1),
                       "sufficient": readiness.sufficient}),
    }


def evse_payload(fleet: FleetState, row: int, *,
                 ageing_loss_pct: float | None = None) -> dict[str, object]:
    """`<prefix>/evse/<station>/<evse>`: state, offered setpoint, measurement, limits, ageing.

    `ageing_loss_pct`: capacity lost by the vehicles on this EVSE while in service, % of nominal
    (None: not tracked or never in service; NaN is published as null). `dynamics`: the dead
    times and ramps the controller uses now, "prior" or "identified" (control.identify).
    """
    f = fleet
    return {
        "online": bool(f.online[row]), "tx_active": bool(f.tx_active[row]),
        "setpoint_w": float(f.setpoint_w[row]), "measured_w": float(f.measured_w[row]),
        "soc_frac": float(f.soc_frac[row]), "max_charge_w": float(f.max_charge_w[row]),
        "max_discharge_w": float(f.max_discharge_w[row]),
        "ageing_loss_pct": ageing_loss_pct,
        "dynamics": dynamics_payload(f, row),
    }

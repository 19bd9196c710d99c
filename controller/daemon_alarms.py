"""The daemon's alarms: de-duplicated publishing and the health checks that raise them.

Checks the meter input's state and the fleet's shortfall on every control tick, and the energy
reserve and the readiness offset on the telemetry path; publishes each alarm on the "alarm"
topic (QoS 1) and to the log, a key at most every ALARM_REPEAT_S unless forced. Time comes from
the injected clocks. It makes no control decision and reads no socket: it only looks at what
the cores report (MeterGuard, TickResult, control.energy, control.readiness).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from controller.control import energy

if TYPE_CHECKING:
    from controller.adapters.telemetry import Telemetry
    from controller.control.controller import TickResult
    from controller.control.fleet import FleetState
    from controller.control.meter import MeterGuard
    from controller.control.readiness import Readiness
    from controller.control.services import ContractedService
    from controller.fleet_sync import Alarm
    from controller.settings_types import MeterConfig

log = logging.getLogger(__name__)

# A shortfall alarm needs the fleet to miss more than the SPEC §3.5 tolerance (3 % of Pc) ...
SHORTFALL_TOL_FRAC = 0.03
# ... for longer than DC's full-delivery time (1 s, SPEC §2.1), so a ramp is not an alarm.
SHORTFALL_HOLD_S = 1.0
# readiness_insufficient only once it has lasted this long: after a restart the stations come
# back one by one, and the offsets are re-sized as they do (dispatch_comp.ready_resize_s)
READINESS_HOLD_S = 60.0
# Alarms of one kind are re-published at most this often (a flapping meter must not flood MQTT).
ALARM_REPEAT_S = 10.0


class SiteAlarms:
    """Alarm publisher with de-duplication, and the daemon's alarm checks (one per daemon)."""

    def __init__(self, telemetry: Telemetry, *, fleet: FleetState,
                 contracts: Sequence[ContractedService], energy_params: energy.EnergyParams,
                 guard: MeterGuard, meter: MeterConfig,
                 headroom: Callable[[], list[energy.ContractHeadroom]],
                 readiness: Callable[[], Readiness | None],
                 clock: Callable[[], float], wall: Callable[[], float]) -> None:
        self.telemetry = telemetry
        self.fleet = fleet
        self.contracts = contracts
        self.energy = energy_params
        self.guard = guard
        self.meter = meter
        self._headroom = headroom
        self._readiness = readiness
        self._clock = clock
        self._wall = wall
        self._alarm_sent_s: dict[str, float] = {}
        self.meter_state = "no_data"
        self._started_s = clock()
        self._shortfall_since_s: float | None = None
        self._readiness_bad_since: float | None = None  # insufficient since (monotonic s)

    def alarm(self, key: str, kind: str, message: str, *, force: bool = False,
              **extra: object) -> None:
        """Publish an alarm unless one with this key went out within ALARM_REPEAT_S."""
        now = self._clock()
        last = self._alarm_sent_s.get(key)
        if not force and last is not None and now - last < ALARM_REPEAT_S:
            return
        self._alarm_sent_s[key] = now
        log.warning("alarm %s: %s", kind, message)
        self.telemetry.publish("alarm", {"t": self._wall(), "kind": kind, "message": message,
                                         **extra}, qos=1)

    def publish(self, alarm: Alarm) -> None:
        """Publish an alarm raised by FleetSync (a station's, when it names one)."""
        if alarm.station_id:
            self.alarm(alarm.key, alarm.kind, alarm.message, station_id=alarm.station_id)
        else:
            self.alarm(alarm.key, alarm.kind, alarm.message)

    def check_meter_state(self, now_s: float) -> None:
        """Alarm when the meter input goes stale or invalid, and when it recovers."""
        state = self.guard.state(now_s)
        if state == "no_data" and now_s - self._started_s > self.meter.stale_after_s:
            state = "stale"  # a meter that never spoke (wrong port?) is as bad as a silent one
        if state == self.meter_state:
            return
        prev, self.meter_state = self.meter_state, state
        if state in ("stale", "invalid"):
            self.alarm("meter_" + state, "meter_" + state,
                       f"meter input {state}: response falls back to baseline; check the "
                       f"meter stream to {self.meter.protocol}:{self.meter.port}", force=True)
        elif state == "ok" and prev in ("stale", "invalid"):
            self.alarm("meter_ok", "meter_recovered", "meter input recovered", force=True)

    def check_shortfall(self, now_s: float, result: TickResult) -> None:
        """Alarm when the fleet misses its request beyond the tolerance for SHORTFALL_HOLD_S."""
        # the tolerance is per direction: L and H parts of DC never act at once
        contract_w = max((c.contract_w for c in self.contracts), default=0.0)
        if contract_w <= 0 or result.fallback:
            self._shortfall_since_s = None
            return
        if abs(result.shortfall_w) <= SHORTFALL_TOL_FRAC * contract_w:
            self._shortfall_since_s = None
            return
        if self._shortfall_since_s is None:
            self._shortfall_since_s = now_s
        elif now_s - self._shortfall_since_s >= SHORTFALL_HOLD_S:
            self.alarm("service_shortfall", "service_shortfall",
                       f"fleet can deliver {result.request_w - result.shortfall_w:.0f} W of a "
                       f"{result.request_w:.0f} W request", shortfall_w=result.shortfall_w)

    def check_fleet(self) -> None:
        """The telemetry path's checks: energy reserve, then readiness."""
        self.check_energy_reserve()
        self.check_readiness()

    def check_readiness(self) -> None:
        """Alarm when the standing offset cannot make a contract deliverable by its deadline
        for READINESS_HOLD_S on end (stations coming up one by one are not an alarm)."""
        ready = self._readiness()
        f = self.fleet
        now = self._clock()
        if ready is None or ready.sufficient or not (f.online & f.tx_active).any():
            self._readiness_bad_since = None
            return
        if self._readiness_bad_since is None:
            self._readiness_bad_since = now
        if now - self._readiness_bad_since < READINESS_HOLD_S:
            return
        self.alarm("readiness_insufficient", "readiness_insufficient",
                   f"the vehicles in service cannot reach every contract's full delivery "
                   f"by its deadline even at a standing offset of {ready.offset_w:.0f} W: "
                   f"contract less or bring faster vehicles (see `v2ghub eligibility`)",
                   offset_w=ready.offset_w)

    def check_energy_reserve(self) -> None:
        """Alarm before a contract can no longer be held (issue 4 item 4); telemetry path."""
        f = self.fleet
        if not self.contracts or not (f.online & f.tx_active).any():
            return  # no vehicle in service: nothing to reserve from (station alarms say why)
        for room in energy.reserve_low(self._headroom(), self.energy.alarm_ratio):
            hold = "unlimited" if not np.isfinite(room.hold_s) else f"{room.hold_s:.0f} s"
            self.alarm(f"energy_reserve_low:{room.name}", "energy_reserve_low",
                       f"{room.name}: fleet can hold {room.holdable_w:.0f} W of "
                       f"{room.contract_w:.0f} W for {room.sustain_s:.0f} s, full power for "
                       f"{hold}", service=room.name, headroom=room.to_dict())

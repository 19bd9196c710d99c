"""Apply OCPP session events to the fleet arrays: which EVSEs are in service, at what limits.

Pure: no I/O, no clock reads (`now_s` is an argument), no asyncio. The composition root calls
`apply()` for every event and publishes the alarms it returns. Rules:

- A station is in service (`online`) while a websocket is open AND its session is accepted
  (booted now, or earlier on this daemon, or remembered across a restart).
- An EVSE takes setpoints while a transaction with an EV connected is active (TxProfile needs a
  transactionId, K01.FR.03).
- A setpoint the station did not take (CALLERROR, timeout, Rejected) is retried after a
  back-off, not on the next tick: a station that rejects everything must not be flooded at the
  meter's rate (up to 50 Hz).
- The vehicle on an EVSE is a property of its transaction, not of the EVSE: when a transaction
  ends (or another replaces it) the row goes back to the station's vehicle prior, window and
  rating, and forgets its SoC, departure and what online identification learnt. What arrives
  before the next transaction starts (ISO 15118 charging needs come first with TxStartPoint
  EnergyTransfer) belongs to the next vehicle and is kept. An idToken naming a configured
  `[[vehicle]]` sets that vehicle's prior, battery, window and departure SoC; charging needs
  set the departure time, the EV's battery and the SoC it asks for (control.departure), the
  latter once a SoC is known (AC vehicles report none with their needs).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from controller.control.fleet import FleetState
from controller.control.identify import Identifier
from controller.control.vehicles import NEUTRAL, lookup
from controller.ocpp import events as ev
from controller.settings import StationConfig, VehicleConfig

log = logging.getLogger(__name__)

# First retry after a failed setpoint, doubled per consecutive failure up to the refresh period.
RETRY_INITIAL_S = 1.0


@dataclass(frozen=True, slots=True)
class Alarm:
    key: str  # de-duplication key: one alarm per key per repeat period
    kind: str  # SPEC §3.4 alarm kind
    message: str
    station_id: str | None = None


class FleetSync:
    """Keeps FleetState in step with what the stations report."""

    def __init__(self, fleet: FleetState, stations: dict[str, StationConfig], *,
                 refresh_s: float, identifier: Identifier | None = None,
                 vehicles: Mapping[str, VehicleConfig] | None = None) -> None:
        self.fleet = fleet
        self.identifier = identifier  # online identification: fed every EVSE power reading
        self._stations = stations
        self._vehicles = dict(vehicles or {})  # VehicleConfig.key (casefolded idToken) -> it
        self._tx: dict[int, str | None] = {}  # row -> transaction its vehicle belongs to
        self._departure_soc: dict[int, float] = {}  # row -> configured departure SoC
        self._asked_wh: dict[int, float] = {}  # row -> energyAmount waiting for a SoC
        self._ev_capacity_wh: dict[int, float] = {}  # row -> battery size the EV reported
        # row -> daily departure "HH:MM" of its identified vehicle; the daemon turns it into
        # departure_at_s (it has the clocks). A departure the EV reports itself wins.
        self.schedules: dict[int, str] = {}
        self._refresh_s = refresh_s
        self._failures: dict[int, int] = {}  # row -> consecutive failed setpoints
        self.closing = False  # shutdown begun: stations going away are expected

    def row(self, station_id: str, evse_id: int) -> int:
        """The fleet row of an EVSE, created with the station's rating and vehicle prior."""
        st = self._stations[station_id]
        known = self.fleet.index.get((station_id, evse_id))
        if known is not None:
            return known
        row = self.fleet.row(station_id, evse_id, max_power_w=st.max_power_kw * 1000.0,
                             can_discharge=st.discharge == "negative_limit")
        self._station_defaults(station_id, row)
        return row

    def _station_defaults(self, sid: str, row: int) -> None:
        """The station's vehicle prior (settings validated the name; else NEUTRAL), its SoC
        window (None: the [energy] default) and its rating."""
        f, st = self.fleet, self._stations[sid]
        f.set_prior(row, lookup(st.vehicle) if st.vehicle else NEUTRAL)
        f.soc_min_frac[row] = np.nan if st.soc_min is None else st.soc_min
        f.soc_max_frac[row] = np.nan if st.soc_max is None else st.soc_max
        f.max_charge_w[row] = st.max_power_kw * 1000.0
        f.max_discharge_w[row] = f.max_charge_w[row] if f.can_discharge[row] else 0.0

    def apply(self, station_id: str, event: object, now_s: float) -> Alarm | None:
        """Apply one event; returns an alarm to publish, if any."""
        handler = _HANDLERS.get(type(event))
        return handler(self, station_id, event, now_s) if handler else None

    # -- one small method per event ---------------------------------------------------------------
    def _connected(self, sid: str, e: ev.StationConnected, now_s: float) -> Alarm | None:
        if e.booted:  # a plain reconnect: stations boot only after their own reboot
            self.fleet.online[self.fleet.rows_of(sid)] = True
        return None

    def _booted(self, sid: str, e: ev.StationBooted, now_s: float) -> Alarm | None:
        self.fleet.online[self.fleet.rows_of(sid)] = True
        log.info("station %s booted (%s %s)", sid, e.vendor, e.model)
        return None

    def _lost(self, sid: str, e: ev.StationLost, now_s: float) -> Alarm | None:
        rows = self.fleet.rows_of(sid)
        self.fleet.online[rows] = False
        self.fleet.setpoint_w[rows] = np.nan  # offer again on reconnect
        if self.closing:
            return None
        return Alarm(f"station_lost:{sid}", "station_lost",
                     f"station {sid} disconnected: {e.reason}", sid)

    def _transaction(self, sid: str, e: ev.TransactionChanged, now_s: float) -> Alarm | None:
        f = self.fleet
        i = self.row(sid, e.evse_id)
        f.online[i] = True
        f.tx_active[i] = e.transaction_id is not None and e.ev_connected
        f.setpoint_w[i] = np.nan  # a new transaction needs its own profile
        self._failures.pop(i, None)
        previous = self._tx.get(i)
        if previous is not None and previous != e.transaction_id:
            self._vehicle_changed(sid, i)  # that vehicle left: its figures leave with it
        self._tx[i] = e.transaction_id
        return None

    def _vehicle_changed(self, sid: str, row: int) -> None:
        """A transaction ended or was replaced: back to the station config (module rules)."""
        f = self.fleet
        self._station_defaults(sid, row)
        for col in (f.departure_at_s, f.target_soc_frac, f.soc_floor_frac, f.soc_frac,
                    f.measured_w):
            col[row] = np.nan
        f.baseline_w[row] = 0.0
        for per_row in (self._departure_soc, self._asked_wh, self._ev_capacity_wh,
                        self.schedules):
            per_row.pop(row, None)
        if self.identifier is not None:
            self.identifier.forget(row)

    def _identified(self, sid: str, e: ev.VehicleIdentified, now_s: float) -> Alarm | None:
        v = self._vehicles.get(e.id_token.casefold())
        if v is None:
            log.info("station %s evse %d: idToken (%s) names no configured vehicle",
                     sid, e.evse_id, e.token_type)
            return None
        f, i = self.fleet, self.row(sid, e.evse_id)
        f.set_prior(i, lookup(v.model))
        if v.capacity_kwh is not None:
            f.capacity_wh[i] = 1000.0 * v.capacity_kwh
        elif i in self._ev_capacity_wh:  # what the EV itself reported beats the model's
            f.capacity_wh[i] = self._ev_capacity_wh[i]
        if v.soc_min is not None:
            f.soc_min_frac[i] = v.soc_min
        if v.soc_max is not None:
            f.soc_max_frac[i] = v.soc_max
        if v.departure_soc is not None:
            self._departure_soc[i] = v.departure_soc
            f.target_soc_frac[i] = np.fmax(f.target_soc_frac[i], v.departure_soc)
        if v.departure is not None and not np.isfinite(f.departure_at_s[i]):
            self.schedules[i] = v.departure
        if self.identifier is not None:
            self.identifier.forget(i)
        # the idToken itself (an RFID uid, an EV's MAC) stays out of the log
        log.info("station %s evse %d: configured vehicle %s (by %s idToken)", sid, e.evse_id,
                 v.model, e.token_type)
        return None

    def _needs(self, sid: str, e: ev.EvNeedsReported, now_s: float) -> Alarm | None:
        f, i = self.fleet, self.row(sid, e.evse_id)
        if e.capacity_wh is not None:
            f.capacity_wh[i] = self._ev_capacity_wh[i] = e.capacity_wh
        if e.soc_frac is not None:
            f.soc_frac[i] = e.soc_frac
        if e.departure_in_s is not None:
            f.departure_at_s[i] = now_s + e.departure_in_s
            self.schedules.pop(i, None)  # the EV's own departure beats the daily schedule
        if e.energy_wh is not None:  # what the EV asks for, on top of what it has now
            self._asked_wh[i] = e.energy_wh
            self._asked_target(i)
        return None

    def _asked_target(self, row: int) -> None:
        """Turn a waiting energyAmount into a target SoC once SoC and capacity are known."""
        f = self.fleet
        asked_wh = self._asked_wh.get(row)
        soc, cap_wh = float(f.soc_frac[row]), float(f.capacity_wh[row])
        if asked_wh is None or not (np.isfinite(soc) and np.isfinite(cap_wh) and cap_wh > 0):
            return
        del self._asked_wh[row]
        target = float(np.minimum(1.0, soc + asked_wh / cap_wh))
        f.target_soc_frac[row] = np.fmax(target, self._departure_soc.get(row, np.nan))

    def _meter(self, sid: str, e: ev.MeterReading, now_s: float) -> Alarm | None:
        if e.evse_id < 1:
            return None  # evse 0 is the station's main meter, not a vehicle
        i = self.row(sid, e.evse_id)
        if e.power_w is not None:
            self.fleet.measured_w[i] = e.power_w
            if self.identifier is not None:
                self.identifier.observe(i, now_s, e.power_w)
        if e.soc_frac is not None:
            self.fleet.soc_frac[i] = e.soc_frac
            self._asked_target(i)
        return None

    def _limits(self, sid: str, e: ev.EvLimitsReported, now_s: float) -> Alarm | None:
        f = self.fleet
        i = self.row(sid, e.evse_id)
        rated_w = self._stations[sid].max_power_kw * 1000.0
        if e.max_charge_w is not None:
            f.max_charge_w[i] = min(rated_w, e.max_charge_w)
        if e.max_discharge_w is not None and f.can_discharge[i]:
            f.max_discharge_w[i] = min(rated_w, e.max_discharge_w)
        return None

    def _result(self, sid: str, e: ev.SetpointResult, now_s: float) -> Alarm | None:
        i = self.row(sid, e.evse_id)
        if e.accepted:
            self._failures.pop(i, None)
            return None
        self._defer_retry(i, now_s)
        return Alarm(f"setpoint_rejected:{sid}", "setpoint_rejected",
                     f"station {sid} evse {e.evse_id} answered {e.status} to a "
                     f"{e.limit_w:.0f} W profile; retrying with back-off", sid)

    def _failed(self, sid: str, e: ev.CallFailed, now_s: float) -> Alarm | None:
        level = logging.DEBUG if self.closing else logging.WARNING  # shutdown closes calls
        log.log(level, "station %s: %s failed: %s", sid, e.action, e.reason)
        if e.evse_id is not None and e.action == "SetChargingProfile":
            self._defer_retry(self.row(sid, e.evse_id), now_s)
        return None

    def _trigger(self, sid: str, e: ev.TriggerResult, now_s: float) -> Alarm | None:
        level = logging.INFO if e.status == "Accepted" else logging.WARNING
        log.log(level, "station %s answered %s to TriggerMessage %s", sid, e.status,
                e.requested_message)
        return None

    def _violation(self, sid: str, e: ev.ProtocolViolation, now_s: float) -> Alarm | None:
        log.warning("station %s protocol violation: %s", sid, e.detail)
        return None

    def _defer_retry(self, row: int, now_s: float) -> None:
        """Re-offer the same setpoint after a back-off instead of on the next tick.

        The controller re-sends a row once `now - sent_at >= refresh_s`; moving `sent_at` back
        schedules that refresh `delay` from now while the target stays as offered.
        """
        n = self._failures.get(row, 0)
        self._failures[row] = n + 1
        delay_s = min(self._refresh_s, RETRY_INITIAL_S * 2.0**n)
        self.fleet.sent_at_s[row] = now_s - self._refresh_s + delay_s


_Handler = Callable[[FleetSync, str, Any, float], "Alarm | None"]
_HANDLERS: dict[type, _Handler] = {
    ev.StationConnected: FleetSync._connected,
    ev.StationBooted: FleetSync._booted,
    ev.StationLost: FleetSync._lost,
    ev.TransactionChanged: FleetSync._transaction,
    ev.VehicleIdentified: FleetSync._identified,
    ev.EvNeedsReported: FleetSync._needs,
    ev.MeterReading: FleetSync._meter,
    ev.EvLimitsReported: FleetSync._limits,
    ev.SetpointResult: FleetSync._result,
    ev.CallFailed: FleetSync._failed,
    ev.TriggerResult: FleetSync._trigger,
    ev.ProtocolViolation: FleetSync._violation,
}

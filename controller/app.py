"""Composition root: builds the daemon from Settings and runs it in one asyncio.TaskGroup.

This module wires cores to adapters and owns the control loop's schedule. It makes no protocol
decision (that is controller.ocpp) and no control decision (that is controller.control); it
moves events into FleetState, ticks the Controller, hands setpoints to the OCPP server and
copies state to telemetry.

Tasks (named, in start order): ocpp server, meter input, telemetry, control loop, telemetry
snapshots, watchdog, station state file writer (only with `ocpp.state_file`). Shutdown is the
reverse: stop ticking, close the meter, close OCPP connections (profiles lapse by themselves on
the chargers), publish offline status, stop MQTT, write a pending station state file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from controller.adapters.meter import MeterEndpoint, open_meter
from controller.adapters.mqtt import MqttTelemetry, Telemetry
from controller.adapters.ocpp_server import OcppServer
from controller.adapters.statefile import AcceptedStationsFile
from controller.adapters.systemd import SystemdNotifier, watchdog_period_s
from controller.control.controller import Controller, ControlParams, TickResult
from controller.control.fleet import FleetState
from controller.control.meter import MeterGuard, MeterSample, MeterSampleError
from controller.control.services import ContractedService, contracts_from
from controller.ocpp import events as ev
from controller.ocpp.session import SessionParams
from controller.settings import Settings

log = logging.getLogger(__name__)

TickHook = Callable[[float, "TickResult", "Daemon"], None]

# A shortfall alarm needs the fleet to miss more than the SPEC §3.5 tolerance (3 % of Pc) ...
SHORTFALL_TOL_FRAC = 0.03
# ... for longer than DC's full-delivery time (1 s, SPEC §2.1), so a ramp is not an alarm.
SHORTFALL_HOLD_S = 1.0
# Alarms of one kind are re-published at most this often (a flapping meter must not flood MQTT).
ALARM_REPEAT_S = 10.0


@dataclass(slots=True)
class LoopStats:
    """Control-loop health, published with the fleet aggregate."""

    ticks: int = 0
    overruns: int = 0  # ticks that started later than one period after the previous one
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
        if len(self.tick_cost_s) > 1000:
            del self.tick_cost_s[:500]


class Daemon:
    """The v2ghub site controller: one instance per site."""

    def __init__(self, settings: Settings, *, telemetry: Telemetry | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._clock = clock
        self._wall = wall
        self.fleet = FleetState(capacity=max(64, len(settings.ocpp.stations)))
        self.contracts: list[ContractedService] = contracts_from(
            (s.name, s.contract_kw) for s in settings.services)
        self.controller = Controller(self.contracts, ControlParams.from_config(settings.control))
        m = settings.meter
        self.guard = MeterGuard(f_min_hz=m.f_min_hz, f_max_hz=m.f_max_hz,
                                stale_after_s=m.stale_after_s)
        self.telemetry: Telemetry = telemetry or MqttTelemetry(settings.mqtt, settings.mqtt_prefix)
        self._stations = {s.id: s for s in settings.ocpp.stations}
        o = settings.ocpp
        # Stations accepted before a restart stay in service without booting again (the file
        # is read once here; writes happen in the state-file task, never on the tick).
        self.state_file = AcceptedStationsFile(o.state_file, wall=wall) if o.state_file else None
        self.server = OcppServer(
            o,
            SessionParams(call_timeout_s=o.call_timeout_s, profile_validity_s=o.profile_validity_s,
                          heartbeat_interval_s=o.heartbeat_interval_s),
            on_event=self._on_event, clock=clock, wall=wall,
            accepted=self.state_file.load() if self.state_file else (),
            on_accepted=self.state_file.request_save if self.state_file else None)
        self.meter: MeterEndpoint | None = None
        self.last_sample: MeterSample | None = None
        self.last_result: TickResult | None = None
        self.stats = LoopStats()
        self.tick_hooks: list[TickHook] = []
        self.ready = asyncio.Event()
        self._dirty = np.zeros(0, dtype=bool)  # rows whose per-EVSE telemetry changed
        self._alarm_sent_s: dict[str, float] = {}
        self._meter_state = "no_data"
        self._shortfall_since_s: float | None = None
        self._notifier = SystemdNotifier()
        self._closing = False

    # -- OCPP events -> fleet state -------------------------------------------------------------
    def _row(self, station_id: str, evse_id: int) -> int:
        st = self._stations[station_id]
        return self.fleet.row(station_id, evse_id, max_power_w=st.max_power_kw * 1000.0,
                              can_discharge=st.discharge == "negative_limit")

    def _on_event(self, station_id: str, event: object) -> None:
        """Apply one session event to the fleet arrays (called from the connection task)."""
        f = self.fleet
        match event:
            case ev.StationBooted():
                for i in f.rows_of(station_id):
                    f.online[i] = True
                log.info("station %s booted (%s %s)", station_id, event.vendor, event.model)
            case ev.StationLost():
                rows = f.rows_of(station_id)
                f.online[rows] = False
                f.setpoint_w[rows] = np.nan  # resend on reconnect
                if self._closing:
                    return  # we closed it: not an alarm
                self._alarm(f"station_lost:{station_id}", "station_lost",
                            f"station {station_id} disconnected: {event.reason}",
                            station_id=station_id)
            case ev.TransactionChanged():
                i = self._row(station_id, event.evse_id)
                f.online[i] = True
                f.tx_active[i] = event.transaction_id is not None and event.ev_connected
                f.setpoint_w[i] = np.nan
            case ev.MeterReading():
                if event.evse_id < 1:
                    return  # evse 0 is the station's main meter, not a vehicle
                i = self._row(station_id, event.evse_id)
                if event.power_w is not None:
                    f.measured_w[i] = event.power_w
                if event.soc_frac is not None:
                    f.soc_frac[i] = event.soc_frac
            case ev.EvLimitsReported():
                i = self._row(station_id, event.evse_id)
                rated_w = self._stations[station_id].max_power_kw * 1000.0
                if event.max_charge_w is not None:
                    f.max_charge_w[i] = min(rated_w, event.max_charge_w)
                if event.max_discharge_w is not None and f.can_discharge[i]:
                    f.max_discharge_w[i] = min(rated_w, event.max_discharge_w)
            case ev.TriggerResult():
                level = logging.INFO if event.status == "Accepted" else logging.WARNING
                log.log(level, "station %s answered %s to TriggerMessage %s", station_id,
                        event.status, event.requested_message)
            case ev.CallFailed():
                log.warning("station %s: %s failed: %s", station_id, event.action, event.reason)
                if event.evse_id is not None and event.action == "SetChargingProfile":
                    i = self._row(station_id, event.evse_id)
                    f.setpoint_w[i] = np.nan  # not delivered: offer again next tick
            case ev.SetpointResult() if not event.accepted:
                i = self._row(station_id, event.evse_id)
                f.setpoint_w[i] = np.nan
                self._alarm(f"setpoint_rejected:{station_id}", "setpoint_rejected",
                            f"station {station_id} evse {event.evse_id} answered "
                            f"{event.status} to a {event.limit_w:.0f} W profile",
                            station_id=station_id)
            case ev.ProtocolViolation():
                log.warning("station %s protocol violation: %s", station_id, event.detail)
            case _:
                pass

    # -- meter input ----------------------------------------------------------------------------
    def _on_meter(self, raw: bytes, recv_s: float) -> None:
        try:
            self.last_sample = self.guard.accept(raw, recv_s)
        except MeterSampleError as exc:
            self._alarm(f"meter_invalid:{exc.reason}", "meter_invalid",
                        f"meter sample rejected ({exc.reason}): {exc}")
            return
        self.tick()  # a new sample is acted on at once, not at the next period

    # -- control --------------------------------------------------------------------------------
    def tick(self) -> TickResult:
        """One control pass: frequency -> fleet request -> setpoints offered to stations."""
        start_s = self._clock()
        freq = self.guard.freq_hz(start_s)
        result = self.controller.tick(self.fleet, start_s, freq)
        rows = result.send_rows
        if rows.size:
            targets = result.target_w[rows]
            keys = self.fleet.keys
            offer = self.server.offer_setpoint
            for r, w in zip(rows.tolist(), targets.tolist(), strict=True):
                sid, evse = keys[r]
                offer(sid, evse, w)
            self.fleet.mark_sent(rows, targets, start_s)
            self._mark_dirty(rows)
        self.last_result = result
        self._check_meter_state(start_s)
        self._check_shortfall(start_s, result)
        self.stats.record(start_s, self._clock(), self.settings.control.tick_period_s)
        for hook in self.tick_hooks:
            hook(start_s, result, self)
        return result

    def _mark_dirty(self, rows: np.ndarray) -> None:
        if self._dirty.size < self.fleet.n:
            grown = np.ones(self.fleet.n, dtype=bool)
            grown[: self._dirty.size] = self._dirty
            self._dirty = grown
        self._dirty[rows] = True

    async def _control_loop(self) -> None:
        period = self.settings.control.tick_period_s
        wd = watchdog_period_s()
        last_wd = -1e9
        while True:
            now = self._clock()
            due = self.stats.last_tick_s + period if self.stats.ticks else now
            if now >= due:
                try:
                    self.tick()
                except Exception:  # a control bug must not stop the loop; systemd sees it
                    log.exception("control tick failed")
                now = self._clock()
                due = now + period
            if wd is not None and now - last_wd >= wd:
                self._notifier.watchdog()  # only a live loop pings (systemd WatchdogSec)
                last_wd = now
            await asyncio.sleep(max(0.0, due - now))

    def _check_meter_state(self, now_s: float) -> None:
        state = self.guard.state(now_s)
        if state == self._meter_state:
            return
        prev, self._meter_state = self._meter_state, state
        if state in ("stale", "invalid"):
            self._alarm("meter_" + state, "meter_" + state,
                        f"meter input {state}: response falls back to baseline", force=True)
        elif state == "ok" and prev in ("stale", "invalid"):
            self._alarm("meter_ok", "meter_recovered", "meter input recovered", force=True)

    def _check_shortfall(self, now_s: float, result: TickResult) -> None:
        contract_w = sum(c.contract_w for c in self.contracts)
        if contract_w <= 0 or result.fallback:
            self._shortfall_since_s = None
            return
        if abs(result.shortfall_w) <= SHORTFALL_TOL_FRAC * contract_w:
            self._shortfall_since_s = None
            return
        if self._shortfall_since_s is None:
            self._shortfall_since_s = now_s
        elif now_s - self._shortfall_since_s >= SHORTFALL_HOLD_S:
            self._alarm("service_shortfall", "service_shortfall",
                        f"fleet can deliver {result.request_w - result.shortfall_w:.0f} W of a "
                        f"{result.request_w:.0f} W request", shortfall_w=result.shortfall_w)

    def _alarm(self, key: str, kind: str, message: str, *, force: bool = False,
               **extra: object) -> None:
        now = self._clock()
        last = self._alarm_sent_s.get(key)
        if not force and last is not None and now - last < ALARM_REPEAT_S:
            return
        self._alarm_sent_s[key] = now
        log.warning("alarm %s: %s", kind, message)
        self.telemetry.publish("alarm", {"t": self._wall(), "kind": kind, "message": message,
                                         **extra}, qos=1)

    # -- telemetry ------------------------------------------------------------------------------
    def fleet_snapshot(self) -> dict[str, object]:
        f, r, s = self.fleet, self.last_result, self.last_sample
        active = f.online & f.tx_active
        costs = sorted(self.stats.tick_cost_s[-200:])
        return {
            "t": self._wall(),
            "f_hz": s.f_hz if s else None,
            "meter_state": self._meter_state,
            "requested_w": r.request_w if r else 0.0,
            "response_w": r.response_w if r else 0.0,
            "setpoint_sum_w": float(np.nansum(f.setpoint_w[active])),
            "site_power_w": s.p_w if s else None,
            "measured_sum_w": float(np.nansum(f.measured_w[active])),
            "available_down_w": r.available_down_w if r else 0.0,
            "available_up_w": r.available_up_w if r else 0.0,
            "shortfall_w": r.shortfall_w if r else 0.0,
            "stations_online": len(self.server.station_ids_online()),
            "evses_active": int(active.sum()),
            "ticks": self.stats.ticks,
            "tick_overruns": self.stats.overruns,
            "tick_cost_p99_ms": 1e3 * costs[int(0.99 * (len(costs) - 1))] if costs else None,
        }

    def evse_snapshot(self, row: int) -> dict[str, object]:
        f = self.fleet
        return {
            "online": bool(f.online[row]), "tx_active": bool(f.tx_active[row]),
            "setpoint_w": float(f.setpoint_w[row]), "measured_w": float(f.measured_w[row]),
            "soc_frac": float(f.soc_frac[row]), "max_charge_w": float(f.max_charge_w[row]),
            "max_discharge_w": float(f.max_discharge_w[row]),
        }

    async def _telemetry_loop(self) -> None:
        m = self.settings.mqtt
        last_all = -1e9
        while True:
            await asyncio.sleep(m.fleet_period_s)
            self.telemetry.publish("fleet", self.fleet_snapshot())
            now = self._clock()
            n = self.fleet.n
            if now - last_all >= m.evse_period_s:
                rows = np.arange(n)
                last_all = now
            else:
                self._mark_dirty(np.zeros(0, dtype=np.intp))
                rows = np.flatnonzero(self._dirty[:n])
            self._dirty[:n] = False
            for r in rows.tolist():  # telemetry, off the control path; coalesced per topic
                sid, evse = self.fleet.keys[r]
                self.telemetry.publish_latest(f"evse/{sid}/{evse}", self.evse_snapshot(r))

    # -- lifecycle ------------------------------------------------------------------------------
    def stopping(self) -> None:
        """Shutdown has begun: stations going away from now on are expected, not alarms."""
        self._closing = True

    async def run(self) -> None:
        """Run until cancelled. Raises OSError if a port cannot be bound."""
        await self.server.start()
        try:
            self.meter = await open_meter(self.settings.meter, self._on_meter, clock=self._clock)
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self.telemetry.run(), name="telemetry")
                    tg.create_task(self._control_loop(), name="control-loop")
                    tg.create_task(self._telemetry_loop(), name="telemetry-snapshots")
                    if self.state_file is not None:
                        tg.create_task(self.state_file.run(), name="station-state-file")
                    self._notifier.ready(
                        f"OCPP on :{self.server.port}, meter on :{self.meter.port}")
                    self.ready.set()
            finally:
                self._closing = True
                self._notifier.stopping()
                await self.meter.close()
        finally:
            with contextlib.suppress(Exception):
                await self.server.close()

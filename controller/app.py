"""Composition root: builds the daemon from Settings and runs it in one asyncio.TaskGroup.

This module wires cores to adapters and owns the control loop's schedule. It makes no protocol
decision (that is controller.ocpp) and no control decision (that is controller.control); it
hands session events to FleetSync, ticks the Controller, hands setpoints to the OCPP server and
copies state to telemetry (alarms: daemon_alarms.SiteAlarms; the telemetry task:
telemetry_loop.TelemetryLoop).

Tasks (named): telemetry, control-loop, telemetry-snapshots, station-state-file (only with
`ocpp.state_file`). Start: OCPP server, meter input, tasks, then READY=1 to systemd.
Shutdown: stop ticking, offer every active EVSE its baseline and give the stations a moment to
take it (profiles would lapse by themselves anyway), close the meter, close OCPP connections,
then the telemetry task publishes "offline" and a pending station state file is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

import numpy as np

from controller.adapters.meter import MeterEndpoint, open_meter
from controller.adapters.mqtt import MqttTelemetry
from controller.adapters.ocpp_server import OcppServer
from controller.adapters.statefile import AcceptedStationsFile
from controller.adapters.systemd import SystemdNotifier, watchdog_period_s
from controller.adapters.telemetry import ConsoleTelemetry, Telemetry
from controller.ageing_tracker import AgeingTracker, batteries_from, battery_for
from controller.control import departure, energy
from controller.control.controller import (
    Controller,
    ControlParams,
    TickResult,
    make_dispatch,
)
from controller.control.dispatch_comp import CompensatedDispatch
from controller.control.fleet import FleetState
from controller.control.identify import Identifier, IdentParams
from controller.control.meter import MeterGuard, MeterSample, MeterSampleError
from controller.control.readiness import Readiness
from controller.control.services import ContractedService, contracts_from
from controller.daemon_alarms import SiteAlarms
from controller.departure_schedule import seconds_until
from controller.fleet_sync import FleetSync
from controller.ocpp.events import Event, MeterReading
from controller.ocpp.session import SessionParams
from controller.settings import Settings
from controller.snapshots import LoopStats, fleet_payload
from controller.telemetry_loop import TelemetryLoop

log = logging.getLogger(__name__)

TickHook = Callable[[float, "TickResult", "Daemon"], None]

# Daily departures: the schedule is looked at this often (a Python loop over scheduled rows,
# kept off most ticks), and a vehicle still plugged in this long after its departure is taken
# to stay until the next day's.
SCHEDULE_CHECK_S = 1.0
DEPARTURE_GRACE_S = 3600.0
# Meter samples tick at once, but not closer than this: SPEC §3.3's fastest meter is 50 Hz, so a
# flood of datagrams (a misconfigured or hostile sender) cannot turn into a flood of ticks.
MIN_SAMPLE_TICK_GAP_S = 0.02
# Offer -> vehicle delay taken off identified dead times: the compensated dispatch models this
# delay itself (dispatch_comp.CompParams.ocpp_delay_s, 0.1 s: measured OCPP fan-out p50-p99).
IDENT_TRANSPORT_DELAY_S = 0.1
# On shutdown the baseline setpoints get this long to reach the stations before we close.
SHUTDOWN_FLUSH_S = 1.0


class Daemon:
    """The v2ghub site controller: one instance per site."""

    def __init__(self, settings: Settings, *, telemetry: Telemetry | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._clock = clock
        self._wall = wall
        self.fleet = FleetState(capacity=max(64, len(settings.ocpp.stations)))
        # online identification of each EVSE's dead times and ramps from MeterValues (fed by
        # FleetSync) and the site meter (_on_meter) around the setpoints offered (_offer);
        # refines the dynamics columns
        self.identifier = Identifier(self.fleet, IdentParams(
            transport_delay_s=IDENT_TRANSPORT_DELAY_S,
            site_ref_max_age_s=settings.meter.stale_after_s))
        self.sync = FleetSync(self.fleet, {s.id: s for s in settings.ocpp.stations},
                              refresh_s=settings.control.refresh_s, identifier=self.identifier,
                              vehicles={v.key: v for v in settings.vehicles})
        self.departure = departure.DepartureParams(
            margin_s=settings.energy.departure_margin_s)
        self.zone = ZoneInfo(settings.site_timezone)  # daily departures are on the site clock
        self._schedules_checked_s = -np.inf
        self.contracts: list[ContractedService] = contracts_from(
            ((s.name, s.contract_kw) for s in settings.services),
            overrides=settings.contract_overrides())
        # priors reach the compensated dispatch through the fleet's dynamics columns, which
        # FleetSync fills from each station's configured vehicle when its row appears
        en = settings.energy
        self.energy = energy.EnergyParams(soc_min_frac=en.soc_min, soc_max_frac=en.soc_max,
                                          alarm_ratio=en.alarm_ratio)
        self.controller = Controller(self.contracts, ControlParams.from_config(settings.control),
                                     dispatch=make_dispatch(settings.control.dispatch,
                                                            energy=self.energy))
        m = settings.meter
        self.guard = MeterGuard(f_min_hz=m.f_min_hz, f_max_hz=m.f_max_hz,
                                stale_after_s=m.stale_after_s)
        if telemetry is None:  # with MQTT disabled, alarms still reach the log
            telemetry = (MqttTelemetry(settings.mqtt, settings.mqtt_prefix)
                         if settings.mqtt.enabled else ConsoleTelemetry(topics=()))
        self.telemetry = telemetry
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
        # Battery ageing per EVSE, stepped by the telemetry loop (never on the control tick).
        a = settings.ageing
        self.ageing = AgeingTracker(
            batteries_from(((s.id, s.vehicle) for s in settings.ocpp.stations), a.chemistry),
            default=battery_for(None, a.chemistry), price_per_kwh=a.battery_price_per_kwh)
        self.tick_hooks: list[TickHook] = []
        self.ready = asyncio.Event()
        self._measured_at_s = np.zeros(0)  # per row: when its MeterValues power arrived
        self.alarms = SiteAlarms(telemetry, fleet=self.fleet, contracts=self.contracts,
                                 energy_params=self.energy, guard=self.guard, meter=m,
                                 headroom=self._headroom, readiness=self._readiness,
                                 clock=clock, wall=wall)
        self.telemetry_loop = TelemetryLoop(telemetry, fleet=self.fleet, ageing=self.ageing,
                                            mqtt=settings.mqtt, snapshot=self.fleet_snapshot,
                                            checks=self.alarms.check_fleet, clock=clock)
        self._sample_tick: asyncio.TimerHandle | None = None
        self._notifier = SystemdNotifier()

    # -- inputs ---------------------------------------------------------------------------------
    def _on_event(self, station_id: str, event: Event) -> None:
        """A session event: update the fleet arrays, publish what needs an alarm."""
        now_s = self._clock()
        alarm = self.sync.apply(station_id, event, now_s)
        if isinstance(event, MeterReading) and event.power_w is not None:
            self._note_measured(station_id, event.evse_id, now_s)
        if alarm is not None:
            self.alarms.publish(alarm)

    def _note_measured(self, station_id: str, evse_id: int, now_s: float) -> None:
        """Remember when a row's measured power arrived (the dispatch's model takes it once)."""
        row = self.fleet.index.get((station_id, evse_id))
        if row is None:
            return
        if self._measured_at_s.size < self.fleet.n:
            grown = np.full(self.fleet.n, -np.inf)
            grown[: self._measured_at_s.size] = self._measured_at_s
            self._measured_at_s = grown
        self._measured_at_s[row] = now_s

    def _on_meter(self, raw: bytes, recv_s: float) -> None:
        try:
            self.last_sample = self.guard.accept(raw, recv_s)
        except MeterSampleError as exc:
            self.alarms.alarm(f"meter_invalid:{exc.reason}", "meter_invalid",
                              f"meter sample rejected ({exc.reason}): {exc}")
            return
        if self.last_sample.p_w is not None:  # before the tick: the reference for its commands
            self.identifier.observe_site(recv_s, self.last_sample.p_w)
        wait_s = self.stats.last_tick_s + MIN_SAMPLE_TICK_GAP_S - recv_s
        if not wait_s > 0:  # also true before the first tick (NaN)
            self.tick()  # a new sample is acted on at once, not at the next period
        elif self._sample_tick is None:
            self._sample_tick = asyncio.get_running_loop().call_later(wait_s, self._late_tick)

    def _late_tick(self) -> None:
        self._sample_tick = None
        self.tick()

    # -- control --------------------------------------------------------------------------------
    def tick(self) -> TickResult:
        """One control pass: frequency -> fleet request -> setpoints offered to stations."""
        start_s = self._clock()
        if self.sync.schedules and start_s - self._schedules_checked_s >= SCHEDULE_CHECK_S:
            self._schedule_departures(start_s)
        departure.update(self.fleet, start_s, self.departure)  # baselines toward departure SoCs
        freq = self.guard.freq_hz(start_s)
        # the site power closes the compensated dispatch's loop (SPEC §3.3 p_w); a sample is
        # fresh exactly when the frequency is (MeterGuard: within stale_after_s), never older
        sample = self.last_sample if freq is not None else None
        site_w = sample.p_w if sample is not None else None
        n = self.fleet.n
        measured_at = np.full(n, -np.inf)
        measured_at[: min(n, self._measured_at_s.size)] = self._measured_at_s[:n]
        result = self.controller.tick(self.fleet, start_s, freq, site_power_w=site_w,
                                      site_power_at_s=sample.recv_s if sample else None,
                                      measured_at_s=measured_at)
        self._offer(result.send_rows, result.target_w[result.send_rows], start_s)
        self.last_result = result
        self.alarms.check_meter_state(start_s)
        self.alarms.check_shortfall(start_s, result)
        self.stats.record(start_s, self._clock(), self.settings.control.tick_period_s)
        for hook in self.tick_hooks:
            hook(start_s, result, self)
        return result

    def _schedule_departures(self, now_s: float) -> None:
        """Daily `[[vehicle]] departure` times -> departure_at_s (monotonic) of their rows: the
        next one on the site's clock, and the next day's once a vehicle is still plugged in
        DEPARTURE_GRACE_S after its departure (a weekend, a day off)."""
        self._schedules_checked_s = now_s
        f, wall_s = self.fleet, self._wall()
        for row, hhmm in self.sync.schedules.items():
            at_s = f.departure_at_s[row]
            if not np.isfinite(at_s) or now_s > at_s + DEPARTURE_GRACE_S:
                f.departure_at_s[row] = now_s + seconds_until(wall_s, hhmm, self.zone)

    def _offer(self, rows: np.ndarray, targets_w: np.ndarray, now_s: float) -> None:
        """Hand setpoints to the stations' latest-value slots (I/O edge: a loop per EVSE)."""
        if not rows.size:
            return
        keys = self.fleet.keys
        offer = self.server.offer_setpoint
        for r, w in zip(rows.tolist(), targets_w.tolist(), strict=True):
            sid, evse = keys[r]
            offer(sid, evse, w)
        self.fleet.mark_sent(rows, targets_w, now_s)
        self.identifier.commanded(rows, targets_w, now_s)
        self.telemetry_loop.mark_dirty(rows)

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
                except Exception:  # a control bug must not kill the loop ...
                    log.exception("control tick failed")
                else:  # ... but only healthy ticks feed the watchdog: systemd restarts us
                    if wd is not None and now - last_wd >= wd:
                        self._notifier.watchdog()
                        last_wd = now
                now = self._clock()
                due = now + period
            await asyncio.sleep(max(0.0, due - now))

    def _headroom(self) -> list[energy.ContractHeadroom]:
        f = self.fleet
        return energy.headroom(f, f.online & f.tx_active, self.contracts, self.energy)

    def _readiness(self) -> Readiness | None:
        d = self.controller.dispatch
        return d.readiness if isinstance(d, CompensatedDispatch) else None

    def _check_readiness(self) -> None:
        """Readiness alarm check (SiteAlarms.check_readiness; the telemetry task runs it)."""
        self.alarms.check_readiness()

    def _check_energy_reserve(self) -> None:
        """Energy reserve alarm check (SiteAlarms.check_energy_reserve; telemetry task)."""
        self.alarms.check_energy_reserve()

    # -- telemetry ------------------------------------------------------------------------------
    def fleet_snapshot(self) -> dict[str, object]:
        return fleet_payload(self.fleet, self.last_result, self.last_sample,
                             meter_state=self.alarms.meter_state,
                             stations_online=len(self.server.station_ids_online()),
                             stats=self.stats, wall_s=self._wall(),
                             ageing=self.ageing.summary(), headroom=self._headroom(),
                             readiness=self._readiness())

    def _update_ageing(self) -> np.ndarray:
        """Step the ageing tracker to now (TelemetryLoop.update_ageing)."""
        return self.telemetry_loop.update_ageing()

    async def _telemetry_loop(self) -> None:
        await self.telemetry_loop.run()

    # -- lifecycle ------------------------------------------------------------------------------
    def stopping(self) -> None:
        """Shutdown has begun: stations going away from now on are expected, not alarms."""
        self.sync.closing = True

    async def _return_to_baseline(self) -> None:
        """Offer every active EVSE its baseline so a stop does not leave a response running."""
        f = self.fleet
        rows = np.flatnonzero(f.online & f.tx_active)
        self._offer(rows, f.baseline_w[rows].copy(), self._clock())
        await asyncio.sleep(SHUTDOWN_FLUSH_S if rows.size else 0.0)

    async def run(self) -> None:
        """Run until cancelled. Raises OSError if a port cannot be bound."""
        await self.server.start()
        try:
            self.meter = await open_meter(self.settings.meter, self._on_meter, clock=self._clock)
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self.telemetry.run(), name="telemetry")
                    tg.create_task(self._control_loop(), name="control-loop")
                    tg.create_task(self.telemetry_loop.run(), name="telemetry-snapshots")
                    if self.state_file is not None:
                        tg.create_task(self.state_file.run(), name="station-state-file")
                    self._notifier.ready(
                        f"OCPP on :{self.server.port}, meter on :{self.meter.port}")
                    self.ready.set()
            finally:
                self.stopping()
                self._notifier.stopping()
                if self._sample_tick is not None:
                    self._sample_tick.cancel()
                await self.meter.close()
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._return_to_baseline())
        finally:
            with contextlib.suppress(Exception):
                await self.server.close()

"""Runs the simulated fleet in one asyncio process: N stations, the plant, the site meter.

Composition only: it builds SimStation objects sharing one VehiclePlant (row = station index,
one EVSE per station, vehicle plugged in at start), steps the plant every plant_step_s and runs
the SiteMeter on the summed plant power. No protocol or plant decisions here. Each station runs
in its own task; one that fails is logged and restarted, the others carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from sim_chargers.fleetfile import FleetSpec
from sim_chargers.plant import VehiclePlant
from sim_chargers.settings import SimSettings
from sim_chargers.site_meter import SiteMeter
from sim_chargers.station import ProfileHook, SimStation, StationConfig
from sim_chargers.traces import Trace, builtin_event, load_trace

log = logging.getLogger(__name__)

STATION_RESTART_S = 1.0  # after an unexpected station-task failure (a bug): retry, don't spin


@dataclass(frozen=True, slots=True)
class StationState:
    station_id: str
    model: str
    connected: bool
    booted: bool
    setpoint_w: float
    power_w: float
    soc_frac: float
    profiles_accepted: int


def load_frequency(settings: SimSettings) -> Trace:
    """The configured trace file or built-in event. Raises TraceError."""
    f = settings.frequency
    if f.trace is not None:
        return load_trace(f.trace)
    return builtin_event(f.event or "flat", hold_s=f.hold_s)


class SimFleet:
    """The simulated fleet; `await run()` until cancelled, or start()/stop()."""

    def __init__(self, settings: SimSettings, spec: FleetSpec, trace: Trace, *,
                 on_profile: ProfileHook | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.settings, self.spec = settings, spec
        self._clock = clock
        self.plant = VehiclePlant(spec.params, spec.soc_frac, now_s=clock())
        ctx = None
        if settings.csms.ca_file is not None or settings.csms.url.startswith("wss://"):
            cafile = str(settings.csms.ca_file) if settings.csms.ca_file else None
            ctx = ssl.create_default_context(cafile=cafile)
        self.stations = [
            SimStation(StationConfig(
                station_id=settings.csms.id_format.format(i + 1), csms_url=settings.csms.url,
                password=settings.csms.password, ssl=ctx, discharge=settings.csms.discharge,
                ocpp_version=settings.csms.ocpp_version,
                baseline_w=settings.baseline_kw * 1000.0,
                meter_values_period_s=settings.meter_values_period_s),
                self.plant, i, on_profile=on_profile, clock=clock, wall=wall)
            for i in range(spec.n)]
        m = settings.site_meter
        self.meter: SiteMeter | None = None
        if m.enabled:
            self.meter = SiteMeter(
                protocol=m.protocol, host=m.host, port=m.port, rate_hz=m.rate_hz, trace=trace,
                power_w=lambda: self.total_power_w,
                start_delay_s=settings.frequency.start_delay_s, clock=clock, wall=wall)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def total_power_w(self) -> float:
        return float(self.plant.power_w.sum())

    def state(self) -> list[StationState]:
        """Per-station snapshot, in fleet order."""
        return [StationState(s.station_id, self.spec.models[s.row].name, s.connected, s.booted,
                             s.setpoint_w, s.power_w, s.soc_frac, s.profiles_accepted)
                for s in self.stations]

    async def start(self) -> None:
        """Start every task (returns at once)."""
        if self._tasks:
            return
        self._tasks.append(asyncio.create_task(self._step_plant(), name="sim-plant"))
        for st in self.stations:
            self._tasks.append(asyncio.create_task(self._guard(st), name=f"sim-{st.station_id}"))
        if self.meter is not None:
            self._tasks.append(asyncio.create_task(self.meter.run(), name="sim-site-meter"))

    async def stop(self) -> None:
        """Cancel every task and wait for them."""
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for st in self.stations:
            st.close()

    async def run(self) -> None:
        """start(), wait until cancelled, stop()."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def _guard(self, station: SimStation) -> None:
        while True:
            try:
                await station.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: station task failed; restarting", station.station_id)
            await asyncio.sleep(STATION_RESTART_S)

    async def _step_plant(self) -> None:
        period = self.settings.plant_step_s
        nxt = self._clock()
        while True:
            try:
                self.plant.step(self._clock())
            except Exception:  # a bug; keep the stations serving
                log.exception("plant step failed")
            nxt += period
            delay = nxt - self._clock()
            if delay < 0:
                nxt = self._clock()
            await asyncio.sleep(max(0.0, delay))

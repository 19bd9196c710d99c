"""Issue 2, 9a: 20 simulated stations, a DC-L dip on the meter, the whole fleet exports."""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
import pytest

from sim_chargers.fleet import SimFleet
from sim_chargers.fleetfile import load_fleet
from sim_chargers.settings import CsmsConfig, SimSettings, SiteMeterConfig
from sim_chargers.traces import builtin_event

from .conftest import PASSWORD, ROOT, daemon_doc, eventually

FLEET = ROOT / "config" / "fleet.example.toml"


def sim_for(daemon, fleet_path=FLEET) -> SimFleet:
    spec = load_fleet(fleet_path)
    settings = SimSettings(
        fleet=fleet_path, meter_values_period_s=1.0,
        csms=CsmsConfig(url=f"ws://127.0.0.1:{daemon.server.port}", password=PASSWORD),
        site_meter=SiteMeterConfig(port=daemon.meter.port, rate_hz=20.0))
    return SimFleet(settings, spec, builtin_event("flat"))


async def test_dc_low_dip_makes_every_discharge_capable_evse_export(start_daemon):
    daemon = await start_daemon(daemon_doc(20, contract_kw=100.0))
    sim = sim_for(daemon)
    assert len(sim.stations) == 20
    await sim.start()
    try:
        await eventually(lambda: int((daemon.fleet.online & daemon.fleet.tx_active).sum()) == 20,
                         what="20 stations booted with a transaction")
        # at 50 Hz the fleet holds its baseline: nothing exported
        await eventually(lambda: daemon.last_sample is not None, what="meter samples")
        assert abs(sim.total_power_w) < 1.0

        sim.meter.set_frequency_override(49.5)  # DC-L saturation: full 100 kW export
        await eventually(lambda: all(s.setpoint_w < 0 for s in sim.state()),
                         what="a negative setpoint at every station")
        await eventually(lambda: sim.total_power_w < -90_000.0, timeout_s=30,
                         what="the fleet exporting 90 % of the contract")
        # the daemon saw the export through the site meter stream, not only the sim
        await eventually(lambda: daemon.last_sample.p_w < -90_000.0, what="site meter export")
        setpoints = np.array([s.setpoint_w for s in sim.state()])
        assert setpoints.sum() == pytest.approx(-100_000.0, rel=0.01)
        assert daemon.fleet.measured_w.max() < 0  # MeterValues report export too

        sim.meter.set_frequency_override(50.0)
        await eventually(lambda: abs(sim.total_power_w) < 1.0, timeout_s=30,
                         what="the fleet back at baseline")
    finally:
        with contextlib.suppress(Exception):
            await sim.stop()



async def test_a_station_without_discharge_never_gets_a_negative_limit(start_daemon):
    doc = daemon_doc(19, contract_kw=100.0)
    doc["ocpp"]["station"] = [{"id": "CP020", "password": PASSWORD, "discharge": "none",
                               "max_power_kw": 11}]
    daemon = await start_daemon(doc)
    sim = sim_for(daemon)
    await sim.start()
    try:
        await eventually(lambda: int((daemon.fleet.online & daemon.fleet.tx_active).sum()) == 20,
                         what="20 stations with a transaction")
        sim.meter.set_frequency_override(49.5)
        states = {s.station_id: s for s in sim.state()}
        await eventually(lambda: all(s.setpoint_w < 0 for s in sim.state()
                                     if s.station_id != "CP020"),
                         what="negative setpoints at the 19 discharge-capable stations")
        states = {s.station_id: s for s in sim.state()}
        assert states["CP020"].setpoint_w == 0.0  # held at baseline, never told to export
        exported = sum(s.setpoint_w for sid, s in states.items() if sid != "CP020")
        assert exported == pytest.approx(-100_000.0, rel=0.01)  # the others carry it all
    finally:
        await sim.stop()


async def test_stopping_the_daemon_returns_every_station_to_baseline(start_daemon):
    daemon = await start_daemon(daemon_doc(20, contract_kw=100.0))
    sim = sim_for(daemon)
    await sim.start()
    try:
        await eventually(lambda: int(daemon.fleet.tx_active.sum()) == 20, what="transactions")
        sim.meter.set_frequency_override(49.5)
        await eventually(lambda: all(s.setpoint_w < 0 for s in sim.state()),
                         what="full export")
        daemon_task = next(t for t in asyncio.all_tasks() if t.get_coro().__qualname__
                           == "Daemon.run")
        daemon_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await daemon_task
        # before closing the connections the daemon offered every EVSE its baseline (0 W),
        # so nothing keeps exporting on a stale profile for its remaining validity
        assert [s.setpoint_w for s in sim.state()] == [0.0] * 20
    finally:
        await sim.stop()

"""OCPP 2.1 over real sockets: a third-party 2.1 station, 2.1 sim stations, a mixed site.

(a) mobilityhouse `ocpp.v21.ChargePoint` validates every incoming CALL against the OCPP 2.1
JSON schemas before our handler runs: a CentralSetpoint profile reaching the handler is
schema-valid by an independent judge. (b) a small closed loop of simulated 2.1 stations whose
export the site meter sees. (c) one 2.0.1 and one 2.1 simulated station on one daemon, both
exporting, each in its own version's shape.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ocpp.routing import on
from ocpp.v21 import ChargePoint, call, call_result
from ocpp.v21 import enums as e

from sim_chargers.fleet import SimFleet
from sim_chargers.fleetfile import load_fleet
from sim_chargers.settings import CsmsConfig, SimSettings, SiteMeterConfig
from sim_chargers.traces import builtin_event

from .conftest import PASSWORD, MeterFeed, daemon_doc, eventually, third_party_client


class ThirdPartyStation21(ChargePoint):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.periods: list[dict[str, Any]] = []
        self.profiles: list[dict[str, Any]] = []

    @on(e.Action.set_charging_profile)  # type: ignore[misc]
    def on_set_charging_profile(self, evse_id: int, charging_profile: dict[str, Any],
                                **_: Any) -> Any:
        self.profiles.append(charging_profile)
        self.periods.append(charging_profile["charging_schedule"][0]
                            ["charging_schedule_period"][0])
        return call_result.SetChargingProfile(status=e.ChargingProfileStatusEnumType.accepted)

    def setpoint(self) -> float | None:
        return self.periods[-1].get("setpoint") if self.periods else None


async def test_mobilityhouse_2_1_station_gets_a_central_setpoint_that_follows_frequency(
        start_daemon):
    daemon = await start_daemon(daemon_doc(1, contract_kw=10.0, id_format="TQ{:02d}"))
    meter = MeterFeed(daemon.meter.port)
    async with third_party_client(ThirdPartyStation21, daemon.server.port, "TQ01",
                                  ["ocpp2.0.1", "ocpp2.1"]) as cp:  # offers both: 2.1 chosen
        assert cp._connection.subprotocol == "ocpp2.1"
        try:
            boot = await cp.call(call.BootNotification(
                charging_station={"model": "ThirdParty21", "vendor_name": "mobilityhouse"},
                reason=e.BootReasonEnumType.power_up))
            assert boot.status == e.RegistrationStatusEnumType.accepted
            assert daemon.server.session("TQ01").ocpp_version == "2.1"
            await cp.call(call.TransactionEvent(
                event_type=e.TransactionEventEnumType.started,
                timestamp=datetime.now(UTC).isoformat(),
                trigger_reason=e.TriggerReasonEnumType.cable_plugged_in, seq_no=0,
                transaction_info={"transaction_id": "tx-tq01",
                                  "charging_state": e.ChargingStateEnumType.ev_connected},
                evse={"id": 1, "connector_id": 1}))
            needs = await cp.call(call.NotifyEVChargingNeeds(evse_id=1, charging_needs={
                "requested_energy_transfer": e.EnergyTransferModeEnumType.ac_bpt,
                "v2x_charging_parameters": {"max_charge_power": 11000,
                                            "max_discharge_power": 11000}}))
            assert needs.status == "Accepted"

            meter.start()  # 50 Hz: the baseline (0 W) setpoint arrives
            await eventually(lambda: cp.setpoint() is not None, what="a first setpoint")
            assert cp.setpoint() == 0.0
            period = cp.periods[-1]
            assert period["operation_mode"] == "CentralSetpoint"
            assert "limit" not in period
            profile = cp.profiles[-1]
            assert profile["charging_profile_purpose"] == "TxProfile"
            assert profile["transaction_id"] == "tx-tq01"
            assert "valid_to" in profile  # lapses by itself (SPEC §2.4)
            assert profile["charging_schedule"][0]["duration"] > 0

            meter.f_hz = 49.5  # DC-L saturated: export the whole 10 kW contract
            await eventually(lambda: cp.setpoint() == -10_000.0, what="full export setpoint")
            meter.f_hz = 49.75  # between knee and saturation: 5 % + 95 % * (0.05/0.3)
            expected = -10_000.0 * (0.05 + 0.95 * (0.25 - 0.2) / 0.3)
            await eventually(lambda: abs((cp.setpoint() or 0.0) - expected) < 0.1,
                             what=f"setpoint {expected:.1f} W")
            meter.f_hz = 50.0
            await eventually(lambda: cp.setpoint() == 0.0, what="back to baseline")
        finally:
            await meter.close()


def _fleet_file(tmp_path: Path, count: int) -> Path:
    path = tmp_path / f"fleet{count}.toml"
    path.write_text(f'[[group]]\nmodel = "Nissan Ariya"\ncount = {count}\n'
                    'charger_kw = 11\nsoc = 0.6\n')
    return path


def _sim(daemon, fleet_path: Path, version: str, *, id_format: str = "CP{:03d}",
         site_meter: bool = True) -> SimFleet:
    settings = SimSettings(
        fleet=fleet_path, meter_values_period_s=1.0,
        csms=CsmsConfig(url=f"ws://127.0.0.1:{daemon.server.port}", password=PASSWORD,
                        id_format=id_format, ocpp_version=version),  # type: ignore[arg-type]
        site_meter=SiteMeterConfig(enabled=site_meter, port=daemon.meter.port, rate_hz=20.0))
    return SimFleet(settings, load_fleet(fleet_path), builtin_event("flat"))


async def test_a_closed_loop_of_2_1_sim_stations_exports_through_central_setpoints(
        start_daemon, tmp_path):
    daemon = await start_daemon(daemon_doc(4, contract_kw=20.0))
    sim = _sim(daemon, _fleet_file(tmp_path, 4), "2.1")
    await sim.start()
    try:
        await eventually(lambda: int((daemon.fleet.online & daemon.fleet.tx_active).sum()) == 4,
                         what="4 stations booted with a transaction")
        assert {daemon.server.session(s.station_id).ocpp_version
                for s in sim.stations} == {"2.1"}
        await eventually(lambda: daemon.last_sample is not None, what="meter samples")
        sim.meter.set_frequency_override(49.5)  # DC-L saturation: 20 kW export
        await eventually(lambda: all(s.setpoint_w < 0 for s in sim.state()),
                         what="a negative setpoint at every 2.1 station")
        await eventually(lambda: sim.total_power_w < -18_000.0, timeout_s=30,
                         what="the fleet exporting 90 % of the contract")
        await eventually(lambda: daemon.last_sample.p_w < -18_000.0, what="site meter export")
        assert sum(s.setpoint_w for s in sim.state()) == pytest.approx(-20_000.0, rel=0.01)
        sim.meter.set_frequency_override(50.0)
        await eventually(lambda: abs(sim.total_power_w) < 1.0, timeout_s=30,
                         what="the fleet back at baseline")
    finally:
        with contextlib.suppress(Exception):
            await sim.stop()


async def test_a_mixed_site_exports_from_2_0_1_and_2_1_stations(start_daemon, tmp_path):
    doc = daemon_doc(1, contract_kw=10.0, id_format="OLD{:02d}")
    doc["ocpp"]["station_group"].append({"id_format": "NEW{:02d}", "count": 1,
                                         "password": PASSWORD, "discharge": "negative_limit",
                                         "max_power_kw": 11})
    daemon = await start_daemon(doc)
    fleet = _fleet_file(tmp_path, 1)
    old = _sim(daemon, fleet, "2.0.1", id_format="OLD{:02d}", site_meter=False)
    new = _sim(daemon, fleet, "2.1", id_format="NEW{:02d}", site_meter=False)
    meter = MeterFeed(daemon.meter.port)
    await old.start()
    await new.start()
    try:
        await eventually(lambda: int((daemon.fleet.online & daemon.fleet.tx_active).sum()) == 2,
                         what="both stations booted with a transaction")
        assert daemon.server.session("OLD01").ocpp_version == "2.0.1"
        assert daemon.server.session("NEW01").ocpp_version == "2.1"
        meter.f_hz = 49.5
        meter.start()
        await eventually(lambda: max(old.stations[0].setpoint_w, new.stations[0].setpoint_w) < 0,
                         what="both stations told to export")
        await eventually(lambda: old.total_power_w + new.total_power_w < -9_000.0,
                         timeout_s=30, what="the site exporting 90 % of the contract")
        assert old.total_power_w < 0
        assert new.total_power_w < 0
    finally:
        await meter.close()
        for sim in (old, new):
            with contextlib.suppress(Exception):
                await sim.stop()

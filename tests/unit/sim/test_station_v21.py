"""The simulated station speaking OCPP 2.1: messages, CentralSetpoint following, subprotocol."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection, serve

from controller.ocpp.profiles import build_set_charging_profile
from controller.ocpp.schemas import validators_for
from sim_chargers.plant import PlantParams, VehiclePlant
from sim_chargers.settings import SimConfigError, parse_sim_settings
from sim_chargers.station import SimStation, StationConfig
from sim_chargers.station_messages import (
    charging_needs_request,
)

WALL_S = 1_700_000_000.0
V21 = validators_for("2.1")


def test_bidirectional_charging_needs_are_2_1_valid() -> None:
    # the shared requests are checked against both versions in test_station_messages.py
    V21.validate("NotifyEVChargingNeeds", "request",
                 charging_needs_request(11_000.0, 60_000.0, 0.5, max_discharge_w=7_400.0))


def test_bidirectional_2_1_needs_report_ac_bpt_with_charge_and_discharge_power() -> None:
    needs = charging_needs_request(11_000.0, 60_000.0, 0.5, max_discharge_w=7_400.0)
    cn = needs["chargingNeeds"]
    assert cn["requestedEnergyTransfer"] == "AC_BPT"
    assert cn["v2xChargingParameters"] == {"maxChargePower": 11000.0,
                                           "maxDischargePower": 7400.0}
    assert "v2xChargingParameters" not in charging_needs_request(
        11_000.0, 60_000.0, 0.5)["chargingNeeds"]  # the 2.0.1 form is unchanged


def _station(version: str, *, discharge: bool = True) -> tuple[SimStation, VehiclePlant]:
    plant = VehiclePlant(PlantParams.uniform(
        1, t_a_s=0.0, t_c_s=0.0, t_zero_s=0.0, ramp_up_w_s=1e6, ramp_down_w_s=1e6,
        max_charge_w=11_000, max_discharge_w=11_000, capacity_wh=50_000), np.array([0.5]))
    cfg = StationConfig("CP001", "ws://127.0.0.1:1", discharge=discharge,
                        ocpp_version=version)  # type: ignore[arg-type]
    return SimStation(cfg, plant, 0), plant


def _csms_profile(station: SimStation, setpoint_w: float) -> str:
    """The daemon's own 2.1 profile (reference builder) for the station's transaction."""
    assert station.transaction_id is not None
    payload = build_set_charging_profile(
        evse_id=1, transaction_id=station.transaction_id, limit_w=setpoint_w,
        wall_s=station._wall(), validity_s=30.0, profile_id_base=1000, stack_level=1,
        central_setpoint=True)
    return json.dumps([2, "u1", "SetChargingProfile", payload])


async def test_2_1_station_follows_a_negative_central_setpoint() -> None:
    station, plant = _station("2.1")
    try:
        reply = station.handle_frame(_csms_profile(station, -7300.0))
        assert reply is not None
        assert json.loads(reply) == [3, "u1", {"status": "Accepted"}]
        assert station.setpoint_w == -7300.0
        assert plant.setpoint_w[0] == -7300.0
        assert station.profile is not None
        assert station.profile.expires_s < float("inf")  # it lapses by itself
    finally:
        station.close()


async def test_2_1_station_without_discharge_clamps_a_negative_setpoint_to_zero() -> None:
    station, plant = _station("2.1", discharge=False)
    try:
        station.handle_frame(_csms_profile(station, -7300.0))
        assert station.setpoint_w == 0.0
        assert plant.setpoint_w[0] == 0.0
    finally:
        station.close()


async def test_2_0_1_station_refuses_a_2_1_profile_as_a_format_violation() -> None:
    station, plant = _station("2.0.1")
    try:
        reply = station.handle_frame(_csms_profile(station, -7300.0))
        assert reply is not None
        assert json.loads(reply)[:3] == [4, "u1", "FormatViolation"]
        assert plant.setpoint_w[0] == 0.0
    finally:
        station.close()


async def test_2_1_station_rejects_an_operation_mode_it_does_not_implement() -> None:
    station, _ = _station("2.1")
    try:
        frame = json.loads(_csms_profile(station, 0.0))
        frame[3]["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"] = [
            {"startPeriod": 0, "operationMode": "LocalFrequency", "v2xBaseline": 0.0,
             "v2xFreqWattCurve": [{"frequency": 49.8, "power": 0.0},
                                  {"frequency": 49.5, "power": -10000.0}]}]
        V21.validate("SetChargingProfile", "request", frame[3])
        reply = station.handle_frame(json.dumps(frame))
        assert reply is not None
        assert json.loads(reply)[2] == {"status": "Rejected",
                                        "statusInfo": {"reasonCode": "UnsupportedOpMode"}}
    finally:
        station.close()


def test_an_unknown_ocpp_version_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="ocpp_version"):
        _station("1.6")


async def test_2_1_station_offers_only_the_ocpp2_1_subprotocol() -> None:
    offered: list[list[str]] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        offered.append([p.strip() for p in
                        ws.request.headers.get("Sec-WebSocket-Protocol", "").split(",")])
        await ws.close()

    async with serve(handler, "127.0.0.1", 0, subprotocols=["ocpp2.1"]) as server:  # type: ignore[list-item]
        port = next(iter(server.sockets)).getsockname()[1]
        station, _ = _station("2.1")
        station.cfg = StationConfig("CP001", f"ws://127.0.0.1:{port}", ocpp_version="2.1",
                                    reconnect_min_s=0.05)
        task = asyncio.create_task(station.run())
        try:
            async with asyncio.timeout(5.0):
                while not offered:  # noqa: ASYNC110 - waits for the handshake
                    await asyncio.sleep(0.01)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            station.close()
    assert offered[0] == ["ocpp2.1"]
    assert station.connections >= 1  # the CSMS accepted ocpp2.1 and the station connected


@pytest.mark.parametrize(("raw", "version"), [({}, "2.0.1"), ({"ocpp_version": "2.1"}, "2.1")])
def test_sim_settings_ocpp_version_defaults_to_2_0_1(raw: dict[str, Any], version: str,
                                                     tmp_path: Any) -> None:
    doc = {"sim": {"fleet": "f.toml"}, "csms": raw}
    assert parse_sim_settings(doc, tmp_path).csms.ocpp_version == version


def test_sim_settings_reject_an_unknown_ocpp_version(tmp_path: Any) -> None:
    with pytest.raises(SimConfigError, match=r"csms\.ocpp_version"):
        parse_sim_settings({"sim": {"fleet": "f.toml"}, "csms": {"ocpp_version": "1.6"}},
                           tmp_path)

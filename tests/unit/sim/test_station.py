"""SimStation against a tiny raw websockets CSMS on loopback (real sockets, short timings)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import importlib.resources
import itertools
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import fastjsonschema
import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from sim_chargers.plant import PlantParams, VehiclePlant
from sim_chargers.station import SUBPROTOCOL, SimStation, StationConfig

PASSWORD = "0123456789abcdef"
WAIT_S = 5.0  # generous bound for a condition on loopback; never a speed assertion


@functools.cache
def schema(name: str) -> Callable[[Any], Any]:
    res = importlib.resources.files("ocpp.v201").joinpath(f"schemas/{name}.json")
    doc = json.loads(res.read_text(encoding="utf-8"))
    doc.pop("$id", None)
    validate: Callable[[Any], Any] = fastjsonschema.compile(doc)
    return validate


class FakeCsms:
    """Answers the station's CALLs, records every frame, sends CALLs on demand."""

    def __init__(self) -> None:
        self.frames: list[Any] = []  # every frame received from the station
        self.sent_actions: dict[str, str] = {}  # our CALL id -> action
        self.replies: dict[str, asyncio.Future[Any]] = {}
        self.ws: ServerConnection | None = None
        self.paths: list[str] = []
        self.auth: list[str | None] = []
        self.boot_status = "Accepted"
        self.ids = itertools.count(1)
        self.port = 0

    async def handler(self, ws: ServerConnection) -> None:
        self.ws = ws
        assert ws.request is not None
        self.paths.append(ws.request.path)
        self.auth.append(ws.request.headers.get("Authorization"))
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                msg = json.loads(raw)
                self.frames.append(msg)
                if msg[0] == 2:
                    await ws.send(json.dumps([3, msg[1], self.answer(msg[2])]))
                elif msg[1] in self.replies:
                    self.replies[msg[1]].set_result(msg)

    def answer(self, action: str) -> dict[str, Any]:
        now = "2026-11-01T00:00:00Z"
        if action == "BootNotification":
            return {"currentTime": now, "interval": 1, "status": self.boot_status}
        if action == "Heartbeat":
            return {"currentTime": now}
        if action == "NotifyEVChargingNeeds":
            return {"status": "Accepted"}
        return {}

    async def call(self, action: str, payload: dict[str, Any]) -> Any:
        uid = f"c{next(self.ids)}"
        self.sent_actions[uid] = action
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.replies[uid] = fut
        await self.send_raw(json.dumps([2, uid, action, payload]))
        return await asyncio.wait_for(fut, WAIT_S)

    async def send_raw(self, data: str | bytes) -> None:
        assert self.ws is not None
        await self.ws.send(data)

    def calls(self, action: str) -> list[Any]:
        return [f for f in self.frames if f[0] == 2 and f[2] == action]


async def until(cond: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_S):
        while not cond():  # noqa: ASYNC110 - polls plant and socket state
            await asyncio.sleep(0.01)


def profile_req(tx: str, limit_w: float, **sched_extra: Any) -> dict[str, Any]:
    sched = {"id": 1, "chargingRateUnit": "W",
             "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit_w}], **sched_extra}
    return {"evseId": 1, "chargingProfile": {
        "id": 100, "stackLevel": 1, "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative", "transactionId": tx, "chargingSchedule": [sched]}}


Setup = tuple[FakeCsms, SimStation, VehiclePlant, list[tuple[str, int, float, float]]]


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    csms = FakeCsms()
    async with serve(csms.handler, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as server:
        csms.port = next(iter(server.sockets)).getsockname()[1]
        plant = VehiclePlant(PlantParams.uniform(
            2, t_a_s=0.0, t_c_s=0.0, t_zero_s=0.0, ramp_up_w_s=1e6, ramp_down_w_s=1e6,
            max_charge_w=11_000, max_discharge_w=11_000, capacity_wh=50_000),
            np.array([0.5, 0.5]))
        hooks: list[tuple[str, int, float, float]] = []
        cfg = StationConfig("CP007", f"ws://127.0.0.1:{csms.port}/ocpp", password=PASSWORD,
                            meter_values_period_s=0.1, reconnect_min_s=0.05,
                            reconnect_max_s=0.2, boot_retry_s=0.1)
        station = SimStation(cfg, plant, 1, on_profile=lambda *a: hooks.append(a))
        task = asyncio.create_task(station.run())
        try:
            await until(lambda: bool(csms.calls("MeterValues")))
            yield csms, station, plant, hooks
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            station.close()


async def test_station_connects_with_its_id_basic_auth_and_boot_sequence(setup: Setup) -> None:
    csms, station, _, _ = setup
    assert csms.paths == ["/ocpp/CP007"]
    assert csms.auth == ["Basic " + base64.b64encode(f"CP007:{PASSWORD}".encode()).decode()]
    actions = [f[2] for f in csms.frames if f[0] == 2]
    assert actions[:4] == ["BootNotification", "StatusNotification", "TransactionEvent",
                           "NotifyEVChargingNeeds"]
    boot = csms.calls("BootNotification")[0][3]
    assert boot["reason"] == "PowerUp"
    tx = csms.calls("TransactionEvent")[0][3]
    assert tx["eventType"] == "Started"
    assert tx["triggerReason"] == "CablePluggedIn"
    assert tx["transactionInfo"]["transactionId"] == station.transaction_id
    assert tx["evse"] == {"id": 1, "connectorId": 1}
    assert csms.calls("StatusNotification")[0][3]["connectorStatus"] == "Occupied"
    assert station.booted
    assert station.connected


async def test_every_frame_the_station_sends_is_schema_valid(setup: Setup) -> None:
    csms, station, _, _ = setup
    tx = station.transaction_id
    assert tx is not None
    await csms.call("SetChargingProfile", profile_req(tx, -3000.0, duration=60))
    await csms.call("SetChargingProfile", profile_req("nope", 1.0))
    await csms.call("ClearChargingProfile", {"chargingProfileId": 100})
    await csms.call("ClearChargingProfile", {"chargingProfileId": 100})
    await csms.call("Reset", {"type": "Immediate"})
    await csms.call("GetVariables", {"getVariableData": []})
    await until(lambda: bool(csms.calls("Heartbeat")))
    seen = set()
    for frame in csms.frames:
        if frame[0] == 2:
            schema(f"{frame[2]}Request")(frame[3])
            seen.add(frame[2])
        elif frame[0] == 3:
            schema(f"{csms.sent_actions[frame[1]]}Response")(frame[2])
            seen.add(csms.sent_actions[frame[1]] + "Response")
        else:
            assert frame[0] == 4
            assert len(frame) == 5
            assert all(isinstance(x, str) for x in frame[1:4])
            assert frame[4] == {}
            seen.add(frame[2])
    assert seen >= {"BootNotification", "StatusNotification", "TransactionEvent",
                    "NotifyEVChargingNeeds", "MeterValues", "Heartbeat",
                    "SetChargingProfileResponse", "ClearChargingProfileResponse",
                    "ResetResponse", "NotImplemented"}


async def test_meter_values_report_import_export_and_soc(setup: Setup) -> None:
    csms, _, _, _ = setup
    mv = csms.calls("MeterValues")[-1][3]
    assert mv["evseId"] == 1
    sv = {s["measurand"]: s for s in mv["meterValue"][0]["sampledValue"]}
    assert set(sv) == {"Power.Active.Import", "Power.Active.Export", "SoC"}
    assert sv["SoC"]["value"] == 50.0
    assert sv["SoC"]["unitOfMeasure"]["unit"] == "Percent"
    assert all(s["context"] == "Sample.Periodic" for s in sv.values())


async def test_set_charging_profile_drives_the_plant_then_lapses_to_baseline(
        setup: Setup) -> None:
    csms, station, plant, hooks = setup
    assert station.transaction_id is not None
    reply = await csms.call("SetChargingProfile",
                            profile_req(station.transaction_id, -5000.0, duration=1))
    assert reply[2] == {"status": "Accepted"}
    assert plant.setpoint_w[1] == -5000.0
    assert plant.setpoint_w[0] == 0.0  # the other row is untouched
    assert hooks
    assert hooks[0][:3] == ("CP007", 1, -5000.0)
    await until(lambda: plant.setpoint_w[1] == 0.0)  # profile lapsed: back to baseline
    assert station.profile is None


async def test_valid_to_lapse_and_period_changes_are_followed(setup: Setup) -> None:
    csms, station, plant, _ = setup
    assert station.transaction_id is not None
    req = profile_req(station.transaction_id, 2000.0)
    req["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"].append(
        {"startPeriod": 1, "limit": 4000.0})
    await csms.call("SetChargingProfile", req)
    assert plant.setpoint_w[1] == 2000.0
    await until(lambda: plant.setpoint_w[1] == 4000.0)
    await csms.call("ClearChargingProfile", {})
    assert plant.setpoint_w[1] == 0.0


async def test_garbage_from_the_server_gets_errors_and_the_station_survives(
        setup: Setup) -> None:
    csms, station, plant, _ = setup
    n = len(csms.frames)
    for junk in ("not json", b"\x00\xff binary", "[]", "{}", "[2]", "[9, \"a\", 1]",
                 "[2, \"g1\", \"SetChargingProfile\", {\"bad\": 1}]",
                 "[2, \"g2\", \"SetChargingProfile\", []]",
                 "[2, \"g3\", 5, {}]", "[3, \"unknown-id\", {}]", "[4, \"x\"]",
                 "[2, \"g4\", \"SetChargingProfile\", {\"evseId\": 1, \"chargingProfile\": 5}]"):
        await csms.send_raw(junk)
    await until(lambda: any(f[1] == "g4" for f in csms.frames[n:] if isinstance(f, list)))
    errors = {f[1]: f[2] for f in csms.frames[n:] if f[0] == 4}
    assert errors["g1"] == "FormatViolation"
    assert errors["g2"] == "FormatViolation"
    assert errors["g4"] == "FormatViolation"
    assert errors["-1"] == "RpcFrameworkError"
    assert station.connected
    assert station.transaction_id is not None
    reply = await csms.call("SetChargingProfile", profile_req(station.transaction_id, 1500.0))
    assert reply[2] == {"status": "Accepted"}
    assert plant.setpoint_w[1] == 1500.0


async def test_station_reconnects_and_resumes_its_transaction(setup: Setup) -> None:
    csms, station, _, _ = setup
    assert csms.ws is not None
    await csms.ws.close()
    await until(lambda: station.connections == 2 and len(csms.calls("TransactionEvent")) == 2)
    boots = csms.calls("BootNotification")
    assert [b[3]["reason"] for b in boots] == ["PowerUp", "Unknown"]
    second = csms.calls("TransactionEvent")[1][3]
    assert second["eventType"] == "Updated"
    assert second["seqNo"] == 1
    assert second["transactionInfo"]["transactionId"] == station.transaction_id
    assert len(csms.calls("NotifyEVChargingNeeds")) == 1


async def test_profile_still_lapses_while_the_csms_is_away(setup: Setup) -> None:
    csms, station, plant, _ = setup
    assert station.transaction_id is not None
    assert csms.ws is not None
    await csms.call("SetChargingProfile", profile_req(station.transaction_id, -4000.0,
                                                      duration=1))
    await csms.ws.close()
    await until(lambda: plant.setpoint_w[1] == 0.0)


async def test_pending_boot_is_retried_until_accepted() -> None:
    csms = FakeCsms()
    csms.boot_status = "Pending"
    async with serve(csms.handler, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        plant = VehiclePlant(PlantParams.uniform(
            1, t_a_s=0, t_c_s=0, t_zero_s=0, ramp_up_w_s=1e3, ramp_down_w_s=1e3,
            max_charge_w=1e4, max_discharge_w=1e4, capacity_wh=1e4), [0.5])
        station = SimStation(StationConfig("CP1", f"ws://127.0.0.1:{port}"), plant, 0)
        task = asyncio.create_task(station.run())
        try:
            await until(lambda: len(csms.calls("BootNotification")) == 2)
            assert not station.booted
            assert not csms.calls("StatusNotification")
            csms.boot_status = "Accepted"
            await until(lambda: bool(csms.calls("StatusNotification")))
            assert csms.auth == [None]  # no password, no Authorization header
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_triggered_transaction_event_follows_the_trigger_response(setup: Setup) -> None:
    csms, station, _, _ = setup
    await until(lambda: bool(csms.calls("TransactionEvent")))
    reply = await csms.call("TriggerMessage", {"requestedMessage": "TransactionEvent"})
    assert reply[2] == {"status": "Accepted"}
    await until(lambda: any(c[3]["triggerReason"] == "Trigger"
                            for c in csms.calls("TransactionEvent")))
    event = next(c for c in csms.calls("TransactionEvent") if c[3]["triggerReason"] == "Trigger")
    assert csms.frames.index(reply) < csms.frames.index(event)  # F06.FR.04
    p = event[3]
    schema("TransactionEventRequest")(p)
    assert p["eventType"] == "Updated"
    assert p["transactionInfo"]["transactionId"] == station.transaction_id
    assert p["transactionInfo"]["chargingState"] in ("EVConnected", "Charging")
    assert p["evse"] == {"id": 1, "connectorId": 1}
    assert p["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"  # F06.FR.07


@pytest.mark.parametrize(
    ("request_", "status", "follow_up"),
    [
        ({"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": 1}},
         "Accepted", "StatusNotification"),
        ({"requestedMessage": "StatusNotification"}, "Rejected", None),  # F06.FR.12
        ({"requestedMessage": "TransactionEvent", "evse": {"id": 2}}, "Rejected", None),
        ({"requestedMessage": "BootNotification"}, "Rejected", None),  # F06.FR.17
        ({"requestedMessage": "MeterValues"}, "Accepted", "MeterValues"),
        ({"requestedMessage": "Heartbeat"}, "Accepted", "Heartbeat"),
        ({"requestedMessage": "LogStatusNotification"}, "NotImplemented", None),
    ],
)
async def test_trigger_message_answers(setup: Setup, request_: dict[str, Any], status: str,
                                       follow_up: str | None) -> None:
    csms, _, _, _ = setup
    await until(lambda: bool(csms.calls("TransactionEvent")))
    before = {a: len(csms.calls(a)) for a in ("StatusNotification", "MeterValues", "Heartbeat",
                                              "BootNotification")}
    reply = await csms.call("TriggerMessage", request_)
    schema("TriggerMessageResponse")(reply[2])
    assert reply[2]["status"] == status
    if follow_up is not None:
        await until(lambda: len(csms.calls(follow_up)) > before[follow_up])
        schema(f"{follow_up}Request")(csms.calls(follow_up)[-1][3])
    assert len(csms.calls("BootNotification")) == before["BootNotification"]


@pytest.mark.parametrize("payload", [
    {"evseId": "one", "chargingProfile": {}},  # wrong type
    {"chargingProfile": {}},  # missing field
    {"evseId": 1, "chargingProfile": {}, "colour": "red"},  # unknown field
])
def test_malformed_call_gets_the_ocpp_2_0_1_format_violation_code(payload: dict[str, Any]) -> None:
    plant = VehiclePlant(PlantParams.uniform(
        1, t_a_s=0.0, t_c_s=0.0, t_zero_s=0.0, ramp_up_w_s=1e6, ramp_down_w_s=1e6,
        max_charge_w=11_000, max_discharge_w=11_000, capacity_wh=50_000), np.array([0.5]))
    station = SimStation(StationConfig("CP001", "ws://127.0.0.1:1"), plant, 0)
    reply = station.handle_frame(json.dumps([2, "u1", "SetChargingProfile", payload]))
    assert reply is not None
    assert json.loads(reply)[:3] == [4, "u1", "FormatViolation"]  # 1.6's name: FormationViolation
    assert plant.setpoint_w[0] == 0.0

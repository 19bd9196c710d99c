"""A daemon restart must not take the fleet out of service.

Stations boot only after their own reboot: after a v2ghub restart they reconnect without a
BootNotification and without repeating TransactionEvent Started. With `ocpp.state_file` the new
daemon remembers it accepted them, asks them to re-report (TriggerMessage, F06) and sends
setpoints again. The station here is a raw websockets client scripted like a real one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from controller.adapters.statefile import load_accepted
from controller.adapters.telemetry import ConsoleTelemetry
from controller.app import Daemon
from controller.settings import parse_settings

from .conftest import PASSWORD, MeterFeed, daemon_doc, eventually

STATION = "CP001"
TX_ID = "tx-before-restart"
TS = "2026-11-27T04:00:00Z"
WAIT_S = 10.0  # liveness bound on loopback, not a speed assertion


@contextlib.asynccontextmanager
async def running(doc: dict[str, Any]) -> AsyncIterator[Daemon]:
    """A Daemon running until the block ends (then cancelled, as systemd stop would)."""
    daemon = Daemon(parse_settings(doc), telemetry=ConsoleTelemetry(topics=()))
    task = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.ready.wait(), WAIT_S)
        yield daemon
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class ScriptedStation:
    """One raw OCPP-J station: our CALLs await their results; the CSMS's CALLs are queued."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.incoming: asyncio.Queue[list[Any]] = asyncio.Queue()
        self.profiles: list[dict[str, Any]] = []
        self._results: dict[str, asyncio.Future[list[Any]]] = {}
        self._n = 0
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            msg = orjson.loads(raw)
            if msg[0] == 2 and msg[2] == "SetChargingProfile":
                self.profiles.append(msg[3])
                await self.answer(msg, {"status": "Accepted"})
            elif msg[0] == 2:
                await self.incoming.put(msg)
            elif msg[1] in self._results:
                self._results.pop(msg[1]).set_result(msg)

    async def call(self, action: str, payload: dict[str, Any]) -> list[Any]:
        self._n += 1
        uid = f"s{self._n}"
        fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._results[uid] = fut
        await self.ws.send(orjson.dumps([2, uid, action, payload]).decode())
        return await asyncio.wait_for(fut, WAIT_S)

    async def answer(self, call: list[Any], payload: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps([3, call[1], payload]).decode())

    async def next_call(self) -> list[Any]:
        return await asyncio.wait_for(self.incoming.get(), WAIT_S)

    def limits_w(self) -> list[float]:
        return [p["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"]
                for p in self.profiles]

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader


@contextlib.asynccontextmanager
async def station(daemon: Daemon) -> AsyncIterator[ScriptedStation]:
    auth = base64.b64encode(f"{STATION}:{PASSWORD}".encode()).decode()
    async with connect(f"ws://127.0.0.1:{daemon.server.port}/{STATION}",
                       subprotocols=["ocpp2.0.1"],
                       additional_headers={"Authorization": f"Basic {auth}"}) as ws:
        st = ScriptedStation(ws)
        try:
            yield st
        finally:
            await st.close()


def _tx_event(event_type: str, trigger: str, seq_no: int, state: str) -> dict[str, Any]:
    p: dict[str, Any] = {
        "eventType": event_type, "timestamp": TS, "triggerReason": trigger, "seqNo": seq_no,
        "transactionInfo": {"transactionId": TX_ID, "chargingState": state},
        "evse": {"id": 1, "connectorId": 1}}
    if trigger == "Trigger":  # F06.FR.07: most recent measurements, context Trigger
        p["meterValue"] = [{"timestamp": TS, "sampledValue": [
            {"value": 0.0, "measurand": "Power.Active.Import", "context": "Trigger"}]}]
    return p


async def _boot_and_start_transaction(daemon: Daemon) -> None:
    async with station(daemon) as st:
        boot = await st.call("BootNotification", {
            "chargingStation": {"model": "scripted", "vendorName": "test"}, "reason": "PowerUp"})
        assert boot[2]["status"] == "Accepted"
        await st.call("StatusNotification", {"timestamp": TS, "connectorStatus": "Occupied",
                                             "evseId": 1, "connectorId": 1})
        await st.call("TransactionEvent", _tx_event("Started", "CablePluggedIn", 0,
                                                    "EVConnected"))
        await eventually(lambda: bool(daemon.fleet.tx_active[: daemon.fleet.n].any()),
                         what="the transaction in the first daemon")


@pytest.fixture
def doc(tmp_path: Path) -> dict[str, Any]:
    return daemon_doc(1, contract_kw=10.0,
                      ocpp={"state_file": str(tmp_path / "state" / "stations.json")})


async def test_restarted_daemon_serves_a_station_that_does_not_boot_again(doc):
    state_file = Path(doc["ocpp"]["state_file"])
    async with running(doc) as first:
        await _boot_and_start_transaction(first)
        await eventually(lambda: load_accepted(state_file) == {STATION},
                         what="the acceptance written to the state file")

    async with running(doc) as second:  # a new process on a new port, same state file
        meter = MeterFeed(second.meter.port)
        meter.start()
        try:
            async with station(second) as st:  # reconnect WITHOUT BootNotification
                trigger = await st.next_call()
                assert trigger[2:] == ["TriggerMessage", {"requestedMessage": "TransactionEvent"}]
                await st.answer(trigger, {"status": "Accepted"})  # F06.FR.04: response first
                reply = await st.call("TransactionEvent",
                                      _tx_event("Updated", "Trigger", 1, "EVConnected"))
                assert reply[0] == 3
                assert (await st.call("Heartbeat", {}))[0] == 3  # no SecurityError any more

                status = await st.next_call()
                assert status[3] == {"requestedMessage": "StatusNotification",
                                     "evse": {"id": 1, "connectorId": 1}}
                await st.answer(status, {"status": "Accepted"})
                await st.call("StatusNotification", {
                    "timestamp": TS, "connectorStatus": "Occupied", "evseId": 1,
                    "connectorId": 1})

                meter.f_hz = 49.5  # DC-L: full low-frequency response, the EV must export
                await eventually(lambda: any(w < 0 for w in st.limits_w()),
                                 what="a negative SetChargingProfile after the restart")
                negative = next(p for p in st.profiles
                                if p["chargingProfile"]["chargingSchedule"][0][
                                    "chargingSchedulePeriod"][0]["limit"] < 0)
                assert negative["chargingProfile"]["transactionId"] == TX_ID
                assert negative["evseId"] == 1
        finally:
            await meter.close()


async def test_without_a_state_file_a_restarted_daemon_still_needs_a_boot(doc):
    doc["ocpp"].pop("state_file")
    async with running(doc) as first:
        await _boot_and_start_transaction(first)
    async with running(doc) as second, station(second) as st:
        reply = await st.call("Heartbeat", {})
        assert reply[:3] == [4, reply[1], "SecurityError"]  # today's documented default
        assert st.incoming.empty()

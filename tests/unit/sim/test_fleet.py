"""SimFleet: N stations sharing one plant, plant stepping, site meter, failure isolation."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from sim_chargers.fleet import SimFleet, load_frequency
from sim_chargers.fleetfile import load_fleet
from sim_chargers.settings import parse_sim_settings
from sim_chargers.station import SUBPROTOCOL, SimStation

WAIT_S = 5.0


async def until(cond: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_S):
        while not cond():  # noqa: ASYNC110 - polls plant and socket state
            await asyncio.sleep(0.01)


class MultiCsms:
    def __init__(self) -> None:
        self.conns: dict[str, ServerConnection] = {}
        self.tx: dict[str, str] = {}
        self.replies: dict[str, asyncio.Future[Any]] = {}

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        sid = ws.request.path.rsplit("/", 1)[-1]
        self.conns[sid] = ws
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                msg = json.loads(raw)
                if msg[0] != 2:
                    self.replies[msg[1]].set_result(msg)
                    continue
                if msg[2] == "TransactionEvent":
                    self.tx[sid] = msg[3]["transactionInfo"]["transactionId"]
                reply: dict[str, Any] = {}
                if msg[2] == "BootNotification":
                    reply = {"currentTime": "2026-01-01T00:00:00Z", "interval": 60,
                             "status": "Accepted"}
                elif msg[2] == "NotifyEVChargingNeeds":
                    reply = {"status": "Accepted"}
                await ws.send(json.dumps([3, msg[1], reply]))

    async def set_limit(self, sid: str, limit_w: float) -> Any:
        uid = f"p-{sid}"
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.replies[uid] = fut
        req = {"evseId": 1, "chargingProfile": {
            "id": 1, "stackLevel": 1, "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative", "transactionId": self.tx[sid],
            "chargingSchedule": [{"id": 1, "chargingRateUnit": "W", "duration": 60,
                                  "chargingSchedulePeriod": [{"startPeriod": 0,
                                                              "limit": limit_w}]}]}}
        await self.conns[sid].send(json.dumps([2, uid, "SetChargingProfile", req]))
        return await asyncio.wait_for(fut, WAIT_S)


class _Collect(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.samples: list[dict[str, Any]] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.samples.append(json.loads(data))


FLEET = """
[[group]]
model = "Nissan Ariya"
count = 2
charger_kw = 11
soc = 0.6
t_a_s = 0.0
ramp_up_kw_s = 1000

[[group]]
model = "Tesla M3"
count = 1
charger_kw = 7
soc = 0.6
"""


@pytest.fixture
def fleet_file(tmp_path: Path) -> Path:
    f = tmp_path / "fleet.toml"
    f.write_text(FLEET)
    return f


async def test_fleet_runs_stations_plant_and_meter_together(
        fleet_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    proto = _Collect()
    transport, _ = await loop.create_datagram_endpoint(lambda: proto,
                                                       local_addr=("127.0.0.1", 0))
    meter_port = transport.get_extra_info("sockname")[1]
    csms = MultiCsms()
    # one station's task keeps failing: the others must not notice
    original = SimStation.run

    async def flaky(self: SimStation) -> None:
        if self.station_id == "EV-2":
            raise RuntimeError("simulated station bug")
        await original(self)

    monkeypatch.setattr(SimStation, "run", flaky)
    async with serve(csms.handler, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        settings = parse_sim_settings({
            "sim": {"fleet": fleet_file.name, "plant_step_s": 0.02},
            "csms": {"url": f"ws://127.0.0.1:{port}", "id_format": "EV-{}"},
            "site_meter": {"port": meter_port, "rate_hz": 50},
            "frequency": {"event": "dc-l-dip"}}, fleet_file.parent)
        spec = load_fleet(settings.fleet)
        hooks: list[Any] = []
        fleet = SimFleet(settings, spec, load_frequency(settings),
                         on_profile=lambda *a: hooks.append(a))
        task = asyncio.create_task(fleet.run())
        try:
            await until(lambda: set(csms.tx) == {"EV-1", "EV-3"})
            assert [s.station_id for s in fleet.stations] == ["EV-1", "EV-2", "EV-3"]
            reply = await csms.set_limit("EV-1", -4000.0)
            assert reply[2] == {"status": "Accepted"}
            await until(lambda: fleet.total_power_w < -3999.0)
            await until(lambda: any(s.get("p_w", 0) < -3999.0 for s in proto.samples))
            states = fleet.state()
            assert states[0].setpoint_w == -4000.0
            assert states[0].model == "Nissan Ariya (2022)"
            assert not states[1].connected
            assert states[2].booted
            assert hooks[0][:3] == ("EV-1", 1, -4000.0)
            assert proto.samples[0]["f_hz"] == 50.0
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            transport.close()

"""Integration fixtures: a real daemon on loopback ports, real simulated stations, real broker.

Everything here runs real sockets in the test's event loop; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from controller.adapters.telemetry import ConsoleTelemetry, Telemetry
from controller.app import Daemon
from controller.settings import parse_settings

PASSWORD = "integration-pass-01"
ROOT = Path(__file__).resolve().parents[2]


def daemon_doc(n_stations: int, *, service: str = "DC-L", contract_kw: float = 100.0,
               mqtt_port: int | None = None, id_format: str = "CP{:03d}",
               **sections: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "site": {"id": "itest"},
        "ocpp": {"port": 0, "security_profile": 1, "call_timeout_s": 5.0,
                 "station_group": [{"id_format": id_format, "count": n_stations,
                                    "password": PASSWORD, "discharge": "negative_limit",
                                    "max_power_kw": 11}]},
        "meter": {"port": 0, "stale_after_s": 0.5},
        "mqtt": {"enabled": mqtt_port is not None, "port": mqtt_port or 1883,
                 "fleet_period_s": 0.2},
        "service": [{"name": service, "contract_kw": contract_kw}],
    }
    for key, extra in sections.items():
        doc.setdefault(key, {}).update(extra)
    return doc


StartDaemon = Callable[..., Awaitable[Daemon]]


@pytest.fixture
async def start_daemon() -> AsyncIterator[StartDaemon]:
    """`await start_daemon(doc, telemetry=None)` -> a running Daemon; stopped at teardown."""
    tasks: list[asyncio.Task[None]] = []

    async def start(doc: dict[str, Any], telemetry: Telemetry | None = None) -> Daemon:
        settings = parse_settings(doc)
        if telemetry is None and not settings.mqtt.enabled:
            telemetry = ConsoleTelemetry(topics=())
        daemon = Daemon(settings, telemetry=telemetry)
        tasks.append(asyncio.create_task(daemon.run()))
        await asyncio.wait_for(daemon.ready.wait(), 10)
        return daemon

    yield start
    for t in tasks:
        t.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await t


class MeterFeed:
    """The test's own site meter: sends SPEC §3.3 samples to the daemon's UDP port."""

    def __init__(self, port: int) -> None:
        self.addr = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.f_hz = 50.0
        self.running = True
        self._task: asyncio.Task[None] | None = None

    def send(self, f_hz: float, p_w: float | None = None) -> None:
        sample: dict[str, float] = {"t": time.time(), "f_hz": f_hz}
        if p_w is not None:
            sample["p_w"] = p_w
        self.sock.sendto(orjson.dumps(sample), self.addr)

    async def _run(self, rate_hz: float) -> None:
        while True:
            if self.running:
                self.send(self.f_hz)
            await asyncio.sleep(1.0 / rate_hz)

    def start(self, rate_hz: float = 20.0) -> None:
        self._task = asyncio.create_task(self._run(rate_hz))

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.sock.close()


async def eventually(pred: Callable[[], bool], timeout_s: float = 15.0, what: str = "") -> None:
    """Poll `pred` until true; fail with `what` after timeout_s (a liveness bound, not a speed
    assertion: it only fails if the thing never happens)."""
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def third_party_client(cls: Callable[[str, Any], Any], port: int, station_id: str,
                             subprotocols: list[str]) -> AsyncIterator[Any]:
    """A mobilityhouse `ChargePoint` subclass connected with Basic auth and running; yields it.

    Its receive loop is cancelled on exit, whatever the test did.
    """
    from websockets.asyncio.client import connect  # noqa: PLC0415 - only these tests need it

    auth = base64.b64encode(f"{station_id}:{PASSWORD}".encode()).decode()
    async with connect(f"ws://127.0.0.1:{port}/{station_id}", subprotocols=subprotocols,
                       additional_headers={"Authorization": f"Basic {auth}"}) as ws:
        cp = cls(station_id, ws)
        runner = asyncio.create_task(cp.start())
        try:
            yield cp
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner

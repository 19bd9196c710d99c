"""Setpoint fan-out latency: meter sample arrival -> every station holds its SetChargingProfile.

    .venv/bin/python bench/dispatch.py [--stations 1000] [--steps 5]

Runs N lean OCPP 2.0.1 stations (raw websockets, one subprocess) against
  1. the v2ghub daemon: a frequency step arrives on the meter UDP port; the control tick splits the
     DC-L response over all stations; latency = UDP send -> station receipt of its profile;
  2. the baseline: a CSMS built on mobilityhouse `ocpp.v201.ChargePoint`, sending the same
     setpoints with `call()` and its default schema validation, all at once (asyncio.gather);
     latency = start of the fan-out -> station receipt.
Both phases run in this one invocation on the same machine. CLOCK_MONOTONIC is system-wide on
Linux, so the station process's receive stamps compare with this process's send stamps.
Prints one JSON line: {"stations", "p50_ms", "p99_ms", "baseline_p50_ms", "baseline_p99_ms", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson

PASSWORD = "bench-password-0123"


# ------------------------------------------------------------------------------------- stations
class _LeanStation(asyncio.Protocol):
    """A bench station: websockets' sans-I/O client protocol on a bare asyncio transport.

    No task per connection and no per-message coroutine, so the station process costs as little
    as possible per profile and the figures measure the CSMS, not the bench's own clients.
    """

    def __init__(self, url: str, sid: str, records: list[tuple[float, str, float]],
                 ready: asyncio.Queue[str]) -> None:
        from websockets.client import ClientProtocol  # noqa: PLC0415
        from websockets.typing import Subprotocol  # noqa: PLC0415
        from websockets.uri import parse_uri  # noqa: PLC0415

        self.sid, self.records, self.ready = sid, records, ready
        self.proto = ClientProtocol(parse_uri(f"{url}/{sid}"),
                                    subprotocols=[Subprotocol("ocpp2.0.1")], max_size=2**20)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        import base64  # noqa: PLC0415

        self.transport = transport  # type: ignore[assignment]
        req = self.proto.connect()
        auth = base64.b64encode(f"{self.sid}:{PASSWORD}".encode()).decode()
        req.headers["Authorization"] = f"Basic {auth}"
        self.proto.send_request(req)
        self._flush()

    def _flush(self) -> None:
        assert self.transport is not None
        for data in self.proto.data_to_send():
            if data:
                self.transport.write(data)

    def _send(self, frame: list[Any]) -> None:
        self.proto.send_text(orjson.dumps(frame))

    def data_received(self, data: bytes) -> None:
        from websockets.frames import Frame, Opcode  # noqa: PLC0415
        from websockets.http11 import Response  # noqa: PLC0415

        recv_s = time.monotonic()
        self.proto.receive_data(data)
        for event in self.proto.events_received():
            if isinstance(event, Response):
                self._send([2, "b", "BootNotification", {
                    "chargingStation": {"model": "bench", "vendorName": "v2ghub"},
                    "reason": "PowerUp"}])
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self._on_text(event.data, recv_s)
        self._flush()

    def _on_text(self, data: bytes, recv_s: float) -> None:
        frame = orjson.loads(data)
        if frame[0] == 3 and frame[1] == "b":
            now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            self._send([2, "t", "TransactionEvent", {
                "eventType": "Started", "timestamp": now, "triggerReason": "CablePluggedIn",
                "seqNo": 0, "transactionInfo": {"transactionId": f"tx-{self.sid}",
                                                "chargingState": "EVConnected"},
                "evse": {"id": 1, "connectorId": 1}}])
        elif frame[0] == 3 and frame[1] == "t":
            self.ready.put_nowait(self.sid)
        elif frame[0] == 2 and frame[2] == "SetChargingProfile":
            sched = frame[3]["chargingProfile"]["chargingSchedule"]
            sched = sched[0] if isinstance(sched, list) else sched
            self.records.append((recv_s, self.sid, sched["chargingSchedulePeriod"][0]["limit"]))
            self._send([3, frame[1], {"status": "Accepted"}])
        elif frame[0] == 2:
            self._send([4, frame[1], "NotImplemented", "", {}])


async def _stations_main(url: str, n: int) -> None:
    """Child process: connect n stations, then serve 'dump' commands on stdin."""
    records: list[tuple[float, str, float]] = []
    ready: asyncio.Queue[str] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    host, port = url.removeprefix("ws://").split(":")
    for i in range(n):
        sid = f"B{i:05d}"
        await loop.create_connection(lambda sid=sid: _LeanStation(url, sid, records, ready),  # type: ignore[misc]
                                     host, int(port))
    for _ in range(n):
        await ready.get()
    print("ready", flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip() == b"dump":
            print(json.dumps(records), flush=True)
            records.clear()


def _uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: PLC0415

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


# ------------------------------------------------------------------------------------- harness
class _Stations:
    def __init__(self, url: str, n: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--child", url, "--stations", str(n)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    async def wait_ready(self) -> None:
        line = await asyncio.to_thread(self.proc.stdout.readline)  # type: ignore[union-attr]
        if line.strip() != "ready":
            raise RuntimeError(f"stations failed to start: {line!r}")

    async def dump(self) -> list[tuple[float, str, float]]:
        self.proc.stdin.write("dump\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        line = await asyncio.to_thread(self.proc.stdout.readline)  # type: ignore[union-attr]
        return [tuple(r) for r in json.loads(line)]  # type: ignore[misc]

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _latencies_ms(records: list[tuple[float, str, float]], t0: float, n: int) -> list[float]:
    first: dict[str, float] = {}
    for recv_s, sid, _ in records:
        first.setdefault(sid, recv_s)
    if len(first) < n:
        raise RuntimeError(f"only {len(first)} of {n} stations received a profile")
    return [(v - t0) * 1e3 for v in first.values()]


async def _bench_daemon(n: int, steps: int) -> list[float]:
    from controller.app import Daemon  # noqa: PLC0415
    from controller.settings import parse_settings  # noqa: PLC0415

    settings = parse_settings({
        "site": {"id": "bench"},
        "ocpp": {"port": 0, "security_profile": 1, "station_group": [{
            "id_format": "B{:05d}", "first": 0, "count": n, "password": PASSWORD,
            "discharge": "negative_limit", "max_power_kw": 10}]},
        "meter": {"port": 0, "stale_after_s": 5.0},
        "mqtt": {"enabled": False},
        "control": {"tick_period_s": 0.1, "refresh_s": 25.0},
        "service": [{"name": "DC-L", "contract_kw": n * 5.0}],
    })
    daemon = Daemon(settings, telemetry=_NullTelemetry())
    task = asyncio.create_task(daemon.run())
    await daemon.ready.wait()
    stations = _Stations(f"ws://127.0.0.1:{daemon.server.port}", n)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    meter = ("127.0.0.1", daemon.meter.port)  # type: ignore[union-attr]
    out: list[float] = []
    try:
        await stations.wait_ready()
        freqs = [50.0, 49.5] * steps  # each 50 -> 49.5 Hz step is measured (full DC-L)
        for k, f in enumerate(freqs):
            await stations.dump()
            t0 = time.monotonic()
            sock.sendto(orjson.dumps({"t": time.time(), "f_hz": f}), meter)
            await asyncio.sleep(1.0)
            # keep the meter fresh while the stations settle
            sock.sendto(orjson.dumps({"t": time.time(), "f_hz": f}), meter)
            await asyncio.sleep(0.5)
            records = await stations.dump()
            if k % 2 == 1:
                out += _latencies_ms([r for r in records if r[0] >= t0 and r[2] < 0], t0, n)
    finally:
        daemon.stopping()  # the stations' goodbyes are not alarms
        stations.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return out


class _NullTelemetry:
    connected = False
    dropped = 0
    published = 0

    def publish(self, *_a: Any, **_k: Any) -> None:
        pass

    def publish_latest(self, *_a: Any, **_k: Any) -> None:
        pass

    async def run(self) -> None:
        await asyncio.Event().wait()


async def _bench_baseline(n: int, steps: int) -> list[float]:
    from ocpp.routing import on  # noqa: PLC0415
    from ocpp.v201 import (  # noqa: PLC0415
        ChargePoint,
        call,
        call_result,
        enums,
    )
    from ocpp.v201 import datatypes as dt  # noqa: PLC0415
    from websockets.asyncio.server import serve  # noqa: PLC0415
    from websockets.exceptions import ConnectionClosed  # noqa: PLC0415

    cps: dict[str, ChargePoint] = {}

    class Csms(ChargePoint):  # type: ignore[misc]
        @on(enums.Action.boot_notification)  # type: ignore[misc]
        def boot(self, **_: Any) -> Any:
            return call_result.BootNotification(
                current_time=datetime.now(UTC).isoformat(), interval=60,
                status=enums.RegistrationStatusEnumType.accepted)

        @on(enums.Action.transaction_event)  # type: ignore[misc]
        def tx(self, **_: Any) -> Any:
            return call_result.TransactionEvent()

    async def handler(conn: Any) -> None:
        sid = conn.request.path.rsplit("/", 1)[-1]
        cp = Csms(sid, conn)
        cps[sid] = cp
        with contextlib.suppress(ConnectionClosed):  # the bench kills its stations at the end
            await cp.start()

    def profile(sid: str, limit_w: float) -> Any:
        now = datetime.now(UTC)
        return call.SetChargingProfile(evse_id=1, charging_profile=dt.ChargingProfileType(
            id=1001, stack_level=1,
            charging_profile_purpose=enums.ChargingProfilePurposeEnumType.tx_profile,
            charging_profile_kind=enums.ChargingProfileKindEnumType.absolute,
            transaction_id=f"tx-{sid}", valid_to=(now + timedelta(seconds=30)).isoformat(),
            charging_schedule=[dt.ChargingScheduleType(
                id=1, start_schedule=now.isoformat(), duration=30,
                charging_rate_unit=enums.ChargingRateUnitEnumType.watts,
                charging_schedule_period=[dt.ChargingSchedulePeriodType(
                    start_period=0, limit=limit_w)])]))

    server = await serve(handler, "127.0.0.1", 0, subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
                         compression=None, max_size=2**20)
    port = server.sockets[0].getsockname()[1]
    stations = _Stations(f"ws://127.0.0.1:{port}", n)
    out: list[float] = []
    try:
        await stations.wait_ready()
        for k in range(2 * steps):
            limit = -5000.0 if k % 2 == 1 else 0.0
            await stations.dump()
            t0 = time.monotonic()
            await asyncio.gather(*(cp.call(profile(sid, limit)) for sid, cp in cps.items()))
            await asyncio.sleep(0.5)
            records = await stations.dump()
            if k % 2 == 1:
                out += _latencies_ms([r for r in records if r[0] >= t0], t0, n)
    finally:
        stations.close()
        server.close()
        await server.wait_closed()
    return out


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values), q)), 1)


async def _main(n: int, steps: int) -> dict[str, Any]:
    ours = await _bench_daemon(n, steps)
    base = await _bench_baseline(n, steps)
    return {"stations": n, "p50_ms": _pct(ours, 50), "p99_ms": _pct(ours, 99),
            "baseline_p50_ms": _pct(base, 50), "baseline_p99_ms": _pct(base, 99),
            "ratio_p99": round(_pct(base, 99) / max(_pct(ours, 99), 1e-3), 1),
            "steps": steps, "samples": len(ours)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stations", type=int, default=1000)
    p.add_argument("--steps", type=int, default=5, help="frequency steps measured per phase")
    p.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    a = p.parse_args()
    logging.basicConfig(level=logging.ERROR)
    _uvloop()
    if a.child:
        asyncio.run(_stations_main(a.child, a.stations))
        return
    print(json.dumps(asyncio.run(_main(a.stations, a.steps))))


if __name__ == "__main__":
    main()

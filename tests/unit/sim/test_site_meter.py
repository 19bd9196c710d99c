"""SiteMeter: sample encoding, UDP and TCP streaming, pause and frequency override."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Callable
from typing import Any

import pytest

from sim_chargers.site_meter import SiteMeter, encode_sample
from sim_chargers.traces import builtin_event, parse_trace

WAIT_S = 5.0


async def until(cond: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_S):
        while not cond():  # noqa: ASYNC110 - polls plant and socket state
            await asyncio.sleep(0.01)


def test_samples_are_json_with_t_f_hz_and_p_w_and_null_for_non_finite() -> None:
    assert json.loads(encode_sample(1.5, 49.9, -2000.0)) == {"t": 1.5, "f_hz": 49.9,
                                                             "p_w": -2000.0}
    assert json.loads(encode_sample(1.0, math.nan, None)) == {"t": 1.0, "f_hz": None}


def test_frequency_follows_the_trace_after_the_start_delay_and_the_override() -> None:
    clock = [100.0]
    meter = SiteMeter(protocol="udp", host="127.0.0.1", port=9, rate_hz=10,
                      trace=builtin_event("dc-l-dip", pre_s=1.0), power_w=lambda: 0.0,
                      start_delay_s=2.0, clock=lambda: clock[0])
    meter._t0_s = 100.0  # as run() does at start
    assert meter.frequency_hz(102.5) == 50.0
    assert meter.frequency_hz(103.0) == 49.5
    meter.set_frequency_override(51.0)
    assert meter.frequency_hz(103.0) == 51.0
    meter.set_frequency_override(None)
    assert meter.frequency_hz(103.0) == 49.5


def test_rate_above_50_hz_is_refused() -> None:
    with pytest.raises(ValueError, match="rate_hz"):
        SiteMeter(protocol="udp", host="127.0.0.1", port=9, rate_hz=60,
                  trace=builtin_event("flat"), power_w=lambda: 0.0)


class _Collect(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.samples: list[dict[str, Any]] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.samples.append(json.loads(data))


async def test_udp_sends_one_datagram_per_sample_and_pause_silences_it() -> None:
    loop = asyncio.get_running_loop()
    proto = _Collect()
    transport, _ = await loop.create_datagram_endpoint(lambda: proto,
                                                       local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    trace = parse_trace("t_s,f_hz\n0,49.9\n")
    meter = SiteMeter(protocol="udp", host="127.0.0.1", port=port, rate_hz=50, trace=trace,
                      power_w=lambda: 1234.0)
    task = asyncio.create_task(meter.run())
    try:
        await until(lambda: len(proto.samples) >= 3)
        assert proto.samples[0]["f_hz"] == 49.9
        assert proto.samples[0]["p_w"] == 1234.0
        meter.pause()
        await asyncio.sleep(0.05)
        n = len(proto.samples)
        await asyncio.sleep(0.2)
        assert len(proto.samples) == n
        meter.resume()
        await until(lambda: len(proto.samples) > n)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        transport.close()


async def test_tcp_sends_newline_delimited_json_and_reconnects() -> None:
    lines: list[dict[str, Any]] = []
    conns: list[asyncio.StreamWriter] = []

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conns.append(writer)
        while line := await reader.readline():
            lines.append(json.loads(line))

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    meter = SiteMeter(protocol="tcp", host="127.0.0.1", port=port, rate_hz=50,
                      trace=builtin_event("flat"), power_w=lambda: -5.0)
    task = asyncio.create_task(meter.run())
    try:
        await until(lambda: len(lines) >= 3)
        assert lines[0]["f_hz"] == 50.0
        assert lines[0]["p_w"] == -5.0
        conns[0].close()
        await until(lambda: len(conns) == 2)
        n = len(lines)
        await until(lambda: len(lines) > n)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        server.close()

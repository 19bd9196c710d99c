"""Tests for controller/adapters/meter.py: real UDP and TCP sockets on 127.0.0.1, port 0."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from controller.adapters.meter import MAX_LINE_BYTES, MeterEndpoint, open_meter
from controller.settings import MeterConfig


class Recorder:
    """Collects (raw, recv_s) and lets a test wait for a count."""

    def __init__(self) -> None:
        self.got: list[tuple[bytes, float]] = []
        self._event = asyncio.Event()

    def __call__(self, raw: bytes, recv_s: float) -> None:
        self.got.append((raw, recv_s))
        self._event.set()

    async def wait_for(self, n: int) -> None:
        async with asyncio.timeout(5):
            while len(self.got) < n:
                self._event.clear()
                await self._event.wait()


def fake_clock() -> Callable[[], float]:
    ticks = itertools.count(100)
    return lambda: float(next(ticks))


@pytest.fixture
async def udp() -> AsyncIterator[tuple[MeterEndpoint, Recorder]]:
    rec = Recorder()
    ep = await open_meter(MeterConfig(protocol="udp", port=0), rec, clock=fake_clock())
    yield ep, rec
    await ep.close()


@pytest.fixture
async def tcp() -> AsyncIterator[tuple[MeterEndpoint, Recorder]]:
    rec = Recorder()
    ep = await open_meter(MeterConfig(protocol="tcp", port=0), rec, clock=fake_clock())
    yield ep, rec
    await ep.close()


async def test_udp_datagrams_reach_callback_with_receive_time(
        udp: tuple[MeterEndpoint, Recorder]) -> None:
    ep, rec = udp
    assert ep.port > 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b'{"t": 1.0, "f_hz": 50.0}', ("127.0.0.1", ep.port))
        sock.sendto(b"garbage is passed through", ("127.0.0.1", ep.port))
        await rec.wait_for(2)
    assert rec.got == [(b'{"t": 1.0, "f_hz": 50.0}', 100.0), (b"garbage is passed through", 101.0)]


async def test_udp_endpoint_survives_a_failing_callback(caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder()
    calls = 0

    def flaky(raw: bytes, recv_s: float) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        rec(raw, recv_s)

    ep = await open_meter(MeterConfig(protocol="udp", port=0), flaky)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"first", ("127.0.0.1", ep.port))
            sock.sendto(b"second", ("127.0.0.1", ep.port))
            await rec.wait_for(1)
    finally:
        await ep.close()
    assert rec.got[0][0] == b"second"
    assert any(r.exc_info and "meter callback failed" in r.message for r in caplog.records)


async def test_tcp_lines_reach_callback_without_newline(
        tcp: tuple[MeterEndpoint, Recorder]) -> None:
    ep, rec = tcp
    _, writer = await asyncio.open_connection("127.0.0.1", ep.port)
    writer.write(b'{"t": 1.0, "f_hz": 50.0}\n{"t": 1.02,')
    await writer.drain()
    await rec.wait_for(1)
    writer.write(b' "f_hz": 49.9}\r\n\n')  # split across writes, CRLF, blank line skipped
    await writer.drain()
    await rec.wait_for(2)
    writer.close()
    await writer.wait_closed()
    assert [raw for raw, _ in rec.got] == [b'{"t": 1.0, "f_hz": 50.0}',
                                          b'{"t": 1.02, "f_hz": 49.9}']
    assert [t for _, t in rec.got] == [100.0, 101.0]


async def test_overlong_line_on_one_tcp_client_does_not_stop_another(
        tcp: tuple[MeterEndpoint, Recorder]) -> None:
    ep, rec = tcp
    bad_r, bad_w = await asyncio.open_connection("127.0.0.1", ep.port)
    _, good_w = await asyncio.open_connection("127.0.0.1", ep.port)
    bad_w.write(b"\x00garbage\n" + b"x" * (MAX_LINE_BYTES * 2) + b"\n")
    with contextlib.suppress(ConnectionError):
        await bad_w.drain()
    good_w.write(b'{"t": 1.0, "f_hz": 50.0}\n')
    await good_w.drain()
    await rec.wait_for(2)
    good_w.write(b'{"t": 1.1, "f_hz": 49.9}\n')
    await good_w.drain()
    await rec.wait_for(3)
    raws = [raw for raw, _ in rec.got]
    assert b"\x00garbage" in raws
    assert b'{"t": 1.0, "f_hz": 50.0}' in raws
    assert raws[-1] == b'{"t": 1.1, "f_hz": 49.9}'
    assert not any(len(r) > MAX_LINE_BYTES for r in raws)
    async with asyncio.timeout(5):  # the offender alone was disconnected (EOF or RST)
        with contextlib.suppress(ConnectionResetError):
            assert await bad_r.read() == b""
    for w in (bad_w, good_w):
        w.close()


async def test_close_drops_connected_tcp_clients() -> None:
    rec = Recorder()
    ep = await open_meter(MeterConfig(protocol="tcp", port=0), rec)
    reader, writer = await asyncio.open_connection("127.0.0.1", ep.port)
    writer.write(b"hello\n")
    await writer.drain()
    await rec.wait_for(1)
    await ep.close()
    async with asyncio.timeout(5):
        assert await reader.read() == b""  # server side closed the connection
    writer.close()

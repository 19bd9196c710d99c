"""Tests for controller/adapters/meter.py: real UDP and TCP sockets on 127.0.0.1, port 0."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from controller.adapters.meter import MAX_LINE_BYTES, MeterEndpoint, SourceFilter, open_meter
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


# -- sender allow-list (meter.allowed_sources) --------------------------------------------------

ALLOWED = "127.0.0.2"  # the whole 127/8 is loopback on Linux: a second sender address


async def test_udp_datagrams_from_a_source_not_allowed_are_dropped_counted_and_logged_once(
        caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder()
    ep = await open_meter(MeterConfig(protocol="udp", port=0, allowed_sources=(ALLOWED,)), rec,
                          clock=fake_clock())
    try:
        with (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger,
              socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as meter):
            stranger.bind(("127.0.0.1", 0))
            meter.bind((ALLOWED, 0))
            for _ in range(3):
                stranger.sendto(b'{"t": 1.0, "f_hz": 49.0}', ("127.0.0.1", ep.port))
            meter.sendto(b'{"t": 1.0, "f_hz": 50.0}', ("127.0.0.1", ep.port))
            await rec.wait_for(1)  # loopback keeps the order: the three came first
    finally:
        await ep.close()
    assert [raw for raw, _ in rec.got] == [b'{"t": 1.0, "f_hz": 50.0}']
    assert ep.sources.dropped == {"127.0.0.1": 3}
    warnings = [r for r in caplog.records if "allowed_sources" in r.getMessage()]
    assert len(warnings) == 1
    assert "127.0.0.1" in warnings[0].getMessage()


async def test_tcp_connection_from_a_source_not_allowed_is_closed_unread() -> None:
    rec = Recorder()
    ep = await open_meter(MeterConfig(protocol="tcp", port=0, allowed_sources=(ALLOWED,)), rec,
                          clock=fake_clock())
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", ep.port,
                                                       local_addr=("127.0.0.1", 0))
        async with asyncio.timeout(5):
            assert await reader.read() == b""  # closed by the meter endpoint, nothing read
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", ep.port,
                                                       local_addr=(ALLOWED, 0))
        writer.write(b'{"t": 2.0, "f_hz": 50.0}\n')
        await writer.drain()
        await rec.wait_for(1)
        writer.close()
    finally:
        await ep.close()
    assert [raw for raw, _ in rec.got] == [b'{"t": 2.0, "f_hz": 50.0}']
    assert ep.sources.dropped == {"127.0.0.1": 1}


async def test_empty_allow_list_takes_any_sender(udp: tuple[MeterEndpoint, Recorder]) -> None:
    ep, rec = udp
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((ALLOWED, 0))
        sock.sendto(b"x", ("127.0.0.1", ep.port))
        await rec.wait_for(1)
    assert ep.sources.dropped == {}


def test_dual_stack_peers_match_their_ipv4_address() -> None:
    sources = SourceFilter(["192.0.2.10"])
    assert sources.admit(("::ffff:192.0.2.10", 5000, 0, 0))
    assert sources.admit(("192.0.2.10", 5000))
    assert not sources.admit(("192.0.2.11", 5000))
    assert not sources.admit(None)
    assert sources.dropped == {"192.0.2.11": 1, "None": 1}

"""Site-meter listeners: UDP datagrams or NDJSON over TCP (SPEC §3.3) -> on_raw(bytes, recv_s).

Framing, receive timestamps and the sender allow-list only. No validation and no decisions
here: MeterGuard (controller/control/meter.py) judges every sample. A failing callback is logged
with exc_info and never stops the endpoint; one misbehaving TCP client never disturbs another.

The stream is not authenticated (SPEC §3.3), so `meter.allowed_sources` lists the IP addresses
it is taken from (empty = any): datagrams and connections from any other address are dropped
before the callback, counted per source and logged once per source.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from controller.settings import MeterConfig

log = logging.getLogger(__name__)

OnRaw = Callable[[bytes, float], None]
Clock = Callable[[], float]

# A sample is ~60 bytes; 64 KiB bounds a TCP client's buffered line (StreamReader limit) and is
# far above any honest sample, so only garbage hits it.
MAX_LINE_BYTES = 65_536


class SourceFilter:
    """The sender allow-list: which peers may feed the meter stream.

    Attributes:
        dropped: datagrams/connections refused, per source address (text).
    """

    def __init__(self, allowed: Iterable[str]) -> None:
        self._allowed = frozenset(ipaddress.ip_address(a) for a in allowed)
        self.dropped: collections.Counter[str] = collections.Counter()

    def admit(self, peer: Any) -> bool:
        """True if `peer` (a socket address tuple, or None) may send; counts a refusal."""
        if not self._allowed:
            return True
        host = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
        try:
            addr = ipaddress.ip_address(host.partition("%")[0])  # drop an IPv6 scope id
        except ValueError:
            addr = None
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
        if addr in self._allowed:
            return True
        if host not in self.dropped:
            log.warning("meter: dropping input from %s, not in meter.allowed_sources "
                        "(logged once per source)", host)
        self.dropped[host] += 1
        return False


def _deliver(on_raw: OnRaw, data: bytes, recv_s: float) -> None:
    try:
        on_raw(data, recv_s)
    except Exception:
        log.exception("meter callback failed; sample dropped")


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, on_raw: OnRaw, clock: Clock, sources: SourceFilter) -> None:
        self._on_raw = on_raw
        self._clock = clock
        self._sources = sources

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if self._sources.admit(addr):
            _deliver(self._on_raw, data, self._clock())

    def error_received(self, exc: Exception) -> None:
        log.warning("meter UDP socket error: %s", exc)


class MeterEndpoint:
    """A running meter listener; `port` is the real bound port (useful with port 0).

    `sources.dropped` counts refused input per sender address.
    """

    def __init__(self, protocol: str, port: int, closer: Callable[[], object],
                 tcp_clients: set[asyncio.Task[None]] | None = None,
                 server: asyncio.Server | None = None, *,
                 sources: SourceFilter | None = None) -> None:
        self.protocol = protocol
        self.port = port
        self.sources = sources if sources is not None else SourceFilter(())
        self._closer = closer
        self._tcp_clients = tcp_clients if tcp_clients is not None else set()
        self._server = server

    async def close(self) -> None:
        """Stop listening and drop every TCP client; idempotent."""
        self._closer()
        clients = list(self._tcp_clients)
        for task in clients:
            task.cancel()
        for task in clients:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.wait_closed()


async def _serve_tcp_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            on_raw: OnRaw, clock: Clock) -> None:
    peer = writer.get_extra_info("peername")
    try:
        while True:
            try:
                line = await reader.readline()
            except ValueError:  # line longer than MAX_LINE_BYTES (LimitOverrunError)
                log.warning("meter TCP client %s sent a line over %d bytes; disconnecting",
                            peer, MAX_LINE_BYTES)
                return
            if not line:
                return
            recv_s = clock()
            line = line.rstrip(b"\r\n")
            if line.strip():
                _deliver(on_raw, line, recv_s)
    except (ConnectionError, OSError) as exc:
        log.info("meter TCP client %s dropped: %s", peer, exc)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def open_meter(cfg: MeterConfig, on_raw: OnRaw,
                     clock: Clock = time.monotonic) -> MeterEndpoint:
    """Start listening on cfg.host:cfg.port with cfg.protocol ("udp" or "tcp").

    Args:
        cfg: meter settings (protocol, host, port and allowed_sources are used here).
        on_raw: called with each datagram (UDP) or line without its newline (TCP) and the
            monotonic receive time; must not block.
        clock: monotonic clock in seconds (injected for tests).
    """
    loop = asyncio.get_running_loop()
    sources = SourceFilter(cfg.allowed_sources)
    if cfg.protocol == "udp":
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(on_raw, clock, sources), local_addr=(cfg.host, cfg.port))
        port = int(transport.get_extra_info("sockname")[1])
        log.info("meter listening on udp %s:%d", cfg.host, port)
        return MeterEndpoint("udp", port, transport.close, sources=sources)

    clients: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not sources.admit(writer.get_extra_info("peername")):
            writer.close()  # refused before reading a byte
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
            return
        task = asyncio.current_task()
        if task is not None:
            clients.add(task)
        try:
            await _serve_tcp_client(reader, writer, on_raw, clock)
        finally:
            if task is not None:
                clients.discard(task)

    server = await asyncio.start_server(handle, cfg.host, cfg.port, limit=MAX_LINE_BYTES)
    port = int(server.sockets[0].getsockname()[1])
    log.info("meter listening on tcp %s:%d", cfg.host, port)
    return MeterEndpoint("tcp", port, server.close, clients, server, sources=sources)

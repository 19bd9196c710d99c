"""Site-meter listeners: UDP datagrams or NDJSON over TCP (SPEC §3.3) -> on_raw(bytes, recv_s).

Framing and receive timestamps only. No validation and no decisions here: MeterGuard
(controller/control/meter.py) judges every sample. A failing callback is logged with exc_info
and never stops the endpoint; one misbehaving TCP client never disturbs another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from controller.settings import MeterConfig

log = logging.getLogger(__name__)

OnRaw = Callable[[bytes, float], None]
Clock = Callable[[], float]

# A sample is ~60 bytes; 64 KiB bounds a TCP client's buffered line (StreamReader limit) and is
# far above any honest sample, so only garbage hits it.
MAX_LINE_BYTES = 65_536


def _deliver(on_raw: OnRaw, data: bytes, recv_s: float) -> None:
    try:
        on_raw(data, recv_s)
    except Exception:
        log.exception("meter callback failed; sample dropped")


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, on_raw: OnRaw, clock: Clock) -> None:
        self._on_raw = on_raw
        self._clock = clock

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        _deliver(self._on_raw, data, self._clock())

    def error_received(self, exc: Exception) -> None:
        log.warning("meter UDP socket error: %s", exc)


class MeterEndpoint:
    """A running meter listener; `port` is the real bound port (useful with port 0)."""

    def __init__(self, protocol: str, port: int, closer: Callable[[], object],
                 tcp_clients: set[asyncio.Task[None]] | None = None,
                 server: asyncio.Server | None = None) -> None:
        self.protocol = protocol
        self.port = port
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
        cfg: meter settings (only protocol, host and port are used here).
        on_raw: called with each datagram (UDP) or line without its newline (TCP) and the
            monotonic receive time; must not block.
        clock: monotonic clock in seconds (injected for tests).
    """
    loop = asyncio.get_running_loop()
    if cfg.protocol == "udp":
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(on_raw, clock), local_addr=(cfg.host, cfg.port))
        port = int(transport.get_extra_info("sockname")[1])
        log.info("meter listening on udp %s:%d", cfg.host, port)
        return MeterEndpoint("udp", port, transport.close)

    clients: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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
    return MeterEndpoint("tcp", port, server.close, clients, server)

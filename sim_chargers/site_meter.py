"""Simulated site meter: streams {"t", "f_hz", "p_w"} samples (SPEC §3.3) to the daemon.

An edge (UDP socket or TCP connection, wall clock for `t`). It decides nothing: the frequency
comes from a Trace (zero-order hold) started `start_delay_s` after run(), the power from a
callable (the fleet's summed plant power). UDP: one JSON datagram per sample. TCP: one JSON
object per line, reconnecting with backoff; samples are dropped while disconnected (a real
meter does not queue stale readings). pause()/resume() simulate a silent meter;
set_frequency_override() forces a value (NaN allowed: sent as null, an invalid sample).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Literal

import orjson

from sim_chargers.traces import Trace

log = logging.getLogger(__name__)

MAX_RATE_HZ = 50.0  # SPEC §3.3: rates up to 50 Hz
RECONNECT_MIN_S = 0.2
RECONNECT_MAX_S = 5.0


def encode_sample(wall_s: float, f_hz: float, p_w: float | None) -> bytes:
    """One meter sample as JSON bytes (no newline). Non-finite values become null."""
    sample: dict[str, float | None] = {"t": wall_s, "f_hz": f_hz if math.isfinite(f_hz) else None}
    if p_w is not None:
        sample["p_w"] = p_w if math.isfinite(p_w) else None
    return orjson.dumps(sample)


class _Udp(asyncio.DatagramProtocol):
    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable
        log.debug("site meter: UDP error %s", exc)


class SiteMeter:
    """Streams samples at `rate_hz` until cancelled."""

    def __init__(self, *, protocol: Literal["udp", "tcp"], host: str, port: int,
                 trace: Trace, power_w: Callable[[], float | None], rate_hz: float = 10.0,
                 start_delay_s: float = 0.0, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        if not 0 < rate_hz <= MAX_RATE_HZ:
            raise ValueError(f"rate_hz must be in (0, {MAX_RATE_HZ}], got {rate_hz}")
        if protocol not in ("udp", "tcp"):
            raise ValueError(f"protocol must be 'udp' or 'tcp', got {protocol!r}")
        self.protocol, self.host, self.port = protocol, host, port
        self.trace, self.power_w, self.rate_hz = trace, power_w, rate_hz
        self.start_delay_s = start_delay_s
        self._clock, self._wall = clock, wall
        self._paused = False
        self._override: float | None = None
        self._t0_s: float | None = None
        self.samples_sent = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.StreamWriter | None = None
        self._tcp_retry_s = 0.0
        self._tcp_backoff_s = RECONNECT_MIN_S

    # -- test / fault hooks ------------------------------------------------------------------
    def pause(self) -> None:
        """Stop sending (a silent meter); the trace clock keeps running."""
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    def set_frequency_override(self, f_hz: float | None) -> None:
        """Send f_hz instead of the trace (None: back to the trace)."""
        self._override = f_hz

    def frequency_hz(self, now_s: float) -> float:
        """Frequency to report at monotonic now_s."""
        if self._override is not None:
            return self._override
        t0 = now_s if self._t0_s is None else self._t0_s
        return self.trace.f_at(now_s - t0 - self.start_delay_s)

    # -- loop --------------------------------------------------------------------------------
    async def run(self) -> None:
        """Send samples on an absolute schedule (no drift) until cancelled."""
        period = 1.0 / self.rate_hz
        self._t0_s = self._clock()
        k = 0
        try:
            while True:
                now = self._clock()
                if not self._paused:
                    await self._send(self._sample(now))
                k += 1
                nxt = self._t0_s + k * period
                if nxt < self._clock():  # fell behind: skip, never burst
                    k = math.ceil((self._clock() - self._t0_s) / period)
                    nxt = self._t0_s + k * period
                await asyncio.sleep(max(0.0, nxt - self._clock()))
        finally:
            self.close()

    def _sample(self, now_s: float) -> bytes:
        try:
            p = self.power_w()
        except Exception:
            log.exception("site meter: power source failed")
            p = None
        return encode_sample(self._wall(), self.frequency_hz(now_s), p)

    async def _send(self, data: bytes) -> None:
        if self.protocol == "udp":
            if self._udp is None:
                loop = asyncio.get_running_loop()
                self._udp, _ = await loop.create_datagram_endpoint(
                    _Udp, remote_addr=(self.host, self.port))
            self._udp.sendto(data)
            self.samples_sent += 1
            return
        await self._send_tcp(data + b"\n")

    async def _send_tcp(self, line: bytes) -> None:
        if self._tcp is None or self._tcp.is_closing():
            if self._clock() < self._tcp_retry_s:
                return
            try:
                async with asyncio.timeout(1.0):
                    _, self._tcp = await asyncio.open_connection(self.host, self.port)
                self._tcp_backoff_s = RECONNECT_MIN_S
            except (OSError, TimeoutError) as exc:
                log.info("site meter: TCP connect to %s:%s failed: %s", self.host, self.port, exc)
                self._tcp_retry_s = self._clock() + self._tcp_backoff_s
                self._tcp_backoff_s = min(self._tcp_backoff_s * 2, RECONNECT_MAX_S)
                self._tcp = None
                return
        writer = self._tcp
        if writer is None:
            return
        try:
            writer.write(line)
            async with asyncio.timeout(1.0):
                await writer.drain()
            self.samples_sent += 1
        except (OSError, TimeoutError) as exc:
            log.info("site meter: TCP send failed: %s", exc)
            writer.close()
            self._tcp = None

    def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            self._tcp = None

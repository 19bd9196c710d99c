"""MQTT telemetry: a bounded buffer drained by one sender task that reconnects on its own.

The control loop calls `publish()` / `publish_latest()`; they serialise with orjson, append to an
in-memory buffer and return (a few µs, no await, never raise). `run()` owns the broker connection:
it connects with a retained last will (`<prefix>/status` = offline), publishes the retained online
status, drains the buffer one message at a time and, when the broker goes away, reconnects with
full-jitter exponential backoff while the buffer keeps filling. SPEC §3.4: MQTT never sits on the
control path.

The buffer (`MqttConfig.buffer_size` messages, alarms first, latest value per subtopic) is
controller/adapters/mqtt_buffer.py's PublishBuffer; every message it drops counts in `dropped`.
Delivery is at-most-once for QoS 0 and at-least-once for QoS 1 across reconnects: a message whose
publish was interrupted goes back to the front of its FIFO. The Telemetry interface, the payload
encoding and ConsoleTelemetry live in controller/adapters/telemetry.py.

Must not: make control or protocol decisions, block or raise in `publish()`, or be called from
another thread than the event loop's (it uses an asyncio.Event).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping

import aiomqtt

from controller import __version__
from controller.adapters.mqtt_buffer import PublishBuffer, valid_subtopic
from controller.adapters.telemetry import encode_payload
from controller.settings import MqttConfig
from controller.timefmt import rfc3339_utc

__all__ = [
    "BACKOFF_INITIAL_S",
    "BACKOFF_MAX_S",
    "GOODBYE_TIMEOUT_S",
    "KEEPALIVE_S",
    "OPERATION_TIMEOUT_S",
    "MqttTelemetry",
    "backoff_delay_s",
    "broker_reachable",
]

log = logging.getLogger(__name__)

# Reconnect backoff: first retry within 0.5 s, capped at 30 s (full jitter, AWS architecture blog
# "Exponential Backoff And Jitter") so a site full of daemons does not hammer a restarted broker.
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 30.0
# MQTT keepalive: the broker declares us dead (and publishes the will) after 1.5x this
# (MQTT 3.1.1 §3.1.2.10); 15 s keeps "offline" visible within ~25 s of a hang.
KEEPALIVE_S = 15
# Bound on CONNACK, PUBACK and DISCONNECT waits (aiomqtt defaults to 10 s).
OPERATION_TIMEOUT_S = 5.0
# Best-effort "offline" status on shutdown must not hold up systemd's stop sequence.
GOODBYE_TIMEOUT_S = 1.0

_WILL_PAYLOAD = b'{"state":"offline"}'

Sleep = Callable[[float], Awaitable[None]]


def backoff_delay_s(attempt: int, rng: random.Random, *, initial_s: float = BACKOFF_INITIAL_S,
                    max_s: float = BACKOFF_MAX_S) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(max_s, initial_s * 2**attempt)]."""
    return rng.uniform(0.0, min(max_s, initial_s * 2.0 ** min(attempt, 32)))


_iso_utc = rfc3339_utc  # the one RFC 3339 formatter (controller/timefmt.py)


class MqttTelemetry:
    """Telemetry over MQTT (aiomqtt): bounded buffer, one sender, reconnect with backoff.

    Attributes:
        connected: True while a broker session is up.
        dropped: messages discarded (buffer full, unserialisable payload, bad subtopic).
        published: buffered messages handed to the broker (status messages not counted).
    """

    def __init__(self, cfg: MqttConfig, prefix: str, *, client_id: str | None = None,
                 rng: random.Random | None = None, sleep: Sleep = asyncio.sleep,
                 wall: Callable[[], float] = time.time,
                 backoff_initial_s: float = BACKOFF_INITIAL_S,
                 backoff_max_s: float = BACKOFF_MAX_S, keepalive_s: int = KEEPALIVE_S) -> None:
        """Build the publisher; nothing touches the network until `run()`.

        Args:
            cfg: broker address, credentials and buffer size.
            prefix: topic prefix without trailing slash (SPEC §3.4: `v2ghub/<site_id>`).
            client_id: MQTT client identifier; None lets the library pick a random one.
            rng: randomness for the backoff jitter (seed it in tests).
            sleep: awaitable sleep used between reconnect attempts (injectable for tests).
            wall: Unix clock for the `since` field of the status message.
            backoff_initial_s: first backoff ceiling.
            backoff_max_s: backoff ceiling cap.
            keepalive_s: MQTT keepalive interval.
        """
        self.connected = False
        self.dropped = 0
        self.published = 0
        self._cfg = cfg
        self._prefix = prefix.rstrip("/")
        self._client_id = client_id
        self._rng = rng if rng is not None else random.Random()
        self._sleep = sleep
        self._wall = wall
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._keepalive_s = keepalive_s
        self._buffer = PublishBuffer(self._prefix, cfg.buffer_size, self._count_drop)
        self._wake = asyncio.Event()
        self._warned_full = False
        self._warned_bad: set[str] = set()
        self._session_was_up = False

    @property
    def status_topic(self) -> str:
        return f"{self._prefix}/status"

    @property
    def pending(self) -> int:
        """Messages buffered and not yet handed to the broker."""
        return len(self._buffer)

    # -- caller side: no await, no raise ------------------------------------------------------

    def publish(self, subtopic: str, payload: Mapping[str, object], *, qos: int = 0,
                retain: bool = False) -> None:
        """Queue one message on `<prefix>/<subtopic>`; never blocks, never raises."""
        data = self._encode(subtopic, payload, qos)
        if data is not None and self._buffer.add(subtopic, data, qos, retain):
            self._wake_sender()

    def publish_latest(self, subtopic: str, payload: Mapping[str, object], *,
                       retain: bool = False) -> None:
        """Queue a QoS 0 message, replacing an unsent one for the same subtopic (latest wins)."""
        data = self._encode(subtopic, payload, 0)
        if data is not None and self._buffer.add_latest(subtopic, data, retain):
            self._wake_sender()

    def _wake_sender(self) -> None:
        if not self._wake.is_set():
            self._wake.set()

    def _encode(self, subtopic: str, payload: Mapping[str, object], qos: int) -> bytes | None:
        if not valid_subtopic(subtopic) or qos not in (0, 1, 2):
            self._reject(subtopic, f"invalid subtopic {subtopic!r} or qos {qos!r}")
            return None
        try:
            return encode_payload(payload)
        except (TypeError, ValueError) as exc:  # orjson.JSONEncodeError is a TypeError
            self._reject(subtopic, str(exc))
            return None

    def _reject(self, subtopic: str, why: str) -> None:
        self.dropped += 1
        if subtopic not in self._warned_bad:  # once per subtopic: no log flood at 10 Hz
            self._warned_bad.add(subtopic)
            log.warning("mqtt: dropping message on %r: %s", subtopic, why)

    def _count_drop(self) -> None:
        self.dropped += 1
        if not self._warned_full:  # once per outage
            self._warned_full = True
            log.warning("mqtt: buffer full (%d messages); dropping oldest telemetry",
                        self._buffer.capacity)

    # -- connection side ----------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, drain, reconnect with backoff; on cancel publish offline status and return."""
        attempt = 0
        try:
            while True:
                try:
                    await self._session()
                except aiomqtt.MqttError as exc:
                    level = logging.WARNING if attempt == 0 else logging.DEBUG
                    log.log(level, "mqtt: broker %s:%d unavailable: %s",
                            self._cfg.host, self._cfg.port, exc)
                except Exception:  # a library bug must not end telemetry (or the daemon)
                    log.exception("mqtt: unexpected error; reconnecting")
                if self._session_was_up:
                    attempt = 0
                self._session_was_up = False
                _raise_if_cancelling()
                delay_s = backoff_delay_s(attempt, self._rng, initial_s=self._backoff_initial_s,
                                          max_s=self._backoff_max_s)
                attempt += 1
                await self._sleep(delay_s)
        finally:
            self.connected = False

    def _new_client(self) -> aiomqtt.Client:
        return aiomqtt.Client(
            self._cfg.host,
            self._cfg.port,
            username=self._cfg.username,
            password=self._cfg.password,
            identifier=self._client_id,
            will=aiomqtt.Will(self.status_topic, _WILL_PAYLOAD, qos=1, retain=True),
            keepalive=self._keepalive_s,
            timeout=OPERATION_TIMEOUT_S,
        )

    async def _session(self) -> None:
        """One broker connection; returns only by exception (MqttError or cancellation)."""
        client = self._new_client()
        cancelled = False
        try:
            async with client:
                self.connected = self._session_was_up = True
                self._warned_full = False
                log.info("mqtt: connected to %s:%d", self._cfg.host, self._cfg.port)
                try:
                    await self._publish_status(client, "online")
                    _raise_if_cancelling()
                    await self._serve(client)
                except asyncio.CancelledError:
                    cancelled = True
                    self.connected = False
                    await self._say_goodbye(client)
                    raise
        except aiomqtt.MqttError:
            if cancelled:  # disconnect after the goodbye failed: still a shutdown
                raise asyncio.CancelledError from None
            raise
        finally:
            self.connected = False

    async def _publish_status(self, client: aiomqtt.Client, state: str) -> None:
        payload = encode_payload({"state": state, "since": _iso_utc(self._wall()),
                                  "version": __version__})
        await client.publish(self.status_topic, payload, qos=1, retain=True)

    async def _say_goodbye(self, client: aiomqtt.Client) -> None:
        """Best effort retained offline status, bounded by GOODBYE_TIMEOUT_S."""
        task = asyncio.ensure_future(self._publish_status(client, "offline"))
        done, _ = await asyncio.wait({task}, timeout=GOODBYE_TIMEOUT_S)
        if not done:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Drain the buffer while watching for a disconnect; raises MqttError when it ends."""
        watcher = asyncio.create_task(_until_disconnected(client), name="mqtt-watch")
        sender = asyncio.create_task(self._drain(client), name="mqtt-send")
        try:
            done, _ = await asyncio.wait({watcher, sender}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
            sender.cancel()
            await asyncio.gather(watcher, sender, return_exceptions=True)
        for task in done:
            task.result()  # re-raise the MqttError that ended the session
        raise aiomqtt.MqttError("mqtt session ended")

    async def _drain(self, client: aiomqtt.Client) -> None:
        # One publish at a time: aiomqtt warns above 10 pending calls (PITFALLS.md), and
        # sequential QoS 0 already reaches ~9k msg/s, far above a site's telemetry rate.
        while True:
            msg = self._buffer.pop()
            if msg is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)
            except (aiomqtt.MqttError, asyncio.CancelledError):
                self._buffer.requeue(msg)
                raise
            except Exception:  # poison message (e.g. oversized): drop it, keep the session
                self.dropped += 1
                log.exception("mqtt: cannot publish on %r; dropped", msg.topic)
                continue
            self.published += 1
            _raise_if_cancelling()


def _raise_if_cancelling() -> None:
    """Re-raise a cancellation that Python 3.11's asyncio.wait_for (used by aiomqtt) swallowed.

    In 3.11 a cancel that lands just as the awaited operation completes is lost (CPython
    gh-86296, fixed in 3.12); without this check the sender or run() would never stop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _until_disconnected(client: aiomqtt.Client) -> None:
    # We subscribe to nothing: the message iterator only ends, with MqttError, on disconnect.
    async for _ in client.messages:
        pass


async def broker_reachable(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """True if an MQTT broker accepts a CONNECT at host:port within timeout_s."""
    try:
        async with asyncio.timeout(timeout_s):
            async with aiomqtt.Client(host, port, timeout=timeout_s, keepalive=5):
                return True
    except (aiomqtt.MqttError, TimeoutError, OSError):
        return False

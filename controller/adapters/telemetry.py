"""Telemetry sinks: the interface the app publishes to, the JSON encoding, the console sink.

`Telemetry` is what the app needs from a sink (controller/adapters/mqtt.py's MqttTelemetry or
the broker-less ConsoleTelemetry here); `encode_payload` is the one JSON form of a payload
(orjson; numpy values as numbers, NaN/inf as null). ConsoleTelemetry prints one human line per
status/alarm message for the demo without a broker.

Must not: make control or protocol decisions, block or raise in `publish()`, or hold a network
connection (that is mqtt.py's).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Collection, Mapping
from typing import Protocol, TextIO

import orjson

_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class Telemetry(Protocol):
    """What the app needs from a telemetry sink (MQTT or console)."""

    connected: bool
    dropped: int
    published: int

    def publish(self, subtopic: str, payload: Mapping[str, object], *, qos: int = 0,
                retain: bool = False) -> None:
        """Queue one message on `<prefix>/<subtopic>`; never blocks, never raises."""

    def publish_latest(self, subtopic: str, payload: Mapping[str, object], *,
                       retain: bool = False) -> None:
        """Like publish (QoS 0), but replaces an unsent message for the same subtopic."""

    async def run(self) -> None:
        """Deliver messages until cancelled."""


def _json_default(obj: object) -> object:
    """orjson fallback: numpy values it does not take natively, non-dict mappings, sets."""
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    tolist = getattr(obj, "tolist", None)  # numpy scalar -> Python scalar, ndarray -> list
    if callable(tolist):
        return tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def encode_payload(payload: Mapping[str, object]) -> bytes:
    """Serialise a telemetry payload: numpy values as numbers, NaN/inf as null.

    Raises:
        TypeError: the payload holds a value with no JSON form.
    """
    return orjson.dumps(payload, default=_json_default, option=_JSON_OPTIONS)


class ConsoleTelemetry:
    """Telemetry for the demo without a broker: one human line per status/alarm message."""

    def __init__(self, stream: TextIO | None = None, *,
                 topics: Collection[str] = ("status", "alarm"),
                 wall: Callable[[], float] = time.time) -> None:
        """Print to `stream` (sys.stderr at call time if None) messages on `topics`."""
        self.connected = True
        self.dropped = 0
        self.published = 0
        self._stream = stream
        self._topics = frozenset(topics)
        self._wall = wall

    def publish(self, subtopic: str, payload: Mapping[str, object], *, qos: int = 0,
                retain: bool = False) -> None:
        """Print one line if `subtopic` is selected; never raises."""
        del qos, retain
        if subtopic not in self._topics:
            return
        try:
            fields = " ".join(f"{k}={_human(v)}" for k, v in payload.items())
            stamp = time.strftime("%H:%M:%S", time.localtime(self._wall()))
            print(f"{stamp} {subtopic}: {fields}", file=self._stream or sys.stderr, flush=True)
        except (OSError, TypeError, ValueError):
            self.dropped += 1
            return
        self.published += 1

    def publish_latest(self, subtopic: str, payload: Mapping[str, object], *,
                       retain: bool = False) -> None:
        """Same as publish (nothing is buffered)."""
        self.publish(subtopic, payload, retain=retain)

    async def run(self) -> None:
        """Nothing to deliver in the background; waits until cancelled."""
        await asyncio.Event().wait()


def _human(value: object) -> str:
    if isinstance(value, str):
        return value if value and " " not in value else repr(value)
    return orjson.dumps(value, default=_json_default, option=_JSON_OPTIONS).decode()

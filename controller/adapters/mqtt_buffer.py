"""The MQTT publisher's outgoing buffer: topics, a bound, alarms first, latest value per subtopic.

Bookkeeping for controller/adapters/mqtt.py, which feeds it from `publish()` and drains it from
its sender task. No I/O, no asyncio, no clock reads, no logging: a message dropped for room is
reported through `on_drop`, and the caller decides whether to wake its sender.

Policy (`capacity` messages in total):
- Topics are `<prefix>/<subtopic>`; a subtopic must be non-empty without MQTT wildcards
  (`valid_subtopic`).
- QoS ≥ 1 messages (alarms) and QoS 0 messages (telemetry) sit in two FIFOs; `pop` empties the
  QoS ≥ 1 FIFO first, so alarms raised during an outage go out first after reconnect.
- When full, the oldest QoS 0 message is dropped. If no QoS 0 message is buffered, an incoming
  QoS 0 message is dropped instead, and an incoming alarm displaces the oldest alarm.
- `add_latest` keeps at most one unsent message per subtopic: a newer payload replaces the
  buffered one in place (O(1)), so periodic per-EVSE states never pile up while the broker is away.
- `requeue` puts a message whose publish was interrupted back at the front of its FIFO (unless a
  newer value for its subtopic is already queued), so QoS 1 stays at-least-once across reconnects.
"""

from __future__ import annotations

import collections
from collections.abc import Callable


def valid_subtopic(subtopic: str) -> bool:
    """Non-empty, no wildcard and no NUL: usable in a PUBLISH topic."""
    # MQTT 3.1.1 §4.7: wildcards are not allowed in a PUBLISH topic; paho raises on them.
    return bool(subtopic) and "#" not in subtopic and "+" not in subtopic and "\0" not in subtopic


class Message:
    """One buffered PUBLISH."""

    __slots__ = ("key", "payload", "qos", "retain", "topic")

    def __init__(self, topic: str, payload: bytes, qos: int, retain: bool, key: str | None):
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.key = key  # subtopic for add_latest messages, else None


class PublishBuffer:
    """Messages waiting for the broker, at most `capacity` (see the module docstring)."""

    def __init__(self, prefix: str, capacity: int, on_drop: Callable[[], None]) -> None:
        """Start empty.

        Args:
            prefix: topic prefix without trailing slash.
            capacity: messages held in total.
            on_drop: called once per message dropped for room.
        """
        self.capacity = capacity
        self._topic_head = prefix.rstrip("/") + "/"
        self._on_drop = on_drop
        self._telemetry: collections.deque[Message] = collections.deque()  # QoS 0
        self._alarms: collections.deque[Message] = collections.deque()  # QoS >= 1
        self._latest: dict[str, Message] = {}  # subtopic -> its unsent add_latest message

    def __len__(self) -> int:
        return len(self._telemetry) + len(self._alarms)

    def add(self, subtopic: str, payload: bytes, qos: int, retain: bool) -> bool:
        """Queue one message on `<prefix>/<subtopic>`; False if it was dropped at once."""
        return self._append(Message(self._topic_head + subtopic, payload, qos, retain, None))

    def add_latest(self, subtopic: str, payload: bytes, retain: bool) -> bool:
        """Queue a QoS 0 message, or replace the unsent one for `subtopic`; True if added."""
        queued = self._latest.get(subtopic)
        if queued is not None:
            queued.payload = payload
            queued.retain = retain
            return False
        msg = Message(self._topic_head + subtopic, payload, 0, retain, subtopic)
        self._latest[subtopic] = msg
        return self._append(msg)

    def pop(self) -> Message | None:
        """The next message to send (alarms first), or None when empty."""
        queue = self._alarms or self._telemetry
        if not queue:
            return None
        msg = queue.popleft()
        if msg.key is not None:
            del self._latest[msg.key]
        return msg

    def requeue(self, msg: Message) -> None:
        """Put back a message whose publish was interrupted (front of its FIFO)."""
        if msg.key is not None:
            if msg.key in self._latest:
                return  # a newer value for this subtopic is already queued
            self._latest[msg.key] = msg
        (self._alarms if msg.qos else self._telemetry).appendleft(msg)
        while len(self) > self.capacity:
            self._drop_oldest()

    def _append(self, msg: Message) -> bool:
        if len(self) >= self.capacity:
            if msg.qos == 0 and not self._telemetry:
                self._on_drop()  # only alarms buffered: they win over new telemetry
                if msg.key is not None:
                    del self._latest[msg.key]
                return False
            self._drop_oldest()
        (self._alarms if msg.qos else self._telemetry).append(msg)
        return True

    def _drop_oldest(self) -> None:
        """Drop the oldest telemetry message, or the oldest alarm if there is none."""
        victim = (self._telemetry or self._alarms).popleft()
        if victim.key is not None:
            del self._latest[victim.key]
        self._on_drop()

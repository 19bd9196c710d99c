"""A Telemetry double for daemon unit tests: keeps what it is given, publishes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping


class Captured:
    """`publish` appends to `messages`; `publish_latest` keeps the latest per subtopic."""

    connected = True
    dropped = 0
    published = 0

    def __init__(self) -> None:
        self.latest: dict[str, Mapping[str, object]] = {}
        self.messages: list[tuple[str, Mapping[str, object]]] = []

    def publish(self, subtopic: str, payload: Mapping[str, object], *, qos: int = 0,
                retain: bool = False) -> None:
        self.messages.append((subtopic, payload))

    def publish_latest(self, subtopic: str, payload: Mapping[str, object], *,
                       retain: bool = False) -> None:
        self.latest[subtopic] = payload

    async def run(self) -> None:
        await asyncio.Event().wait()

    def alarms(self) -> list[Mapping[str, object]]:
        return [p for topic, p in self.messages if topic == "alarm"]

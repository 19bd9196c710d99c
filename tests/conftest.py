"""Shared test fixtures: a private mosquitto broker per test, free ports.

The broker is the real Debian mosquitto binary (controller.adapters.broker), started on a free
loopback port with a generated config; tests never touch a system broker on 1883.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from controller.adapters.broker import (
    INSTALL_HINT,
    Mosquitto,
    free_port,
    mosquitto_binary,
)

__all__ = ["Mosquitto", "MosquittoFactory", "free_port"]

MosquittoFactory = Callable[..., Mosquitto]


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[MosquittoFactory]:
    """Factory: `mosquitto_factory(port=None, start=True)` -> a started private broker.

    Fails (never skips) when the binary is missing: the suite must not pass without a broker.
    """
    if mosquitto_binary() is None:
        pytest.fail(f"mosquitto broker binary not found; {INSTALL_HINT}", pytrace=False)
    brokers: list[Mosquitto] = []

    def make(*, port: int | None = None, start: bool = True) -> Mosquitto:
        broker = Mosquitto(tmp_path, port=port)
        brokers.append(broker)
        if start:
            broker.start()
        return broker

    yield make
    for broker in brokers:
        broker.stop()


@pytest.fixture
def mosquitto(mosquitto_factory: MosquittoFactory) -> Mosquitto:
    """A started private broker on a free loopback port (host, port, stop(), start())."""
    return mosquitto_factory()

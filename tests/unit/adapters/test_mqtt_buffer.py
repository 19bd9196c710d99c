"""The MQTT publish buffer (no broker, no event loop): topics, bound, order, latest-wins."""

from __future__ import annotations

import pytest

from controller.adapters.mqtt_buffer import Message, PublishBuffer, valid_subtopic


def buffer(capacity: int = 10) -> tuple[PublishBuffer, list[None]]:
    drops: list[None] = []
    return PublishBuffer("v2ghub/site/", capacity, lambda: drops.append(None)), drops


def drain(buf: PublishBuffer) -> list[tuple[str, bytes]]:
    out = []
    while (msg := buf.pop()) is not None:
        out.append((msg.topic, msg.payload))
    return out


@pytest.mark.parametrize(("subtopic", "ok"), [
    ("fleet", True), ("evse/CP001/1", True), ("", False), ("evse/#", False), ("evse/+/1", False),
    ("a\0b", False),
])
def test_only_subtopics_without_wildcards_are_valid(subtopic: str, ok: bool) -> None:
    assert valid_subtopic(subtopic) is ok


def test_alarms_leave_first_then_telemetry_in_order_under_the_prefix() -> None:
    buf, drops = buffer()
    assert buf.add("fleet", b"1", 0, False)
    assert buf.add("alarm", b"a", 1, False)
    assert buf.add("fleet", b"2", 0, True)
    assert len(buf) == 3
    assert drain(buf) == [("v2ghub/site/alarm", b"a"), ("v2ghub/site/fleet", b"1"),
                          ("v2ghub/site/fleet", b"2")]
    assert not drops


def test_a_full_buffer_drops_the_oldest_telemetry_and_keeps_alarms() -> None:
    buf, drops = buffer(capacity=3)
    buf.add("alarm", b"a", 1, False)
    for i in range(4):
        assert buf.add("fleet", str(i).encode(), 0, False)
    assert (len(buf), len(drops)) == (3, 2)
    assert [p for _, p in drain(buf)] == [b"a", b"2", b"3"]


def test_new_telemetry_is_refused_when_only_alarms_fill_the_buffer() -> None:
    buf, drops = buffer(capacity=2)
    buf.add("alarm", b"a0", 1, False)
    buf.add("alarm", b"a1", 1, False)
    assert not buf.add("fleet", b"f", 0, False)
    assert not buf.add_latest("evse/CP001/1", b"e", False)
    assert buf.add("alarm", b"a2", 1, False)  # a newer alarm displaces the oldest
    assert len(drops) == 3
    assert [p for _, p in drain(buf)] == [b"a1", b"a2"]
    assert buf.add_latest("evse/CP001/1", b"e", False)  # its refused slot was freed


def test_latest_replaces_the_unsent_value_in_place() -> None:
    buf, _ = buffer()
    assert buf.add_latest("evse/CP001/1", b"old", False)
    buf.add("fleet", b"f", 0, False)
    assert not buf.add_latest("evse/CP001/1", b"new", True)  # replaced, nothing added
    assert drain(buf) == [("v2ghub/site/evse/CP001/1", b"new"), ("v2ghub/site/fleet", b"f")]
    assert buf.add_latest("evse/CP001/1", b"next", False)  # sent, so queued anew


def test_an_interrupted_message_goes_back_to_the_front_unless_superseded() -> None:
    buf, drops = buffer(capacity=2)
    buf.add("fleet", b"1", 0, False)
    buf.add("fleet", b"2", 0, False)
    first = buf.pop()
    assert isinstance(first, Message)
    buf.add("fleet", b"3", 0, False)
    buf.requeue(first)  # over capacity again: the oldest telemetry (itself) goes
    assert [p for _, p in drain(buf)] == [b"2", b"3"]
    assert len(drops) == 1
    buf.add_latest("evse/CP001/1", b"old", False)
    sent = buf.pop()
    assert sent is not None
    buf.add_latest("evse/CP001/1", b"new", False)
    buf.requeue(sent)  # a newer value is queued: the interrupted one is not put back
    assert drain(buf) == [("v2ghub/site/evse/CP001/1", b"new")]

"""The station's call channel: one outstanding CALL, answers matched by id, fast failure."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from sim_chargers.call_channel import CallChannel, CallFailed


class Wire:
    """Records the frames the channel sends."""

    def __init__(self) -> None:
        self.frames: list[list[object]] = []

    async def send(self, data: bytes) -> None:
        self.frames.append(orjson.loads(data))


async def sent(wire: Wire, n: int) -> None:
    while len(wire.frames) < n:  # noqa: ASYNC110 - the channel sends from another task
        await asyncio.sleep(0)


async def test_answer_with_the_same_id_completes_the_call() -> None:
    wire, channel = Wire(), CallChannel("CP1", timeout_s=5.0)
    call = asyncio.create_task(channel.call(wire.send, "Heartbeat", {}))
    await sent(wire, 1)
    assert wire.frames == [[2, "1", "Heartbeat", {}]]
    channel.resolve([3, "999", {}])  # a stray answer is logged and ignored
    channel.resolve([3, "1", {"currentTime": "now"}])
    assert await call == {"currentTime": "now"}


async def test_calls_go_one_at_a_time_with_increasing_ids() -> None:
    wire, channel = Wire(), CallChannel("CP1", timeout_s=5.0)
    first = asyncio.create_task(channel.call(wire.send, "Heartbeat", {}))
    second = asyncio.create_task(channel.call(wire.send, "StatusNotification", {}))
    await sent(wire, 1)
    await asyncio.sleep(0.01)
    assert len(wire.frames) == 1  # the second waits for the first answer
    channel.resolve([3, "1", {}])
    await sent(wire, 2)
    assert wire.frames[1][:3] == [2, "2", "StatusNotification"]
    channel.resolve([3, "2", {}])
    assert await first == await second == {}


@pytest.mark.parametrize("answer", [[4, "1", "NotImplemented", "", {}], [3, "1", "not a dict"]])
async def test_callerror_or_malformed_result_fails_the_call(answer: list[object]) -> None:
    wire, channel = Wire(), CallChannel("CP1", timeout_s=5.0)
    call = asyncio.create_task(channel.call(wire.send, "Heartbeat", {}))
    await sent(wire, 1)
    channel.resolve(answer)
    with pytest.raises(CallFailed):
        await call


async def test_lost_connection_fails_the_call_at_once_and_silence_times_out() -> None:
    wire, channel = Wire(), CallChannel("CP1", timeout_s=0.05)
    call = asyncio.create_task(channel.call(wire.send, "Heartbeat", {}))
    await sent(wire, 1)
    channel.connection_lost()
    with pytest.raises(ConnectionError):
        await call
    with pytest.raises(TimeoutError):
        await channel.call(wire.send, "Heartbeat", {})

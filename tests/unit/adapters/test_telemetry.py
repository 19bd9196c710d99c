"""Telemetry sinks without a broker: the payload encoding and ConsoleTelemetry."""

from __future__ import annotations

import asyncio
import io
import math
from types import MappingProxyType

import numpy as np
import orjson
import pytest

from controller.adapters.telemetry import ConsoleTelemetry, encode_payload


def test_encode_payload_handles_mappings_and_non_string_keys() -> None:
    assert orjson.loads(encode_payload(MappingProxyType({"a": {1: math.inf}}))) == {
        "a": {"1": None}}



def test_console_prints_one_line_per_alarm_and_status_only() -> None:
    out = io.StringIO()
    console = ConsoleTelemetry(out, wall=lambda: 0.0)
    console.publish("alarm", {"kind": "meter_stale", "detail": "no sample for 0.8 s",
                              "f_hz": np.float64(49.8)}, qos=1)
    console.publish("fleet", {"f_hz": 50.0})
    console.publish_latest("evse/CP001/1", {"power_w": 1.0})
    console.publish("status", {"state": "online"}, retain=True)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("alarm: kind=meter_stale detail='no sample for 0.8 s' f_hz=49.8")
    assert lines[1].endswith("status: state=online")
    assert (console.published, console.dropped) == (2, 0)


async def test_console_run_waits_until_cancelled() -> None:
    task = asyncio.create_task(ConsoleTelemetry(io.StringIO()).run())
    await asyncio.sleep(0.01)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

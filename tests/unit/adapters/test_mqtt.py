"""MqttTelemetry against a real, private mosquitto; its backoff and broker probe."""

from __future__ import annotations

import asyncio
import io
import random
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import numpy as np
import orjson
import pytest

from controller.adapters.mqtt import MqttTelemetry, backoff_delay_s, broker_reachable
from controller.adapters.telemetry import ConsoleTelemetry, Telemetry
from controller.settings import MqttConfig
from tests.conftest import Mosquitto, MosquittoFactory, free_port

PREFIX = "v2ghub/test"
SAFETY_TIMEOUT_S = 15.0  # only bounds a hung test; never a speed assertion


def telemetry_for(port: int, *, buffer_size: int = 10_000, **kwargs: object) -> MqttTelemetry:
    cfg = MqttConfig(host="127.0.0.1", port=port, buffer_size=buffer_size)
    return MqttTelemetry(cfg, PREFIX, rng=random.Random(1), **kwargs)  # type: ignore[arg-type]


async def wait_until(predicate: Callable[[], bool], what: str) -> None:
    # Polls plain attributes of the object under test (connected, counters): no event to await.
    async with asyncio.timeout(SAFETY_TIMEOUT_S):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert predicate(), what


@asynccontextmanager
async def subscribed(broker: Mosquitto, *topics: str) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(broker.host, broker.port) as client:
        for topic in topics:
            await client.subscribe(topic, qos=1)
        yield client


async def receive(client: aiomqtt.Client, n: int) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    async with asyncio.timeout(SAFETY_TIMEOUT_S):
        async for msg in client.messages:
            assert isinstance(msg.payload, bytes)
            out.append((str(msg.topic), orjson.loads(msg.payload)))
            if len(out) == n:
                break
    return out


async def retained_status(broker: Mosquitto) -> dict[str, object]:
    async with subscribed(broker, f"{PREFIX}/status") as client:
        [(_, payload)] = await receive(client, 1)
    assert isinstance(payload, dict)
    return payload


@asynccontextmanager
async def running(tel: MqttTelemetry) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(tel.run())
    try:
        yield task
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_mqtt_and_console_telemetry_satisfy_the_protocol() -> None:
    sinks: list[Telemetry] = [telemetry_for(1), ConsoleTelemetry(io.StringIO())]
    assert [s.connected for s in sinks] == [False, True]


async def test_status_is_retained_online_and_offline_after_graceful_stop(
        mosquitto: Mosquitto) -> None:
    tel = telemetry_for(mosquitto.port)
    async with running(tel):
        await wait_until(lambda: tel.connected, "connected")
        online = await retained_status(mosquitto)
        assert online["state"] == "online"
        assert {"since", "version"} <= online.keys()
    assert not tel.connected
    offline = await retained_status(mosquitto)
    assert offline["state"] == "offline"
    assert "since" in offline  # our goodbye, not the bare last will


async def test_killed_daemon_leaves_the_offline_last_will(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    script = tmp_path / "daemon.py"
    script.write_text(textwrap.dedent(f"""
        import asyncio
        from controller.adapters.mqtt import MqttTelemetry
        from controller.settings import MqttConfig
        cfg = MqttConfig(host={mosquitto.host!r}, port={mosquitto.port})
        asyncio.run(MqttTelemetry(cfg, {PREFIX!r}).run())
    """))
    proc = await asyncio.create_subprocess_exec(sys.executable, str(script),
                                                cwd=Path(__file__).parents[3])
    try:
        async with subscribed(mosquitto, f"{PREFIX}/status") as client:
            states: list[object] = []
            while not states or states[-1] != "online":
                [(_, payload)] = await receive(client, 1)
                assert isinstance(payload, dict)
                states.append(payload["state"])
    finally:
        proc.kill()  # SIGKILL: no DISCONNECT, the broker must publish the will
        await proc.wait()
    async with asyncio.timeout(SAFETY_TIMEOUT_S):  # the broker notices the EOF asynchronously
        while (status := await retained_status(mosquitto))["state"] == "online":  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert status == {"state": "offline"}


async def test_publish_never_blocks_or_grows_without_a_broker() -> None:
    slept: list[float] = []

    async def recording_sleep(delay_s: float) -> None:
        slept.append(delay_s)
        await asyncio.sleep(0.001)

    tel = telemetry_for(free_port(), buffer_size=1_000, sleep=recording_sleep)
    async with running(tel):
        for i in range(100_000):
            tel.publish("fleet", {"seq": i, "f_hz": 50.0})
        await wait_until(lambda: len(slept) >= 5, "several reconnect attempts")
        assert not tel.connected
    assert tel.pending == 1_000
    assert tel.dropped == 99_000
    assert tel.published == 0
    assert all(0.0 <= d <= 30.0 for d in slept)


async def test_broker_outage_buffers_then_resumes_on_the_same_port(
        mosquitto: Mosquitto) -> None:
    gate = asyncio.Event()
    slept: list[float] = []

    async def gated_sleep(delay_s: float) -> None:
        slept.append(delay_s)
        await gate.wait()

    tel = telemetry_for(mosquitto.port, sleep=gated_sleep)
    async with running(tel):
        async with subscribed(mosquitto, f"{PREFIX}/fleet") as client:
            await wait_until(lambda: tel.connected, "connected")
            tel.publish("fleet", {"seq": -1})
            assert await receive(client, 1) == [(f"{PREFIX}/fleet", {"seq": -1})]
        mosquitto.stop()
        await wait_until(lambda: not tel.connected, "disconnect noticed without publishing")
        for i in range(50):
            tel.publish("fleet", {"seq": i})
        assert tel.pending == 50
        mosquitto.start()
        async with subscribed(mosquitto, f"{PREFIX}/fleet") as client:
            gate.set()  # let the reconnect happen only once we listen
            got = await receive(client, 50)
        assert tel.connected
    assert [p for _, p in got] == [{"seq": i} for i in range(50)]
    assert tel.published == 51
    assert tel.pending == 0
    assert slept


async def test_alarms_outlive_telemetry_when_the_buffer_overflows(
        mosquitto_factory: MosquittoFactory) -> None:
    broker = mosquitto_factory()
    tel = telemetry_for(broker.port, buffer_size=100)
    for i in range(10):
        tel.publish("alarm", {"n": i}, qos=1)
    for i in range(1_000):
        tel.publish("fleet", {"seq": i})
    assert (tel.pending, tel.dropped) == (100, 910)
    async with subscribed(broker, f"{PREFIX}/#") as client, running(tel):
        got = await receive(client, 101)  # + the retained online status
    got = [m for m in got if not m[0].endswith("/status")]
    assert got[:10] == [(f"{PREFIX}/alarm", {"n": i}) for i in range(10)]
    assert got[10:] == [(f"{PREFIX}/fleet", {"seq": i}) for i in range(910, 1_000)]


def test_alarms_displace_the_oldest_alarm_when_only_alarms_are_buffered() -> None:
    tel = telemetry_for(free_port(), buffer_size=10)
    for i in range(12):
        tel.publish("alarm", {"n": i}, qos=1)
    tel.publish("fleet", {"seq": 0})  # telemetry never evicts an alarm
    assert (tel.pending, tel.dropped) == (10, 3)


async def test_publish_latest_keeps_one_unsent_message_per_subtopic(
        mosquitto: Mosquitto) -> None:
    tel = telemetry_for(mosquitto.port, buffer_size=100)
    for i in range(1_000):
        for evse in ("CP001/1", "CP002/1", "CP003/2"):
            tel.publish_latest(f"evse/{evse}", {"power_w": float(i)})
    tel.publish("fleet", {"seq": 1})
    tel.publish("fleet", {"seq": 2})
    assert (tel.pending, tel.dropped) == (5, 0)
    async with subscribed(mosquitto, f"{PREFIX}/evse/#", f"{PREFIX}/fleet") as client, running(tel):
        got = await receive(client, 5)
        tel.publish_latest("evse/CP001/1", {"power_w": -1.0})  # sent, so queued anew
        got += await receive(client, 1)
    assert sorted(got, key=repr) == sorted([
        (f"{PREFIX}/evse/CP001/1", {"power_w": 999.0}),
        (f"{PREFIX}/evse/CP002/1", {"power_w": 999.0}),
        (f"{PREFIX}/evse/CP003/2", {"power_w": 999.0}),
        (f"{PREFIX}/fleet", {"seq": 1}),
        (f"{PREFIX}/fleet", {"seq": 2}),
        (f"{PREFIX}/evse/CP001/1", {"power_w": -1.0}),
    ], key=repr)


async def test_numpy_values_and_nan_arrive_as_json_numbers_and_null(
        mosquitto: Mosquitto) -> None:
    tel = telemetry_for(mosquitto.port)
    tel.publish("fleet", {
        "f_hz": np.float64(49.95), "p_w": np.float32(-1500.5), "online": np.int64(3),
        "ok": np.bool_(True), "nan": float("nan"), "np_nan": np.float64("nan"),
        "row_w": np.array([1.0, np.nan, np.inf]), "names": np.array(["a", "b"]),
    })
    async with subscribed(mosquitto, f"{PREFIX}/fleet") as client, running(tel):
        [(_, payload)] = await receive(client, 1)
    assert payload == {"f_hz": 49.95, "p_w": -1500.5, "online": 3, "ok": True, "nan": None,
                       "np_nan": None, "row_w": [1.0, None, None], "names": ["a", "b"]}


def test_bad_payloads_and_subtopics_are_dropped_not_raised() -> None:
    tel = telemetry_for(free_port())
    tel.publish("fleet", {"obj": object()})
    tel.publish("evse/#", {"a": 1})
    tel.publish("", {"a": 1})
    tel.publish("alarm", {"a": 1}, qos=3)
    tel.publish_latest("evse/+/1", {"a": 1})
    assert (tel.pending, tel.dropped) == (0, 5)



def test_backoff_is_full_jitter_doubling_to_the_cap() -> None:
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    ceilings = [backoff_delay_s(n, Top()) for n in range(10)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]
    rng = random.Random(7)
    assert all(0.0 <= backoff_delay_s(3, rng) <= 4.0 for _ in range(1_000))
    assert backoff_delay_s(10_000, Top()) == 30.0


async def test_broker_reachable_tells_a_broker_from_a_closed_port(
        mosquitto: Mosquitto) -> None:
    assert await broker_reachable(mosquitto.host, mosquitto.port)
    assert not await broker_reachable("127.0.0.1", free_port(), timeout_s=0.5)


async def test_broker_reachable_rejects_a_silent_tcp_server() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        assert not await broker_reachable("127.0.0.1", port, timeout_s=0.3)


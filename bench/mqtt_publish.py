"""Benchmark: MqttTelemetry throughput and caller-side cost vs plain sequential aiomqtt.

Starts its own mosquitto on a free loopback port (the test suite's `Mosquitto` helper) and a
subscriber in a separate process, then for each round measures
- baseline: one aiomqtt client doing `await client.publish(...)` N times in sequence;
- telemetry: N `MqttTelemetry.publish()` calls from the "control loop", drained by its sender;
both as "handed to the broker" rate (publisher side, `*_msgs_s`) and end to end until the
subscriber has all N (`*_e2e_msgs_s`). Also the time one `publish()` call costs the caller (what a
control tick pays). The ratios compare the two in the same run.
Prints one JSON line. Usage: python bench/mqtt_publish.py [-n 20000] [--rounds 3] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiomqtt
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.adapters.broker import Mosquitto
from controller.adapters.mqtt import MqttTelemetry
from controller.adapters.telemetry import encode_payload
from controller.settings import MqttConfig

PREFIX = "v2ghub/bench"


def evse_payload(i: int) -> dict[str, Any]:
    """A per-EVSE state message of the size the daemon publishes (~200 bytes)."""
    return {"station_id": f"CP{i % 1000:04d}", "evse_id": 1, "online": True, "tx_active": True,
            "setpoint_w": -7400.0 + i % 100, "measured_w": -7350.5, "baseline_w": 0.0,
            "soc_frac": 0.734, "max_charge_w": 11000.0, "max_discharge_w": 11000.0,
            "t_wall_s": 1_795_752_882.123}


# Subscriber in its own process, so that receiving does not share the publisher's event loop:
# prints "ready" once subscribed, then "got" after every N messages.
_SUBSCRIBER = """
import asyncio, sys, aiomqtt
async def main(host, port, n):
    async with aiomqtt.Client(host, int(port)) as client:
        await client.subscribe(sys.argv[4] + "/evse/#")
        print("ready", flush=True)
        count = 0
        async for _ in client.messages:
            count += 1
            if count == int(n):
                count = 0
                print("got", flush=True)
asyncio.run(main(*sys.argv[1:4]))
"""


class Subscriber:
    """The subscriber subprocess; `delivered()` returns when the next N messages arrived."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, broker: Mosquitto, n: int) -> Subscriber:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _SUBSCRIBER, broker.host, str(broker.port), str(n), PREFIX,
            stdout=asyncio.subprocess.PIPE)
        sub = cls(proc)
        await sub._line("ready")
        return sub

    async def _line(self, expected: str) -> None:
        assert self.proc.stdout is not None
        line = (await asyncio.wait_for(self.proc.stdout.readline(), 120)).decode().strip()
        if line != expected:
            raise RuntimeError(f"subscriber said {line!r}, expected {expected!r}")

    async def delivered(self) -> None:
        await self._line("got")

    async def stop(self) -> None:
        self.proc.kill()
        await self.proc.wait()


async def baseline(broker: Mosquitto, sub: Subscriber, n: int) -> tuple[float, float]:
    """Plain aiomqtt, sequential awaits: (handed-to-broker msg/s, end-to-end msg/s)."""
    async with aiomqtt.Client(broker.host, broker.port) as client:
        t0 = time.perf_counter()
        for i in range(n):
            await client.publish(f"{PREFIX}/evse/{i % 1000}/1", orjson.dumps(evse_payload(i)))
        t_handed = time.perf_counter()
        await sub.delivered()
        t_end = time.perf_counter()
    return n / (t_handed - t0), n / (t_end - t0)


async def telemetry(broker: Mosquitto, sub: Subscriber,
                    n: int) -> tuple[float, float, list[int]]:
    """MqttTelemetry: (handed msg/s, end-to-end msg/s, per-call caller cost in ns)."""
    tel = MqttTelemetry(MqttConfig(host=broker.host, port=broker.port, buffer_size=n), PREFIX)
    task = asyncio.create_task(tel.run())
    while not tel.connected:  # noqa: ASYNC110 - polling the object under measurement
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # let the retained online status go out first
    call_ns: list[int] = []
    clock = time.perf_counter_ns
    t0 = time.perf_counter()
    for i in range(n):
        payload = evse_payload(i)
        c0 = clock()
        tel.publish(f"evse/{i % 1000}/1", payload)
        call_ns.append(clock() - c0)
        if i % 1000 == 999:
            await asyncio.sleep(0)  # a control tick yields to the loop between fan-outs
    while tel.published < n:  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    t_handed = time.perf_counter()
    await sub.delivered()
    t_end = time.perf_counter()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    if tel.dropped:
        raise RuntimeError(f"telemetry dropped {tel.dropped} messages")
    return n / (t_handed - t0), n / (t_end - t0), call_ns


async def main(n: int, rounds: int) -> dict[str, Any]:
    base_h, base_e, tel_h, tel_e, call_ns = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp, Mosquitto(Path(tmp)) as broker:
        sub = await Subscriber.start(broker, n)
        try:
            for _ in range(rounds):
                handed, e2e = await baseline(broker, sub, n)
                base_h.append(handed)
                base_e.append(e2e)
                handed, e2e, ns = await telemetry(broker, sub, n)
                tel_h.append(handed)
                tel_e.append(e2e)
                call_ns.extend(ns)
        finally:
            await sub.stop()
    call_ns.sort()
    med = statistics.median
    return {
        "bench": "mqtt_publish", "n": n, "rounds": rounds,
        "payload_bytes": len(encode_payload(evse_payload(0))),
        "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        "telemetry_msgs_s": round(med(tel_h)), "baseline_aiomqtt_msgs_s": round(med(base_h)),
        "ratio_vs_baseline": round(med(tel_h) / med(base_h), 3),
        "telemetry_e2e_msgs_s": round(med(tel_e)), "baseline_e2e_msgs_s": round(med(base_e)),
        "e2e_ratio_vs_baseline": round(med(tel_e) / med(base_e), 3),
        "publish_call_us_mean": round(statistics.fmean(call_ns) / 1000, 2),
        "publish_call_us_p50": round(call_ns[len(call_ns) // 2] / 1000, 2),
        "publish_call_us_p99": round(call_ns[int(len(call_ns) * 0.99)] / 1000, 2),
        "publish_call_us_max": round(call_ns[-1] / 1000, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000, help="messages per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        result = uvloop.run(main(args.n, args.rounds))
    else:
        result = asyncio.run(main(args.n, args.rounds))
    print(orjson.dumps(result).decode())

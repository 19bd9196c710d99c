"""Benchmark: Controller.tick (vectorised) vs a per-row Python loop doing the same work.

Usage: python bench/control_tick.py [--ticks N]
Prints one JSON line: per-tick microseconds for both at 1 000 and 10 000 EVSE rows, and the
ratio loop/vectorised measured in the same run (STYLE.md: speed as ratios, never asserted).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import orjson

from controller.control.controller import Controller, ControlParams
from controller.control.fleet import FleetState
from controller.control.services import ContractedService, contracts_from, request_w


def make_fleet(n: int, seed: int = 1) -> FleetState:
    rng = np.random.default_rng(seed)
    fleet = FleetState(capacity=n)
    for i in range(n):
        fleet.row(f"CP{i:05d}", 1, max_power_w=float(rng.choice([7_400, 11_000, 22_000])),
                  can_discharge=bool(rng.random() < 0.8))
    fleet.online[:] = rng.random(n) < 0.95
    fleet.tx_active[:] = rng.random(n) < 0.9
    fleet.baseline_w[:] = rng.uniform(0, 5_000, n)
    return fleet


def loop_tick(contracts: list[ContractedService], p: ControlParams, fleet: FleetState, now_s: float,
              freq_hz: float) -> tuple[list[float], list[int]]:
    """The same tick, one Python iteration per row (the baseline)."""
    resp = request_w(contracts, freq_hz)
    base, ceil_, dis = fleet.baseline_w.tolist(), fleet.max_charge_w.tolist(), \
        fleet.max_discharge_w.tolist()
    can, onl, tx = fleet.can_discharge.tolist(), fleet.online.tolist(), fleet.tx_active.tolist()
    last, sent = fleet.setpoint_w.tolist(), fleet.sent_at_s.tolist()
    rows: list[tuple[float, float, float] | None] = []
    down_w = up_w = 0.0
    for i in range(len(base)):
        if not (onl[i] and tx[i]):
            rows.append(None)
            continue
        floor = -dis[i] if can[i] else 0.0
        b = min(max(base[i], floor), ceil_[i])
        rows.append((b, floor, ceil_[i]))
        down_w += b - floor
        up_w += ceil_[i] - b
    target: list[float] = []
    send: list[int] = []
    for i, r in enumerate(rows):
        if r is None:
            target.append(base[i])
            continue
        b, floor, c = r
        if resp < 0 and down_w > 0:
            t = b - min(1.0, -resp / down_w) * (b - floor)
        elif resp > 0 and up_w > 0:
            t = b + min(1.0, resp / up_w) * (c - b)
        else:
            t = b
        target.append(t)
        if (math.isnan(last[i]) or abs(t - last[i]) >= p.min_step_w
                or now_s - sent[i] >= p.refresh_s):
            send.append(i)
    return target, send


def bench(n: int, ticks: int) -> dict[str, float]:
    contracts = contracts_from([("DC", 1_000.0), ("FCR", 500.0)])
    params = ControlParams()
    freqs = 50.0 + 0.3 * np.sin(np.linspace(0, 20, ticks))
    fleet = make_fleet(n)
    ctl = Controller(contracts, params)
    # same answer first (guards the baseline against drift)
    res = ctl.tick(fleet, 0.0, 49.7)
    tgt, send = loop_tick(contracts, params, fleet, 0.0, 49.7)
    if not np.allclose(res.target_w, tgt) or res.send_rows.tolist() != send:
        raise SystemExit("loop baseline disagrees with Controller.tick")
    t0 = time.perf_counter()
    for k in range(ticks):
        r = ctl.tick(fleet, 0.1 * k, float(freqs[k]))
        fleet.mark_sent(r.send_rows, r.target_w[r.send_rows], 0.1 * k)
    vec_us = (time.perf_counter() - t0) / ticks * 1e6
    fleet = make_fleet(n)
    t0 = time.perf_counter()
    for k in range(ticks):
        tgt, send = loop_tick(contracts, params, fleet, 0.1 * k, float(freqs[k]))
        rows = np.array(send, dtype=np.intp)
        fleet.mark_sent(rows, np.array(tgt)[rows], 0.1 * k)
    loop_us = (time.perf_counter() - t0) / ticks * 1e6
    return {f"vectorised_us_{n}": round(vec_us, 1), f"loop_us_{n}": round(loop_us, 1),
            f"ratio_{n}": round(loop_us / vec_us, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ticks", type=int, default=200)
    args = ap.parse_args()
    out: dict[str, object] = {"bench": "control_tick", "ticks": args.ticks}
    for n in (1_000, 10_000):
        out.update(bench(n, args.ticks))
    print(orjson.dumps(out).decode())


if __name__ == "__main__":
    main()

"""Benchmark: VehiclePlant.step (vectorised) vs a per-vehicle Python loop of the same dynamics.

Prints one JSON line: microseconds per step for 1000 vehicles, both ways, and the ratio.
Both run the same scenario (staggered setpoints, some sign reversals, 20 Hz steps) and the
script checks they agree, so the speed comparison is between equal models.

    .venv/bin/python bench/plant_step.py [--vehicles 1000] [--steps 2000]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from sim_chargers.fleetfile import load_fleet
from sim_chargers.plant import PlantParams, VehiclePlant

DT_S = 0.05  # 20 Hz, the fast-time evaluation rate (issue 3)


class LoopPlant:
    """Scalar reference: the plant's dynamics written vehicle by vehicle (the baseline)."""

    def __init__(self, par: PlantParams, soc: np.ndarray) -> None:
        self.par = {k: getattr(par, k).tolist() for k in (
            "t_a_s", "t_c_s", "t_zero_s", "ramp_up_w_s", "ramp_down_w_s", "max_charge_w",
            "max_discharge_w", "capacity_wh", "efficiency")}
        n = par.n
        self.p, self.soc = [0.0] * n, soc.tolist()
        self.target, self.pending = [0.0] * n, [0.0] * n
        self.at, self.zero = [math.inf] * n, [False] * n
        self.t = 0.0

    def command(self, i: int, sp: float, now: float) -> None:
        self.step(now)
        q = self.par
        tgt = min(max(sp, -q["max_discharge_w"][i]), q["max_charge_w"][i])
        p = self.p[i]
        flowing = abs(p) >= 1.0
        zero = flowing and abs(tgt) >= 1.0 and p * tgt < 0
        at_new = now + (q["t_c_s"][i] if flowing else q["t_a_s"][i]) + (
            q["t_zero_s"][i] if zero else 0.0)
        if math.isfinite(self.at[i]):
            if zero and not self.zero[i]:
                self.at[i] = max(self.at[i], at_new)
            self.zero[i] = self.zero[i] or zero
        else:
            self.at[i], self.zero[i] = at_new, zero
        self.pending[i] = tgt

    @staticmethod
    def _ramp(p: float, tgt: float, tau: float, up: float, down: float) -> float:
        if p * tgt < 0:
            t0 = abs(p) / down
            if tau <= t0:
                return p - math.copysign(down * tau, p)
            lim = up * (tau - t0)
            return min(max(tgt, -lim), lim)
        rate = up if abs(tgt) > abs(p) else down
        return p + min(max(tgt - p, -rate * tau), rate * tau)

    def step(self, now: float) -> None:
        t0 = self.t
        if not now > t0:
            return
        q = self.par
        for i in range(len(self.p)):
            due = self.at[i] <= now
            ts = max(self.at[i], t0) if due else now
            up, down = q["ramp_up_w_s"][i], q["ramp_down_w_s"][i]
            p0 = self.p[i]
            p1 = self._ramp(p0, self._bounded(i, self.target[i]), ts - t0, up, down)
            if due:
                self.target[i], self.at[i], self.zero[i] = self.pending[i], math.inf, False
            p2 = self._ramp(p1, self._bounded(i, self.target[i]), now - ts, up, down)
            e = 0.5 * (p0 + p1) * (ts - t0) + 0.5 * (p1 + p2) * (now - ts)
            eff = q["efficiency"][i]
            soc = self.soc[i] + (e * eff if e > 0 else e / eff) / 3600.0 / q["capacity_wh"][i]
            if (soc >= 1.0 and p2 > 0) or (soc <= 0.0 and p2 < 0):
                p2 = 0.0
            self.soc[i] = min(max(soc, 0.0), 1.0)
            self.p[i] = p2
        self.t = now

    def _bounded(self, i: int, tgt: float) -> float:
        if self.soc[i] >= 1.0:
            tgt = min(tgt, 0.0)
        if self.soc[i] <= 0.0:
            tgt = max(tgt, 0.0)
        return tgt


def _schedule(n: int, steps: int) -> dict[int, np.ndarray]:
    """Every 20 steps (1 s) a tenth of the fleet gets a new setpoint, +-11 kW."""
    rng = np.random.default_rng(1)
    return {k: rng.uniform(-11_000, 11_000, n) for k in range(0, steps, 20)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vehicles", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--loop-steps", type=int, default=200)
    args = ap.parse_args()
    base = load_fleet("config/fleet.mixed.toml")  # the six Table 11 models
    reps = -(-args.vehicles // base.n)
    idx = np.arange(args.vehicles) % base.n
    par = PlantParams(*(getattr(base.params, f)[idx] for f in (
        "t_a_s", "t_c_s", "t_zero_s", "ramp_up_w_s", "ramp_down_w_s", "max_charge_w",
        "max_discharge_w", "capacity_wh", "efficiency")))
    soc = np.tile(base.soc_frac, reps)[: args.vehicles]
    sched = _schedule(args.vehicles, max(args.steps, args.loop_steps))

    def run(plant_cmd, plant_step, steps: int) -> float:  # type: ignore[no-untyped-def]
        t_cmd = 0.0
        start = time.perf_counter()
        for k in range(steps):
            now = k * DT_S
            if k in sched:
                rows = np.arange(k // 20 % 10, args.vehicles, 10)
                c0 = time.perf_counter()
                plant_cmd(rows, sched[k][rows], now)
                t_cmd += time.perf_counter() - c0
            plant_step(now + DT_S)
        return (time.perf_counter() - start - t_cmd) / steps * 1e6

    vec = VehiclePlant(par, soc)
    vec_us = run(vec.command, vec.step, args.steps)
    ref_vec = VehiclePlant(par, soc)
    loop = LoopPlant(par, soc)

    def loop_cmd(rows: np.ndarray, sps: np.ndarray, now: float) -> None:
        for r, sp in zip(rows.tolist(), sps.tolist(), strict=True):
            loop.command(r, sp, now)

    loop_us = run(loop_cmd, loop.step, args.loop_steps)
    run(ref_vec.command, ref_vec.step, args.loop_steps)
    agree = bool(np.allclose(ref_vec.power_w, loop.p, atol=1e-6)
                 and np.allclose(ref_vec.soc_frac, loop.soc, atol=1e-9))
    print(json.dumps({"bench": "plant_step", "vehicles": args.vehicles, "dt_s": DT_S,
                      "vectorised_us_per_step": round(vec_us, 1),
                      "python_loop_us_per_step": round(loop_us, 1),
                      "ratio": round(loop_us / vec_us, 1), "models_agree": agree}))


if __name__ == "__main__":
    main()

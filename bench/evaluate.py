"""Benchmark: `evaluate` (vectorised plant) vs the same closed loop with a per-vehicle Python plant.

One hour of a 20 Hz trace for 1 000 vehicles (the six seed Table 11 models, 10 kW chargers),
DC (L + H) contracted at 5 MW. The trace is synthetic and seeded: GB-like normal operation (an
AR(1) wander, sd ~0.1 Hz) with a DC-L dip to 49.5 Hz and a DC-H rise to 50.6 Hz.

Ours runs the full hour. The baseline (the plant written vehicle by vehicle in Python,
bench/plant_step.py's LoopPlant, driven by the same controller and loop) runs a shorter span
and is EXTRAPOLATED linearly to the hour (labelled in the output); over that span the script
checks that both plants deliver the same fleet power, so the comparison is between equal models.
Prints one JSON line.

    .venv/bin/python bench/evaluate.py [--vehicles 1000] [--hours 1] [--baseline-s 60]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plant_step import LoopPlant

from controller.control.controller import Controller, ControlParams, make_dispatch
from controller.control.services import contracts_from
from controller.tools.closed_loop import ClosedLoop, fleet_state, vary
from controller.tools.evaluate import OCPP_DELAY_S, evaluate
from sim_chargers.fleetfile import FleetSpec, parse_fleet
from sim_chargers.plant import PlantParams, VehiclePlant
from sim_chargers.traces import Trace

RATE_HZ = 20.0
MODELS = ("VW ID3", "Nissan Ariya", "Nissan LEAF e+", "Skoda Enyaq", "Tesla M3", "Renault Zoe")


class LoopPlantAdapter:
    """LoopPlant behind the VehiclePlant interface the closed loop uses."""

    def __init__(self, params: PlantParams, soc: np.ndarray) -> None:
        self.params = params
        self._loop = LoopPlant(params, soc)

    @property
    def power_w(self) -> np.ndarray:
        return np.array(self._loop.p)

    @property
    def soc_frac(self) -> np.ndarray:
        return np.array(self._loop.soc)

    def command(self, rows: np.ndarray, setpoint_w: np.ndarray, now_s: float) -> None:
        for r, sp in zip(rows.tolist(), setpoint_w.tolist(), strict=True):
            self._loop.command(r, sp, now_s)

    def step(self, now_s: float) -> np.ndarray:
        self._loop.step(now_s)
        return np.array(self._loop.p)


def make_fleet(n: int) -> FleetSpec:
    counts = [n // len(MODELS) + (1 if i < n % len(MODELS) else 0) for i in range(len(MODELS))]
    return parse_fleet({"group": [{"model": m, "count": c, "charger_kw": 10, "soc": 0.6}
                                  for m, c in zip(MODELS, counts, strict=True) if c]})


def make_trace(seconds: float, seed: int = 7) -> Trace:
    n = int(seconds * RATE_HZ) + 1
    t = np.arange(n) / RATE_HZ
    rng = np.random.default_rng(seed)
    x = np.empty(n)
    x[0] = 0.0
    a, noise = 0.9995, rng.normal(0.0, 0.003, n)
    for i in range(1, n):  # AR(1): sd 0.003 / sqrt(1 - a^2) ~ 0.095 Hz
        x[i] = a * x[i - 1] + noise[i]
    f = 50.0 + np.clip(x, -0.25, 0.25)
    f[(t >= 0.25 * seconds) & (t < 0.25 * seconds + 30)] = 49.5
    f[(t >= 0.6 * seconds) & (t < 0.6 * seconds + 30)] = 50.6
    return Trace(t, f, name="bench")


def window(trace: Trace, start_s: float, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Ticks (from 0) and frequencies of the trace from start_s for `seconds`."""
    t = np.arange(int(seconds * RATE_HZ) + 1) / RATE_HZ
    return t, trace.f_at_many(t + start_s)


def closed_loop(spec: FleetSpec, plant: object, t: np.ndarray, f: np.ndarray
                ) -> tuple[float, np.ndarray]:
    """Wall time and fleet power of the daemon's controller driving `plant` over (t, f)."""
    ctl = Controller(contracts_from([("DC", 5 * spec.n)]), ControlParams(tick_period_s=t[1]),
                     dispatch=make_dispatch("naive"))
    loop = ClosedLoop(plant, fleet_state(spec), ctl, ocpp_delay_s=OCPP_DELAY_S)  # type: ignore[arg-type]
    start = time.perf_counter()
    power = loop.run(t, f)
    return time.perf_counter() - start, power


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--vehicles", type=int, default=1000)
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--baseline-s", type=float, default=60.0)
    args = ap.parse_args()
    seconds = args.hours * 3600.0
    spec = make_fleet(args.vehicles)
    trace = make_trace(seconds)
    res = evaluate(spec, trace, contracts_from([("DC", 5 * spec.n)]), dispatch="naive")
    # Baseline window: from 10 s before the DC-L dip, so it holds commands, ramps and an event.
    t, f = window(trace, 0.25 * seconds - 10.0, args.baseline_s)
    params = vary(spec.params, 0.2, 0)
    base_s, base_power = closed_loop(spec, LoopPlantAdapter(params, spec.soc_frac), t, f)
    _, vec_power = closed_loop(spec, VehiclePlant(params, spec.soc_frac), t, f)
    agree = bool(np.allclose(base_power, vec_power, atol=1e-3))
    base_per_tick = base_s / t.size
    base_full = base_per_tick * res.steps
    print(json.dumps({
        "bench": "evaluate", "vehicles": spec.n, "trace_s": seconds, "rate_hz": RATE_HZ,
        "service": res.service, "contract_kw": res.contract_kw, "steps": res.steps,
        "ours_wall_s": round(res.wall_time_s, 2),
        "ours_us_per_tick": round(res.wall_time_s / res.steps * 1e6, 1),
        "python_loop_wall_s_extrapolated": round(base_full, 1),
        "python_loop_measured_s": round(base_s, 2), "python_loop_measured_trace_s":
            args.baseline_s,
        "python_loop_us_per_tick": round(base_per_tick * 1e6, 1),
        "ratio": round(base_full / res.wall_time_s, 1), "models_agree": agree,
        "compliance_pct": round(res.compliance_pct, 2),
        "numpy_mul_1000_us": round(calibrate_us(), 2),  # machine speed, for reading the above
    }))


def calibrate_us() -> float:
    """Microseconds for one numpy multiply of 1 000 floats (per-call overhead dominates)."""
    a = np.random.default_rng(0).random(1000)
    start = time.perf_counter()
    for _ in range(20_000):
        a * a
    return (time.perf_counter() - start) / 20_000 * 1e6


if __name__ == "__main__":
    main()

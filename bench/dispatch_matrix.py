"""Naive vs compensated dispatch on the trace library: the README's evaluation table.

    .venv/bin/python bench/dispatch_matrix.py [--fleet config/fleet.mixed.toml] [--kw 150]

Runs `evaluate` (the daemon's Controller against the simulator's plants, seeded variation)
for DC (L + H) on: steps to DC-L and DC-H saturation, the 9 August 2019 event, and one hour of
GB normal operation followed by the 9 August event. Prints a markdown table, one row per run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from controller.control.services import contracts_from
from controller.tools.evaluate import evaluate
from sim_chargers import tracelib
from sim_chargers.fleetfile import load_fleet
from sim_chargers.traces import Trace


def _concat(first: Trace, second: Trace) -> Trace:
    dt = float(np.diff(first.t_s[-2:])[0])
    t = np.concatenate([first.t_s, second.t_s + first.t_s[-1] + dt])
    return Trace(t, np.concatenate([first.f_hz, second.f_hz]), f"{first.name}+{second.name}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fleet", default="config/fleet.mixed.toml")
    p.add_argument("--kw", type=float, default=150.0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    spec = load_fleet(a.fleet)
    contracts = contracts_from([("DC", a.kw)])
    aug = tracelib.generate("gb-2019-08-09", rate_hz=10.0)
    traces = [tracelib.generate("step-dc-l-sat", rate_hz=10.0),
              tracelib.generate("step-dc-h-sat", rate_hz=10.0), aug,
              _concat(tracelib.generate("gb-normal", seconds=3600, seed=1, rate_hz=10.0), aug)]
    print(f"fleet {a.fleet} ({spec.n} vehicles), DC {a.kw:g} kW, seed {a.seed}")
    print("| trace | dispatch | compliance % | max shortfall % Pc | full delivery s (max) "
          "| SoC min-max | losses kWh | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for trace in traces:
        for dispatch in ("naive", "compensated"):
            t0 = time.perf_counter()
            r = evaluate(spec, trace, contracts, dispatch=dispatch, seed=a.seed)
            full = "-" if r.full_delivery_s_max is None else f"{r.full_delivery_s_max:.1f}"
            print(f"| {trace.name} | {dispatch} | {r.compliance_pct:.2f} | "
                  f"{r.max_shortfall_pct:.1f} | {full} | {r.soc_min:.3f}-{r.soc_max:.3f} | "
                  f"{r.losses_kwh:.2f} | {time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()

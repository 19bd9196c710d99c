"""Naive vs compensated dispatch on the trace library: the README's evaluation tables.

    .venv/bin/python bench/dispatch_matrix.py [--fleet config/fleet.mixed.toml] [--kw 150]
    .venv/bin/python bench/dispatch_matrix.py --uniform [--count 60] [--kw 150]

Runs `evaluate` (the daemon's Controller against the simulator's plants, seeded variation)
for DC (L + H) on: steps to DC-L and DC-H saturation, the 9 August 2019 event, and one hour of
GB normal operation followed by the 9 August event. Each trace is preceded by WARMUP_S of 50 Hz
that is run but not scored (`evaluate(warmup_s=...)`): the daemon runs continuously, so the
compensated dispatch's standing baseline is in place before any event, and both dispatches
are scored on the library trace alone. Prints a markdown table, one row per run.
`--uniform` runs one fleet per Table 11 model (`--count` vehicles, 11 kW chargers, SoC 0.5,
issue 4 item 5), then the mixed fleet, and prints one row per fleet and trace with both
dispatches side by side.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from controller.control.services import ContractedService, contracts_from
from controller.control.vehicles import TABLE_11
from controller.tools.evaluate import EvalResult, evaluate
from sim_chargers import tracelib
from sim_chargers.fleetfile import FleetSpec, load_fleet, parse_fleet
from sim_chargers.traces import Trace

CHARGER_KW = 11.0  # issue 4 item 5: 11 kW chargers, SoC 0.5
SOC = 0.5
# the largest sized offset (0.75 x 11 kW) at 400 W/s, after the slowest start (3.8 s + 20 %)
WARMUP_S = 30.0


def _concat(first: Trace, second: Trace) -> Trace:
    dt = float(np.diff(first.t_s[-2:])[0])
    t = np.concatenate([first.t_s, second.t_s + first.t_s[-1] + dt])
    return Trace(t, np.concatenate([first.f_hz, second.f_hz]), f"{first.name}+{second.name}")


def traces(*, long: bool = True) -> list[Trace]:
    """The library traces, each behind WARMUP_S of 50 Hz (named as in the library)."""
    aug = tracelib.generate("gb-2019-08-09", rate_hz=10.0)
    out = [tracelib.generate("step-dc-l-sat", rate_hz=10.0),
           tracelib.generate("step-dc-h-sat", rate_hz=10.0), aug]
    if long:
        out.append(_concat(tracelib.generate("gb-normal", seconds=3600, seed=1, rate_hz=10.0),
                           aug))
    return [_behind_lead(tr) for tr in out]


def _behind_lead(trace: Trace) -> Trace:
    """WARMUP_S of 50 Hz, then `trace` (its first sample at exactly WARMUP_S)."""
    dt = float(trace.t_s[1] - trace.t_s[0])
    t_lead = np.arange(0.0, WARMUP_S - dt / 2, dt)
    return Trace(np.concatenate([t_lead, trace.t_s + WARMUP_S]),
                 np.concatenate([np.full(t_lead.size, 50.0), trace.f_hz]), trace.name)


def uniform_fleet(model_name: str, count: int) -> FleetSpec:
    return parse_fleet({"group": [{"model": model_name, "count": count,
                                   "charger_kw": CHARGER_KW, "soc": SOC}]})


def _full(r: EvalResult) -> str:
    return "-" if r.full_delivery_s_max is None else f"{r.full_delivery_s_max:.1f}"


def _per_run(spec: FleetSpec, contracts: list[ContractedService], seed: int) -> None:
    print("| trace | dispatch | compliance % | max shortfall % Pc | full delivery s (max) "
          "| SoC min-max | losses kWh | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for trace in traces():
        for dispatch in ("naive", "compensated"):
            t0 = time.perf_counter()
            r = evaluate(spec, trace, contracts, dispatch=dispatch, seed=seed,
                         warmup_s=WARMUP_S)
            print(f"| {trace.name} | {dispatch} | {r.compliance_pct:.2f} | "
                  f"{r.max_shortfall_pct:.1f} | {_full(r)} | {r.soc_min:.3f}-{r.soc_max:.3f} | "
                  f"{r.losses_kwh:.2f} | {time.perf_counter() - t0:.0f} |", flush=True)


def _side_by_side(fleets: list[tuple[str, FleetSpec]], contracts: list[ContractedService],
                  seed: int, *, long: bool) -> None:
    print("| fleet | trace | naive % | compensated % | full delivery s naive / comp "
          "| comp SoC min-max | losses kWh naive / comp |")
    print("|---|---|---|---|---|---|---|")
    for label, spec in fleets:
        for trace in traces(long=long):
            n, c = (evaluate(spec, trace, contracts, dispatch=d, seed=seed, warmup_s=WARMUP_S)
                    for d in ("naive", "compensated"))
            print(f"| {label} | {trace.name} | {n.compliance_pct:.2f} | {c.compliance_pct:.2f} "
                  f"| {_full(n)} / {_full(c)} | {c.soc_min:.3f}-{c.soc_max:.3f} "
                  f"| {n.losses_kwh:.2f} / {c.losses_kwh:.2f} |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fleet", default="config/fleet.mixed.toml")
    p.add_argument("--uniform", action="store_true",
                   help="one uniform fleet per Table 11 model, then --fleet, side by side")
    p.add_argument("--count", type=int, default=60, help="--uniform: vehicles per fleet")
    p.add_argument("--short", action="store_true", help="--uniform: skip the 1 h trace")
    p.add_argument("--kw", type=float, default=150.0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    spec = load_fleet(a.fleet)
    contracts = contracts_from([("DC", a.kw)])
    if not a.uniform:
        print(f"fleet {a.fleet} ({spec.n} vehicles), DC {a.kw:g} kW, seed {a.seed}")
        _per_run(spec, contracts, a.seed)
        return
    print(f"uniform fleets of {a.count} x {CHARGER_KW:g} kW, SoC {SOC:g}, and {a.fleet} "
          f"({spec.n} vehicles); DC {a.kw:g} kW, seed {a.seed}")
    fleets = [(f"{a.count} x {m.name}", uniform_fleet(m.name, a.count)) for m in TABLE_11]
    _side_by_side([*fleets, (f"mixed {spec.n}", spec)], contracts, a.seed, long=not a.short)


if __name__ == "__main__":
    main()

"""`v2ghub eligibility`: which vehicle models can serve which GB frequency market (seed Table 12).

Pure assessment functions (`assess`, `assess_all`, `format_table`) and a thin CLI
(`add_subparser`, `run`, `main`). Only `run`/`main` read files or print. The simulated mode is
eligibility_sim.py (`assess_simulated`), which the CLI imports only when asked for it; it reaches
the fast-time simulator through an injected `evaluate` function (default
`controller.tools.evaluate.evaluate`).

Modes (SPEC §2.3):
- paper: the seed's own rule, reproducing Table 12 exactly. Per-EV power P = min(charger,
  ramp_up x T_full) - the start delay t_a is NOT counted inside the full-delivery window.
- strict: the delay is dead time inside the window: P = min(headroom, ramp_up x max(0, T_full -
  dead)), dead = t_a from idle, or t_c for a vehicle kept in an active session at a small export
  baseline (headroom = charger - baseline).
- simulated: minimum EVs per MW whose closed-loop compliance on a step-to-saturation trace reaches
  a target (default 95 %), found by bisection with `evaluate` in the loop.

Reasons (SPEC §3.2), checked in this order for every mode:
- LTR: dead time (t_a; strict active: t_c) > the service's response time.
- MTFL: P < `Limits.min_ev_power_kw` (1 kW). Derived from Table 12: it is the seed's only MTFL
  mark (Tesla DC/DM, 0.73 kW/s x 1 s = 0.73 kW) and any floor in (0.73, 5.75] kW reproduces it
  while the partial-power cells (Ariya 6.59 kW, Tesla DR 7.3 kW, starred in the seed) stay Yes;
  SPEC §2.3 states the 1 kW figure. Simulated mode: the target was not reached with `max_evs`.
- duration: energy in the usable SoC window, (soc - soc_min) x capacity, is less than
  (P + baseline) x delivery length.
- volume: with --fleet, the group's vehicles x P fall short of the 1 MW minimum volume.
The assessment is for export (Low products), as the seed's is: fully charged vehicles discharging.

Errors: bad fleet files raise sim_chargers.fleetfile.FleetFileError (CLI: exit 2, one line).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from controller.control.energy import EnergyParams
from controller.control.services import DEFAULT_DEFINITIONS, ServiceDefinition
from controller.control.vehicles import TABLE_11, VehicleModel
from controller.tools import parse_standalone
from sim_chargers.fleetfile import FleetFileError, FleetSpec, load_fleet

if TYPE_CHECKING:
    from controller.tools.eligibility_sim import EvaluateFn

Mode = Literal["paper", "strict", "simulated"]
Session = Literal["idle", "active"]
REASONS = ("LTR", "MTFL", "duration", "volume")  # SPEC §3.2, in reporting order
EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class ServiceTiming:
    """One market's requirements. `product` is the Low product contracted in simulated mode."""

    name: str
    product: str
    start_s: float  # response time: LTR (seed Table 10 "length of time to response")
    full_s: float  # maximum time to full delivery: MTFL (seed Table 10 note)
    sustain_s: float  # delivery length (seed Table 10)
    volume_kw: float = 1000.0  # minimum volume, 1 MW for all four (seed Table 10)


# Fallback when services.DEFAULT_DEFINITIONS lacks a product or a figure (SFFR start time is "—"
# in SPEC §2.1): seed Table 10 response times and delivery lengths, full-delivery times from the
# note under Table 10 (DC/DM 1 s, DR 10 s) and, for SFFR, its 30 s response time.
FALLBACK_TIMINGS: tuple[ServiceTiming, ...] = (
    ServiceTiming("SFFR", "SFFR", start_s=30.0, full_s=30.0, sustain_s=30 * 60.0),
    ServiceTiming("DC", "DC-L", start_s=0.5, full_s=1.0, sustain_s=15 * 60.0),
    ServiceTiming("DM", "DM-L", start_s=0.5, full_s=1.0, sustain_s=30 * 60.0),
    ServiceTiming("DR", "DR-L", start_s=2.0, full_s=10.0, sustain_s=60 * 60.0),
)


def service_timings(definitions: Mapping[str, ServiceDefinition] = DEFAULT_DEFINITIONS,
                    ) -> tuple[ServiceTiming, ...]:
    """SFFR, DC, DM, DR timings: from `definitions` where defined, else FALLBACK_TIMINGS."""
    out = []
    for fb in FALLBACK_TIMINGS:
        d = definitions.get(fb.product)
        out.append(fb if d is None else dataclasses.replace(
            fb, start_s=fb.start_s if d.start_s is None else d.start_s, full_s=d.full_s,
            sustain_s=d.sustain_s))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Limits:
    """Assessment parameters, each with its source."""

    min_ev_power_kw: float = 1.0  # MTFL floor, derived from seed Table 12 (module docstring)
    soc_min_frac: float = 0.0  # seed: battery sizes are usable capacity, fully usable
    # strict/active: export baseline that keeps the session flowing: the IEC 61851-1 minimum
    # charging current, 6 A x 230 V single phase.
    active_baseline_kw: float = 1.38


@dataclass(frozen=True, slots=True)
class FleetGroup:
    """A uniform group: `count` None = a hypothetical fleet of whatever size is needed."""

    label: str
    model: VehicleModel
    charger_kw: float = 10.0  # seed Table 12: 10 kW bidirectional chargers
    soc_frac: float = 1.0  # seed Table 12: fully charged
    count: int | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """One cell: SPEC §3.2 JSON object."""

    vehicle: str
    service: str
    eligible: bool
    evs_needed: int | None
    reasons: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"vehicle": self.vehicle, "service": self.service, "eligible": self.eligible,
                "evs_needed": self.evs_needed, "reasons": list(self.reasons)}

    def cell(self) -> str:
        if self.eligible:
            return f"Yes ({self.evs_needed})"
        return f"No ({', '.join(self.reasons)})" if self.reasons else "No"


def default_groups(soc_frac: float = 1.0) -> list[FleetGroup]:
    """The six Table 11 vehicles, each as a uniform fleet (SPEC §2.3); seed: fully charged."""
    return [FleetGroup(m.name, m, soc_frac=soc_frac) for m in TABLE_11]


def groups_from_spec(spec: FleetSpec) -> list[FleetGroup]:
    """Regroup an expanded fleet by (model with overrides, charger, SoC), in file order."""
    keys: dict[tuple[VehicleModel, float, float], int] = {}
    for model, charger_w, soc in zip(spec.models, spec.charger_w, spec.soc_frac, strict=True):
        key = (model, float(charger_w) / 1000.0, float(soc))
        keys[key] = keys.get(key, 0) + 1
    names = [k[0].name for k in keys]
    return [FleetGroup(m.name if names.count(m.name) == 1 else f"{m.name} [group {i}]", m, kw,
                       soc, n) for i, ((m, kw, soc), n) in enumerate(keys.items())]


def evs_for(volume_kw: float, per_ev_kw: float) -> int:
    """ceil(volume / per-EV power), immune to float dust (1000 / 10.000000001 -> 100)."""
    return math.ceil(volume_kw / per_ev_kw - 1e-9)


def per_ev_power_kw(group: FleetGroup, timing: ServiceTiming, mode: Mode,
                    session: Session = "idle", limits: Limits = Limits()) -> float:
    """Power one vehicle delivers by the full-delivery time (paper or strict rule)."""
    m = group.model
    if mode == "paper":
        return min(group.charger_kw, m.ramp_up_kw_s * timing.full_s)
    dead = m.t_c_s if session == "active" else m.t_a_s
    headroom = group.charger_kw - (limits.active_baseline_kw if session == "active" else 0.0)
    return max(0.0, min(headroom, m.ramp_up_kw_s * max(0.0, timing.full_s - dead)))


def decide_verdict(group: FleetGroup, timing: ServiceTiming, p_kw: float, technical: list[str], *,
             baseline_kw: float, limits: Limits) -> Verdict:
    """Add the duration and volume checks to the technical reasons and decide."""
    reasons = list(technical)
    n = evs_for(timing.volume_kw, p_kw) if p_kw > 0 else None
    usable_kwh = max(0.0, group.soc_frac - limits.soc_min_frac) * group.model.battery_kwh
    if (p_kw + baseline_kw) * timing.sustain_s / 3600.0 > usable_kwh:
        reasons.append("duration")
    if group.count is not None and n is not None and group.count < n:
        reasons.append("volume")
    ok = not reasons
    return Verdict(group.label, timing.name, ok, n if ok else None, tuple(reasons))


def assess(group: FleetGroup, timing: ServiceTiming, mode: Mode = "paper",
           session: Session = "idle", limits: Limits = Limits()) -> Verdict:
    """Paper or strict verdict for one group and one service (module docstring)."""
    if mode == "simulated":
        raise ValueError("assess: simulated mode needs an evaluator, use assess_simulated")
    m = group.model
    dead = m.t_c_s if mode == "strict" and session == "active" else m.t_a_s
    p_kw = per_ev_power_kw(group, timing, mode, session, limits)
    technical = [r for r, bad in (("LTR", dead > timing.start_s),
                                  ("MTFL", p_kw < limits.min_ev_power_kw)) if bad]
    baseline = limits.active_baseline_kw if mode == "strict" and session == "active" else 0.0
    return decide_verdict(group, timing, p_kw, technical, baseline_kw=baseline, limits=limits)


def fleet_verdict(groups: Sequence[FleetGroup], cells: Sequence[Verdict],
                  per_ev_kw: Sequence[float], timing: ServiceTiming) -> Verdict:
    """All groups together for one service: the fewest technically eligible EVs (no reason but
    volume) that reach the volume, strongest vehicles first."""
    offers: list[tuple[float, int]] = []  # (per-EV kW, vehicles)
    reasons: set[str] = {"volume"}
    for g, v, p_kw in zip(groups, cells, per_ev_kw, strict=True):
        if set(v.reasons) <= {"volume"} and g.count and p_kw > 0:
            offers.append((p_kw, g.count))
        reasons |= set(v.reasons)
    need, used = timing.volume_kw, 0
    for p_kw, count in sorted(offers, reverse=True):
        take = min(count, evs_for(need, p_kw))
        used, need = used + take, need - take * p_kw
        if need <= 1e-9:
            return Verdict("fleet (all groups)", timing.name, True, used, ())
    return Verdict("fleet (all groups)", timing.name, False, None,
                   tuple(r for r in REASONS if r in reasons))


def with_fleet_row(groups: Sequence[FleetGroup], cells: list[Verdict],
                    per_ev_kw: Sequence[float], timing: ServiceTiming) -> list[Verdict]:
    if len(groups) > 1 and all(g.count is not None for g in groups):
        return [*cells, fleet_verdict(groups, cells, per_ev_kw, timing)]
    return cells


def assess_all(groups: Sequence[FleetGroup], timings: Iterable[ServiceTiming],
               mode: Mode = "paper", session: Session = "idle",
               limits: Limits = Limits()) -> list[Verdict]:
    """Every group x service (paper or strict), plus a whole-fleet row per service when the
    groups come from a fleet file (have counts) and there is more than one."""
    out: list[Verdict] = []
    for t in timings:
        cells = [assess(g, t, mode, session, limits) for g in groups]
        powers = [per_ev_power_kw(g, t, mode, session, limits) for g in groups]
        out += with_fleet_row(groups, cells, powers, t)
    return out


# -- presentation and CLI ------------------------------------------------------------------------
def format_table(verdicts: Sequence[Verdict], title: str) -> str:
    """Rows vehicles, columns services, cells "Yes (152)" / "No (LTR, MTFL)"."""
    vehicles = list(dict.fromkeys(v.vehicle for v in verdicts))
    services = list(dict.fromkeys(v.service for v in verdicts))
    cell = {(v.vehicle, v.service): v.cell() for v in verdicts}
    rows = [["vehicle", *services]] + [
        [name, *(cell.get((name, s), "-") for s in services)] for name in vehicles]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [title] + ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                       for r in rows]
    return "\n".join(lines)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fleet", metavar="FLEET.toml", default=None,
                   help="assess this fleet's groups (default: the six Table 11 vehicles as "
                        "uniform fleets, 10 kW chargers, fully charged)")
    p.add_argument("--mode", choices=["paper", "strict", "simulated"], default="paper",
                   help="paper: seed Table 12 rule; strict: start delay inside the "
                        "full-delivery window; simulated: closed loop (default: paper)")
    p.add_argument("--json", action="store_true", help="print the SPEC §3.2 JSON list")
    p.add_argument("--session", choices=["idle", "active"], default=None,
                   help="strict: vehicles start from idle (t_a) or are kept in an active "
                        "session at a baseline (t_c); default: both tables, JSON idle")
    p.add_argument("--soc", type=float, default=1.0, metavar="FRAC",
                   help="initial SoC of the six uniform fleets (default 1, fully charged as in "
                        "the seed; a --fleet file sets its own). The compensated dispatch needs "
                        "vehicles inside its SoC window (20-80 %%) to keep the standing baseline")
    p.add_argument("--soc-min", type=float, default=0.0, metavar="FRAC",
                   help="lowest usable SoC for the duration check (default 0)")
    p.add_argument("--target", type=float, default=95.0, metavar="PCT",
                   help="simulated: compliance target in %% (default 95)")
    p.add_argument("--dispatch", choices=["naive", "compensated"], default="compensated",
                   help="simulated: dispatch used by evaluate (default: compensated)")
    p.add_argument("--seed", type=int, default=0, help="simulated: seed (default 0)")
    p.add_argument("--max-evs", type=int, default=2000, metavar="N",
                   help="simulated: give up above N EVs per MW (default 2000)")


def add_subparser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `eligibility` on the main parser's subparsers (func(args) -> exit code)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "eligibility", help="which vehicles can serve which market (seed Table 12)",
        description="Assess SFFR, DC, DM and DR eligibility per vehicle model (SPEC §2.3).")
    _add_arguments(p)
    p.set_defaults(func=run)
    return p


def _fail(msg: str, code: int) -> int:
    print(f"v2ghub eligibility: {msg}", file=sys.stderr)
    return code


def _usage_problem(args: argparse.Namespace) -> str | None:
    """The first option out of range, as a one-line message; None when all are usable."""
    if not 0.0 <= args.soc_min < 1.0:
        return f"--soc-min must be within [0, 1), got {args.soc_min}"
    if not 0.0 < args.soc <= 1.0:
        return f"--soc must be within (0, 1], got {args.soc}"
    if not 0.0 < args.target <= 100.0:
        return f"--target must be within (0, 100], got {args.target}"
    if args.max_evs < 1:
        return f"--max-evs must be >= 1, got {args.max_evs}"
    return None


def _simulated_table(args: argparse.Namespace, groups: list[FleetGroup],
                     timings: Sequence[ServiceTiming], limits: Limits, where: str, *,
                     evaluate_fn: EvaluateFn | None) -> tuple[str, list[Verdict]] | None:
    """The simulated-mode table; None (after one line on stderr) when there is no evaluator."""
    # imported here: eligibility_sim builds on this module (and the simulated mode is optional);
    # its names are looked up on it, where they are defined
    from controller.tools import eligibility_sim  # noqa: PLC0415

    if evaluate_fn is None:
        try:
            evaluate_fn = eligibility_sim.load_evaluate()
        except ImportError as exc:
            _fail(f"simulated mode needs controller.tools.evaluate ({exc})", EXIT_RUNTIME)
            return None
    sim = eligibility_sim.SimSettings(target_pct=args.target, dispatch=args.dispatch,
                                      seed=args.seed, max_evs=args.max_evs)
    if args.dispatch == "compensated" and any(g.soc_frac > EnergyParams().soc_max_frac
                                              for g in groups):
        print("v2ghub eligibility: note: fleets above the 80 % SoC ceiling may not charge, so "
              "the compensated dispatch cannot keep its standing baseline (try --soc 0.5)",
              file=sys.stderr)
    verdicts, skipped = eligibility_sim.assess_simulated(groups, timings, evaluate_fn, sim=sim,
                                                         limits=limits)
    for name in skipped:
        print(f"v2ghub eligibility: {name}: no service definition, skipped", file=sys.stderr)
    return (f"simulated ({args.dispatch}, >= {args.target:g} % compliance, "
            f"EVs per MW), {where}", verdicts)


def _strict_tables(args: argparse.Namespace, groups: list[FleetGroup],
                   timings: Sequence[ServiceTiming], limits: Limits,
                   where: str) -> list[tuple[str, list[Verdict]]]:
    """One table per session asked for (both by default; JSON: the first only)."""
    sessions: list[Session] = [args.session] if args.session else ["idle", "active"]
    if args.json:
        sessions = sessions[:1]
    labels = {"idle": "from idle (t_a)",
              "active": f"kept in an active session at {limits.active_baseline_kw:g} kW "
                        "export (t_c)"}
    return [(f"strict, {labels[s]}, {where}", assess_all(groups, timings, "strict", s, limits))
            for s in sessions]


def run(args: argparse.Namespace, evaluate_fn: EvaluateFn | None = None) -> int:
    """Execute parsed arguments; print a table or JSON. Returns the exit code."""
    problem = _usage_problem(args)
    if problem is not None:
        return _fail(problem, EXIT_USAGE)
    try:
        groups = (groups_from_spec(load_fleet(args.fleet)) if args.fleet
                  else default_groups(args.soc))
    except FleetFileError as exc:
        return _fail(str(exc), EXIT_USAGE)
    limits, timings = Limits(soc_min_frac=args.soc_min), service_timings()
    where = (f"fleet {args.fleet}" if args.fleet else
             "uniform fleets, 10 kW chargers, " + ("full" if args.soc == 1.0
                                                   else f"SoC {args.soc:g}"))
    tables: list[tuple[str, list[Verdict]]] = []
    if args.mode == "simulated":
        table = _simulated_table(args, groups, timings, limits, where,
                                 evaluate_fn=evaluate_fn)
        if table is None:
            return EXIT_RUNTIME
        tables.append(table)
    elif args.mode == "strict":
        tables += _strict_tables(args, groups, timings, limits, where)
    else:
        tables.append((f"paper (seed Table 12 rule), {where}",
                       assess_all(groups, timings, "paper", limits=limits)))
    if args.json:
        print(json.dumps([v.as_json() for _, vs in tables for v in vs], indent=2))
    else:
        print("\n\n".join(format_table(vs, title) for title, vs in tables))
    return EXIT_OK


def main(argv: Sequence[str] | None = None, evaluate_fn: EvaluateFn | None = None) -> int:
    """Stand-alone entry: `python -m controller.tools.eligibility ...`."""
    args = parse_standalone("v2ghub eligibility", __doc__, _add_arguments, argv)
    return args if isinstance(args, int) else run(args, evaluate_fn)


if __name__ == "__main__":
    sys.exit(main())

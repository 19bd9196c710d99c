"""`v2ghub eligibility`: which vehicle models can serve which GB frequency market (seed Table 12).

Pure assessment functions (`assess`, `assess_simulated`, `format_table`) and a thin CLI
(`add_subparser`, `main`). Only `run`/`main` read files or print; the simulated mode reaches the
fast-time simulator through an injected `evaluate` function (default
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
import importlib
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

import numpy as np

from controller.control.dispatch_comp import CompParams
from controller.control.energy import EnergyParams
from controller.control.services import (
    DEFAULT_DEFINITIONS,
    ContractedService,
    ServiceDefinition,
    contracts_from,
)
from controller.control.vehicles import TABLE_11, VehicleModel
from controller.tools import parse_standalone
from sim_chargers.fleetfile import FleetFileError, FleetSpec, load_fleet, parse_fleet
from sim_chargers.traces import MAX_RATE_HZ, Trace

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


def _verdict(group: FleetGroup, timing: ServiceTiming, p_kw: float, technical: list[str], *,
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
    return _verdict(group, timing, p_kw, technical, baseline_kw=baseline, limits=limits)


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


def _with_fleet_row(groups: Sequence[FleetGroup], cells: list[Verdict],
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
        out += _with_fleet_row(groups, cells, powers, t)
    return out


# -- simulated mode ------------------------------------------------------------------------------
_NOT_REPORTED = object()


class EvaluateResult(Protocol):
    @property
    def compliance_pct(self) -> float: ...


class EvaluateFn(Protocol):
    """`controller.tools.evaluate.evaluate`'s documented signature."""

    def __call__(self, spec: FleetSpec, trace: Trace, contracts: list[ContractedService], *,
                 dispatch: str, seed: int, warmup_s: float) -> EvaluateResult: ...


@dataclass(frozen=True, slots=True)
class SimSettings:
    """Simulated-mode parameters."""

    target_pct: float = 95.0  # compliance target (issue 3)
    dispatch: str = "compensated"  # the control core's best (SPEC §3.1)
    seed: int = 0  # evaluate's per-vehicle variation (it varies the nominal fleet itself)
    max_evs: int = 2000  # per MW: 0.5 kW a vehicle; beyond that the answer is "no"
    rate_hz: float = 10.0  # slowest trace sample rate (evaluate ticks at the trace's rate)
    # ... raised to resolve the response time in this many samples, up to SPEC §3.2's 50 Hz
    # (DC/DM: 0.5 s -> 50 Hz; DR 2 s -> 12.5 Hz): the start is judged at sample resolution.
    samples_per_start: float = 25.0
    # Nominal frequency before the step, at least this long and longer than the slowest start
    # (see `pre_step_s`): the controller's first 0 W command arms an idle vehicle's start-up
    # timer, and a step arriving before it expires inherits it (plant: earlier effective time
    # kept), which would hide most of t_a.
    pre_s_min: float = 5.0  # Table 11's slowest t_a 3.8 s x 1.2 (evaluate's variation) + 0.1 s
    # The compensated dispatch builds its standing offsets (dispatch_comp, READINESS) after the
    # vehicles have started: wake + start-up, then up to ready_max_frac of the charger at
    # offset_ramp_w_s (7.5 kW at 400 W/s = 18.75 s on 10 kW). A step before that would measure
    # the build-up, not the dispatch; this much settling time is added on top of the start-up
    # (measured: the offsets are within 1 % of their size 3 s after the ramp ends).
    ready_settle_s: float = 5.0
    # Scored trace (after `warmup_s`) = this x T_full (at least pre + 5 s): 5 % of it is then
    # half of T_full, so a 95 % target means "late by at most about half the full-delivery time".
    trace_full_times: float = 10.0


def pre_step_s(groups: Sequence[FleetGroup], sim: SimSettings = SimSettings()) -> float:
    """Time at 50 Hz before the step: longer than any group's start-up (+20 % variation) and,
    for the compensated dispatch, than building its standing offsets as well (`warmup_s`)."""
    slowest = max((max(g.model.t_a_s, g.model.t_zero_cross_s) for g in groups), default=0.0)
    return max(sim.pre_s_min, 1.2 * slowest + 1.0) + warmup_s(groups, sim)


def warmup_s(groups: Sequence[FleetGroup], sim: SimSettings = SimSettings()) -> float:
    """Unscored time at the start of a simulated run: the compensated dispatch's offset build.

    Both dispatches are then scored over windows of the same length (start-up lead + step), so
    neither gains from nominal-frequency time the other does not get.
    """
    if sim.dispatch != "compensated":
        return 0.0
    comp = CompParams()
    largest_w = comp.ready_max_frac * 1000.0 * max((g.charger_kw for g in groups), default=0.0)
    return max(comp.ready_w, largest_w) / comp.offset_ramp_w_s + sim.ready_settle_s


def step_trace(defn: ServiceDefinition, timing: ServiceTiming, pre_s: float,
               sim: SimSettings = SimSettings(), unscored_s: float = 0.0) -> Trace:
    """50 Hz for `pre_s`, then a step to where the Low product asks 100 % of Pc, held;
    `sim.trace_full_times` x T_full long after the first `unscored_s` (`warmup_s`)."""
    if defn.trigger_hz is not None:
        f_step = defn.trigger_hz - 0.1  # static trigger (SFFR): clearly past it
    else:
        f_step = 50.0 - defn.curve.points[-1][0]  # curve saturation point
    total_s = max(pre_s + 5.0, unscored_s + sim.trace_full_times * timing.full_s)
    rate_hz = min(MAX_RATE_HZ, max(sim.rate_hz, sim.samples_per_start / timing.start_s))
    t_s = np.arange(0.0, total_s + 0.5 / rate_hz, 1.0 / rate_hz)
    return Trace(t_s, np.where(t_s < pre_s, 50.0, f_step), name=f"step-{defn.name}")


def min_evs_by_bisection(passes: Callable[[int], bool], first_guess: int,
                         max_n: int) -> int | None:
    """Smallest n in 1..max_n with passes(n), assuming passes is monotone; None if none does.

    Doubles from `first_guess` until a pass, then bisects; 0 vehicles is taken to fail.
    """
    lo, hi = 0, max(1, min(first_guess, max_n))
    while not passes(hi):
        if hi >= max_n:
            return None
        lo, hi = hi, min(2 * hi, max_n)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if passes(mid) else (mid, hi)
    return hi


def fleet_spec_for(group: FleetGroup, n: int) -> FleetSpec:
    """n vehicles like `group` (its model with any overrides), through the fleet-file checks."""
    m = group.model
    row: dict[str, Any] = {
        "model": m.name, "count": n, "charger_kw": group.charger_kw, "soc": group.soc_frac,
        "capacity_kwh": m.battery_kwh, "t_a_s": m.t_a_s, "t_b_s": m.t_b_s, "t_c_s": m.t_c_s,
        "t_d_s": m.t_d_s, "ramp_up_kw_s": m.ramp_up_kw_s, "ramp_down_kw_s": m.ramp_down_kw_s,
        "t_zero_cross_s": m.t_zero_cross_s}
    return parse_fleet({"group": [row]})  # nominal: evaluate applies the seeded variation


@dataclass(frozen=True, slots=True)
class _Run:
    compliance_pct: float
    start_delay_s: float | None  # None: the evaluator does not report one (no LTR check)


def _simulated_cell(group: FleetGroup, timing: ServiceTiming, run: Callable[[FleetSpec], _Run],
                    sim: SimSettings, limits: Limits) -> tuple[Verdict, float]:
    """Bisect the fewest EVs of `group` that reach the compliance target and start in time."""
    seen: dict[int, _Run] = {}

    def late(r: _Run) -> bool:
        return r.start_delay_s is not None and r.start_delay_s > timing.start_s

    def passes(n: int) -> bool:
        if n * group.charger_kw < timing.volume_kw:
            return False  # cannot carry the contracted volume at all, whatever the tolerance
        seen[n] = r = run(fleet_spec_for(group, n))
        return r.compliance_pct >= sim.target_pct and not late(r)

    guess = assess(group, timing, "strict", "idle", limits)
    first = guess.evs_needed or evs_for(timing.volume_kw, group.charger_kw)
    n = min_evs_by_bisection(passes, first, sim.max_evs)
    if n is None:
        worst = seen[max(seen)]
        reasons = [r for r, bad in (("LTR", late(worst)),
                                    ("MTFL", worst.compliance_pct < sim.target_pct)) if bad]
        return Verdict(group.label, timing.name, False, None, tuple(reasons)), 0.0
    p_kw = timing.volume_kw / n
    return _verdict(group, timing, p_kw, [], baseline_kw=0.0, limits=limits), p_kw


def assess_simulated(groups: Sequence[FleetGroup], timings: Iterable[ServiceTiming],
                     evaluate_fn: EvaluateFn, *, sim: SimSettings = SimSettings(),
                     limits: Limits = Limits(),
                     definitions: Mapping[str, ServiceDefinition] = DEFAULT_DEFINITIONS,
                     ) -> tuple[list[Verdict], list[str]]:
    """Minimum EVs per `volume` reaching `sim.target_pct` compliance, per group and service.

    Each service's Low product is contracted at its volume and `evaluate_fn` runs on
    `step_trace`. A count passes when compliance reaches the target and, if the result reports
    `start_delay_s_max` (SPEC §3.5), the fleet started within the response time: the compliance
    tube alone never tests the start (DR's 10 s window hides a 3.6 s start). Failing with
    `sim.max_evs` vehicles gives LTR (started late) and/or MTFL (target not reached).

    Returns:
        (verdicts, names of services skipped because `definitions` lacks their product).
    """
    out: list[Verdict] = []
    skipped: list[str] = []
    for t in timings:
        if t.product not in definitions:
            skipped.append(t.name)
            continue
        unscored_s = warmup_s(groups, sim)
        trace = step_trace(definitions[t.product], t, pre_step_s(groups, sim), sim, unscored_s)
        contracts = contracts_from([(t.product, t.volume_kw)], overrides=definitions)

        def run(spec: FleetSpec, trace: Trace = trace,
                contracts: list[ContractedService] = contracts,
                unscored_s: float = unscored_s) -> _Run:
            res = evaluate_fn(spec, trace, contracts, dispatch=sim.dispatch, seed=sim.seed,
                              warmup_s=unscored_s)
            start = getattr(res, "start_delay_s_max", _NOT_REPORTED)
            delay = (None if start is _NOT_REPORTED else math.inf if start is None
                     else float(cast(float, start)))
            return _Run(float(res.compliance_pct), delay)

        pairs = [_simulated_cell(g, t, run, sim, limits) for g in groups]
        out += _with_fleet_row(groups, [v for v, _ in pairs], [p for _, p in pairs], t)
    return out, skipped


def load_evaluate() -> EvaluateFn:
    """The real evaluator (another module of issue 3).

    Raises:
        ImportError: controller.tools.evaluate is not there (yet).
    """
    module = importlib.import_module("controller.tools.evaluate")
    return cast(EvaluateFn, module.evaluate)


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


def run(args: argparse.Namespace, evaluate_fn: EvaluateFn | None = None) -> int:
    """Execute parsed arguments; print a table or JSON. Returns the exit code."""
    if not 0.0 <= args.soc_min < 1.0:
        return _fail(f"--soc-min must be within [0, 1), got {args.soc_min}", EXIT_USAGE)
    if not 0.0 < args.soc <= 1.0:
        return _fail(f"--soc must be within (0, 1], got {args.soc}", EXIT_USAGE)
    if not 0.0 < args.target <= 100.0:
        return _fail(f"--target must be within (0, 100], got {args.target}", EXIT_USAGE)
    if args.max_evs < 1:
        return _fail(f"--max-evs must be >= 1, got {args.max_evs}", EXIT_USAGE)
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
        if evaluate_fn is None:
            try:
                evaluate_fn = load_evaluate()
            except ImportError as exc:
                return _fail(f"simulated mode needs controller.tools.evaluate ({exc})",
                             EXIT_RUNTIME)
        sim = SimSettings(target_pct=args.target, dispatch=args.dispatch, seed=args.seed,
                          max_evs=args.max_evs)
        if args.dispatch == "compensated" and any(g.soc_frac > EnergyParams().soc_max_frac
                                                  for g in groups):
            print("v2ghub eligibility: note: fleets above the 80 % SoC ceiling may not charge, so "
                  "the compensated dispatch cannot keep its standing baseline (try --soc 0.5)",
                  file=sys.stderr)
        verdicts, skipped = assess_simulated(groups, timings, evaluate_fn, sim=sim,
                                             limits=limits)
        for name in skipped:
            print(f"v2ghub eligibility: {name}: no service definition, skipped", file=sys.stderr)
        tables.append((f"simulated ({args.dispatch}, >= {args.target:g} % compliance, "
                       f"EVs per MW), {where}", verdicts))
    elif args.mode == "strict":
        sessions: list[Session] = [args.session] if args.session else ["idle", "active"]
        if args.json:
            sessions = sessions[:1]
        labels = {"idle": "from idle (t_a)",
                  "active": f"kept in an active session at {limits.active_baseline_kw:g} kW "
                            "export (t_c)"}
        tables += [(f"strict, {labels[s]}, {where}", assess_all(groups, timings, "strict", s,
                                                                limits)) for s in sessions]
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

"""Trace library: named, seeded frequency traces for tests, demos and `v2ghub evaluate`.

PURE numpy: names traces and builds their CSV text (SPEC §3.2); no file I/O, no clock reads (the
`v2ghub trace` command in controller/tools/trace.py is the edge that writes files). The shapes
are built by sim_chargers/traceshapes.py (sampling grid, steps, ramps) and
sim_chargers/gridtraces.py (GB normal operation, published events); this module holds the
registry, the argument limits and the CSV form.

Every trace is a function ``generator(seconds, seed, rate_hz) -> Trace`` registered by name in
`TRACES` (see `build_registry`); `generate` validates the arguments and calls it. All traces are
sampled uniformly at `rate_hz` from t = 0 to t = seconds and rounded to 1 µHz, so the CSV text
(`to_csv`) reads back bit-exact. Only `gb-normal` uses the seed; the other shapes are
deterministic and ignore it. Families (the docstring of each generator names its sources and
what is synthetic):

    gb-normal                GB normal operation, bimodal about 50 Hz (synthetic, seeded)
    step-<svc>-<l|h>-<point> step to a service's deadband edge (+ margin), knee or saturation,
                             computed from service definitions (DEFAULT_DEFINITIONS by default)
    ramp-down, ramp-up       50 -> 49.5 (50.5) Hz over 10 s, hold, and back (see `ramp`)
    gb-2019-08-09            the GB low-frequency event of 9 August 2019, shape from the reports
    ce-2021-01-08-nw/-se     the two areas of the Continental Europe split of 8 January 2021
    flat, dc-l-dip, dc-h-rise, fcr-step   the built-in events of sim_chargers.traces, resampled

Errors: `TraceError` (sim_chargers.traces) for an unknown name or a bad parameter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from controller.control.services import DEFAULT_DEFINITIONS, ServiceDefinition
from sim_chargers.gridtraces import (
    CE_2021_01_08_NW,
    CE_2021_01_08_SE,
    GB_2019_08_09,
    event_generator,
    gb_normal,
)
from sim_chargers.traces import (
    BUILTIN_EVENTS,
    MAX_RATE_HZ,
    NOMINAL_HZ,
    Trace,
    TraceError,
    builtin_event,
)
from sim_chargers.traceshapes import (
    LEAD_S,
    TraceGenerator,
    ramp_down,
    ramp_up,
    rounded_trace,
    service_points,
    step_generator,
    time_grid,
)

__all__ = [
    "DEFAULT_RATE_HZ",
    "MAX_SECONDS",
    "MIN_SECONDS",
    "TRACES",
    "TraceGenerator",
    "TraceSpec",
    "build_registry",
    "check_arguments",
    "generate",
    "lookup",
    "step_specs",
    "to_csv",
]

DEFAULT_RATE_HZ = 10.0  # 10 Hz: sub-second control loop input without huge files
MAX_SECONDS = 86_400.0  # one day (864 000 samples at 10 Hz); same bound as builtin_event
MIN_SECONDS = 1.0  # at least two samples at any rate >= 1 Hz


@dataclass(frozen=True)
class TraceSpec:
    """A named trace: one-line summary (for `--list`), generator and default duration."""

    name: str
    summary: str
    generate: TraceGenerator
    default_seconds: float


# -- steps to the service points -----------------------------------------------------------------
Side = Literal["l", "h"]


def _sides(defn: ServiceDefinition) -> tuple[Side, ...]:
    if defn.direction == "both":
        return ("l", "h")
    return ("l",) if defn.direction == "low" else ("h",)


def _family(defn: ServiceDefinition) -> str:
    name = defn.name.lower()
    if defn.direction != "both" and name[-2:] in ("-l", "-h"):
        name = name[:-2]
    return name


def step_specs(definitions: Mapping[str, ServiceDefinition]) -> dict[str, TraceSpec]:
    """`step-<service>-<l|h>-<point>` traces for every definition, side and point."""
    specs: dict[str, TraceSpec] = {}
    for defn in definitions.values():
        for side in _sides(defn):
            points = service_points(defn)
            for point, abs_df in points.items():
                name = f"step-{_family(defn)}-{side}-{point}"
                f_event = NOMINAL_HZ - abs_df if side == "l" else NOMINAL_HZ + abs_df
                linear = point == "knee" and abs_df == points["sat"]
                same = " (= sat, linear curve)" if linear else ""
                summary = (f"{defn.name} {point}{same}: step 50 -> {f_event:.3f} Hz after "
                           f"{LEAD_S:g} s, back to 50 Hz {LEAD_S:g} s before the end")
                specs[name] = TraceSpec(name, summary, step_generator(name, f_event), 120.0)
    return specs


# -- the built-in events of sim_chargers.traces --------------------------------------------------
_BUILTIN_PRE_POST_S = 5.0  # builtin_event defaults


def _builtin_generator(name: str) -> TraceGenerator:
    def event(seconds: float, seed: int, rate_hz: float) -> Trace:
        """sim_chargers.traces.builtin_event(name) with hold = seconds - 10 s, resampled."""
        del seed
        hold = max(0.0, seconds - 2 * _BUILTIN_PRE_POST_S)
        src = builtin_event(name, hold_s=hold)
        t = time_grid(seconds, rate_hz)
        return rounded_trace(name, t, src.f_at_many(t))

    return event


# -- registry ------------------------------------------------------------------------------------
def build_registry(definitions: Mapping[str, ServiceDefinition] = DEFAULT_DEFINITIONS,
                   ) -> dict[str, TraceSpec]:
    """All named traces; the step traces follow `definitions` (configured curves move them)."""
    specs = [
        TraceSpec("gb-normal", "GB normal operation: bimodal about 50 Hz, mostly 49.8-50.2 Hz, "
                  "seeded (synthetic)", gb_normal, 3600.0),
        TraceSpec("ramp-down", "50 -> 49.5 Hz over 10 s, hold, back over 10 s", ramp_down, 60.0),
        TraceSpec("ramp-up", "50 -> 50.5 Hz over 10 s, hold, back over 10 s", ramp_up, 60.0),
        TraceSpec("gb-2019-08-09", "GB 9 Aug 2019: 49.1 Hz at 18 s, 49.2 hold, 48.8 Hz at 76 s "
                  "(LFDD), 50 Hz by 285 s", event_generator("gb-2019-08-09", GB_2019_08_09),
                  360.0),
        TraceSpec("ce-2021-01-08-nw", "CE split 8 Jan 2021, north-west area: 49.74 Hz at 15 s, "
                  "then 49.84 Hz", event_generator("ce-2021-01-08-nw", CE_2021_01_08_NW), 300.0),
        TraceSpec("ce-2021-01-08-se", "CE split 8 Jan 2021, south-east area: 50.6 Hz at 15 s, "
                  "then 50.2-50.3 Hz", event_generator("ce-2021-01-08-se", CE_2021_01_08_SE),
                  300.0),
    ]
    registry = {s.name: s for s in specs}
    registry.update(step_specs(definitions))
    for name, (f_event, hold_s) in BUILTIN_EVENTS.items():
        registry[name] = TraceSpec(name, f"built-in event: 50 Hz, {f_event:g} Hz for seconds - "
                                   "10 s, 50 Hz (5 s each side)", _builtin_generator(name),
                                   hold_s + 2 * _BUILTIN_PRE_POST_S)
    return registry


TRACES: dict[str, TraceSpec] = build_registry()


def generate(name: str, *, seconds: float | None = None, seed: int = 0,
             rate_hz: float = DEFAULT_RATE_HZ,
             registry: Mapping[str, TraceSpec] | None = None) -> Trace:
    """The trace `name` (its default duration when `seconds` is None).

    Raises:
        TraceError: unknown name (listing the known ones), or seconds, seed or rate out of range.
    """
    spec = lookup(name, registry)
    secs = spec.default_seconds if seconds is None else seconds
    check_arguments(secs, seed, rate_hz)
    return spec.generate(secs, seed, rate_hz)


def lookup(name: str, registry: Mapping[str, TraceSpec] | None = None) -> TraceSpec:
    """The spec of trace `name`.

    Raises:
        TraceError: unknown name; the message lists the known ones.
    """
    specs = TRACES if registry is None else registry
    if name not in specs:
        raise TraceError(f"unknown trace {name!r}; known: {', '.join(specs)}")
    return specs[name]


def check_arguments(secs: float, seed: int, rate_hz: float) -> None:
    """Raise TraceError unless duration, seed and rate are within the library's limits."""
    if not (math.isfinite(secs) and MIN_SECONDS <= secs <= MAX_SECONDS):
        raise TraceError(f"seconds: must be within {MIN_SECONDS:g}..{MAX_SECONDS:g}, "
                         f"got {secs!r}")
    if not (math.isfinite(rate_hz) and 0 < rate_hz <= MAX_RATE_HZ):
        raise TraceError(f"rate_hz: must be within (0, {MAX_RATE_HZ:g}] Hz (SPEC §3.2), "
                         f"got {rate_hz!r}")
    if not 0 <= seed < 2**63:
        raise TraceError(f"seed: must be a non-negative integer, got {seed!r}")


def to_csv(trace: Trace) -> str:
    """SPEC §3.2 CSV text: header `t_s,f_hz`, one sample a line, at most 6 decimals."""
    lines = [f"{_num(t)},{_num(f)}" for t, f in zip(trace.t_s.tolist(), trace.f_hz.tolist(),
                                                     strict=True)]
    return "t_s,f_hz\n" + "\n".join(lines) + "\n"


def _num(x: float) -> str:
    s = f"{x:.6f}".rstrip("0")
    return s + "0" if s.endswith(".") else s

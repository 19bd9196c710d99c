"""Trace library: named, seeded frequency traces for tests, demos and `v2ghub evaluate`.

PURE numpy: builds `Trace` objects and CSV text (SPEC §3.2); no file I/O, no clock reads (the
`v2ghub trace` command in controller/tools/trace.py is the edge that writes files).

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from controller.control.services import DEFAULT_DEFINITIONS, ServiceDefinition
from sim_chargers.plant import FloatArray
from sim_chargers.traces import (
    BUILTIN_EVENTS,
    MAX_RATE_HZ,
    NOMINAL_HZ,
    Trace,
    TraceError,
    builtin_event,
)

TraceGenerator = Callable[[float, int, float], Trace]  # (seconds, seed, rate_hz) -> Trace

DEFAULT_RATE_HZ = 10.0  # 10 Hz: sub-second control loop input without huge files
MAX_SECONDS = 86_400.0  # one day (864 000 samples at 10 Hz); same bound as builtin_event
MIN_SECONDS = 1.0  # at least two samples at any rate >= 1 Hz
F_DECIMALS = 6  # 1 µHz: far below meter resolution, keeps the CSV short and exact
DEADBAND_MARGIN_HZ = 0.005  # step just outside the deadband: 5 x a 1 mHz meter's resolution,
#                             so rounding cannot put it back inside; asks 0.1 % (DC) to 2.7 % (DR)
#                             of Pc, inside the 3 % compliance tolerance (SPEC §3.5)
LEAD_S = 10.0  # nominal 50 Hz before a step or ramp and after its return
MAX_DEPTH_HZ = 4.5  # ramps stay inside 45.5-54.5 Hz (SPEC §3.3: outside 45-55 Hz is implausible)


@dataclass(frozen=True)
class TraceSpec:
    """A named trace: one-line summary (for `--list`), generator and default duration."""

    name: str
    summary: str
    generate: TraceGenerator
    default_seconds: float


# -- sampling helpers ----------------------------------------------------------------------------
def time_grid(seconds: float, rate_hz: float) -> FloatArray:
    """Uniform sample times 0, 1/rate_hz, ... up to `seconds` (inclusive when on the grid)."""
    n = math.floor(seconds * rate_hz + 1e-9) + 1
    t: FloatArray = np.round(np.arange(n, dtype=np.float64) / rate_hz, 6)
    return t


def _trace(name: str, t_s: FloatArray, f_hz: FloatArray) -> Trace:
    return Trace(t_s, np.round(f_hz, F_DECIMALS), name=name)


def _lead_s(seconds: float) -> float:
    return min(LEAD_S, seconds / 6.0)


def _trapezoid(t_s: FloatArray, f_event_hz: float, on_s: float, off_s: float,
               ramp_s: float) -> FloatArray:
    """50 Hz, then (step or linear ramp from `on_s`) to f_event, held, back to 50 by `off_s`."""
    if ramp_s <= 0:
        level = ((t_s >= on_s) & (t_s < off_s)).astype(np.float64)
    else:
        level = np.minimum(np.clip((t_s - on_s) / ramp_s, 0.0, 1.0),
                           np.clip((off_s - t_s) / ramp_s, 0.0, 1.0))
    out: FloatArray = NOMINAL_HZ + (f_event_hz - NOMINAL_HZ) * level
    return out


# -- steps to the service points -----------------------------------------------------------------
Side = Literal["l", "h"]


def service_points(defn: ServiceDefinition) -> dict[str, float]:
    """|Δf| (Hz) of a service's points: deadband edge + DEADBAND_MARGIN_HZ, knee, saturation.

    The knee is the second curve point (DC, DM: the 5 % point); on a curve linear from the
    deadband to full delivery (FCR, DR) that is the saturation point itself, kept so that every
    service has the same three names. Saturation is the last curve point (full delivery). A
    static service (SFFR) has its trigger instead, and "near-trigger", DEADBAND_MARGIN_HZ short
    of it (must not trigger).
    """
    if defn.trigger_hz is not None:
        trigger = abs(defn.trigger_hz - NOMINAL_HZ)
        return {"near-trigger": trigger - DEADBAND_MARGIN_HZ, "trigger": trigger}
    pts = defn.curve.points
    out = {"deadband": defn.deadband_hz + DEADBAND_MARGIN_HZ}
    out["knee"] = pts[min(1, len(pts) - 1)][0]
    out["sat"] = pts[-1][0]
    return out


def _sides(defn: ServiceDefinition) -> tuple[Side, ...]:
    if defn.direction == "both":
        return ("l", "h")
    return ("l",) if defn.direction == "low" else ("h",)


def _family(defn: ServiceDefinition) -> str:
    name = defn.name.lower()
    if defn.direction != "both" and name[-2:] in ("-l", "-h"):
        name = name[:-2]
    return name


def _step_generator(name: str, f_event_hz: float) -> TraceGenerator:
    def step(seconds: float, seed: int, rate_hz: float) -> Trace:
        """Step from 50 Hz to a service point after LEAD_S, back to 50 Hz LEAD_S before the end.

        Source: the service definition it was built from (SPEC §2.1 defaults, or configured
        curves). Synthetic: the ideal step itself (a real grid never steps); seed unused.
        """
        del seed
        t = time_grid(seconds, rate_hz)
        lead = _lead_s(seconds)
        return _trace(name, t, _trapezoid(t, f_event_hz, lead, seconds - lead, 0.0))

    return step


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
                specs[name] = TraceSpec(name, summary, _step_generator(name, f_event), 120.0)
    return specs


# -- ramps ---------------------------------------------------------------------------------------
def ramp(direction: Literal["down", "up"], seconds: float, rate_hz: float, *,
         depth_hz: float = 0.5, ramp_s: float = 10.0) -> Trace:
    """Linear ramp 50 -> 50 -/+ depth_hz over ramp_s, held, and back the same way.

    50 Hz for LEAD_S (or seconds/6 if shorter), the ramp, the hold, the ramp back, 50 Hz for
    LEAD_S. Default depth 0.5 Hz: the DC saturation point (SPEC §2.1), reached at 0.05 Hz/s,
    a slow event that crosses every GB service's deadband, knee and saturation in turn.
    Synthetic throughout.

    Raises:
        TraceError: depth_hz outside (0, MAX_DEPTH_HZ], ramp_s < 0, or the two ramps do not
            fit in `seconds`.
    """
    if not (math.isfinite(depth_hz) and 0 < depth_hz <= MAX_DEPTH_HZ):
        raise TraceError(f"depth_hz: must be within (0, {MAX_DEPTH_HZ:g}] Hz, got {depth_hz!r}")
    lead = _lead_s(seconds)
    if not (math.isfinite(ramp_s) and 0 <= 2 * ramp_s <= seconds - 2 * lead):
        raise TraceError(f"ramp_s: two ramps of {ramp_s!r} s do not fit in {seconds:g} s "
                         f"with {lead:g} s at 50 Hz before and after")
    t = time_grid(seconds, rate_hz)
    f_event = NOMINAL_HZ - depth_hz if direction == "down" else NOMINAL_HZ + depth_hz
    return _trace(f"ramp-{direction}", t, _trapezoid(t, f_event, lead, seconds - lead, ramp_s))


def _ramp_down(seconds: float, seed: int, rate_hz: float) -> Trace:
    del seed
    return ramp("down", seconds, rate_hz)


def _ramp_up(seconds: float, seed: int, rate_hz: float) -> Trace:
    del seed
    return ramp("up", seconds, rate_hz)


# -- GB normal operation -------------------------------------------------------------------------
# Targets (tests/unit/sim/test_tracelib.py checks them over seeds, one hour at a time):
#   * >= 99 % of the time inside the operational limits 49.8-50.2 Hz (NESO; the statutory limits
#     are 49.5-50.5 Hz) - the synthetic process would need a 6-sigma noise peak to leave them;
#   * fewer samples within 50.00 +/- 0.01 Hz than per 0.01 Hz at |df| 0.05-0.08 Hz: the 2023
#     NESO 1-s data are not bell-shaped but have "a chunk missing" between about 49.85 and
#     50.15 Hz - the frequency runs slightly above or slightly below 50 Hz most of the time
#     (Aurora Power Consulting, "Frequency distribution of the GB power system", 2024);
#   * standard deviation 0.045-0.085 Hz and a mean near 50 Hz (chosen, consistent with the above);
#   * 1-s rate of change mostly below 0.01 Hz/s (chosen: normal operation, two orders of
#     magnitude under the 1 Hz/s RoCoF loss-of-mains setting of GB embedded generation, G99).
_GB_SWITCH_MEAN_S = 90.0  # mean dwell above/below 50 Hz (minutes-scale wander)
_GB_SWITCH_MIN_S = 20.0  # shortest dwell
_GB_OFFSET_HZ = (0.05, 0.10)  # |setpoint - 50| per dwell, uniform: 49.90-49.95 or 50.05-50.10
_GB_TRANSITION_S = 12.0  # Gaussian smoothing of the setpoint switches (sigma)
_GB_WANDER = (0.015, 30.0)  # (std Hz, correlation sigma s): tens-of-seconds wander
_GB_NOISE = (0.006, 2.0)  # (std Hz, correlation sigma s): seconds-scale noise


def _gaussian_kernel(sigma_s: float) -> FloatArray:
    half = math.ceil(4 * sigma_s)
    x = np.arange(-half, half + 1, dtype=np.float64)
    k: FloatArray = np.exp(-0.5 * (x / sigma_s) ** 2)
    return k


def _correlated_noise(rng: np.random.Generator, n: int, std_hz: float,
                      sigma_s: float) -> FloatArray:
    """n 1-s samples of Gaussian noise with a Gaussian autocorrelation (std `std_hz`)."""
    k = _gaussian_kernel(sigma_s)
    k = k * (std_hz / math.sqrt(float(np.sum(k**2))))
    out: FloatArray = np.convolve(rng.standard_normal(n + len(k) - 1), k, mode="valid")
    return out


def _setpoint_offsets(rng_dwell: np.random.Generator, rng_level: np.random.Generator,
                      n: int) -> FloatArray:
    """n 1-s samples of the wandering setpoint: +/- offset dwells, smoothed switches."""
    k = _gaussian_kernel(_GB_TRANSITION_S)
    total = n + len(k) - 1
    count = math.ceil(total / _GB_SWITCH_MIN_S) + 1
    dwell_s = _GB_SWITCH_MIN_S + rng_dwell.exponential(_GB_SWITCH_MEAN_S - _GB_SWITCH_MIN_S, count)
    first_sign = 1.0 if rng_level.random() < 0.5 else -1.0
    level = rng_level.uniform(*_GB_OFFSET_HZ, count) * first_sign
    level[1::2] *= -1.0  # alternate above / below 50 Hz
    which = np.searchsorted(np.cumsum(dwell_s), np.arange(total), side="right")
    out: FloatArray = np.convolve(level[which], k / np.sum(k), mode="valid")
    return out


def gb_normal(seconds: float, seed: int, rate_hz: float) -> Trace:
    """GB normal operation: bimodal about 50 Hz, minutes-scale wander, seconds-scale noise.

    Synthetic throughout (no measured data is shipped or downloaded); the statistics it targets
    and their public sources are listed above `_GB_SWITCH_MEAN_S`. Model, on a 1-s grid like the
    NESO 1-s frequency data, then linearly interpolated to `rate_hz`:
    f = 50 + setpoint + wander + noise, where the setpoint dwells above or below 50 Hz (offset
    0.05-0.10 Hz, dwell 20 s + exponential, mean 90 s, switches smoothed over ~30 s). The
    mechanism is a plausible one (the frequency floats inside the deadbands of the responses
    until it drifts out and is pushed back), not a fitted model. Each component has its own
    seeded stream: a longer trace extends a shorter one with the same seed, and the rate does
    not change the curve.
    """
    n = math.ceil(seconds) + 1
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]
    f_1s = (NOMINAL_HZ + _setpoint_offsets(rngs[0], rngs[1], n)
            + _correlated_noise(rngs[2], n, *_GB_WANDER)
            + _correlated_noise(rngs[3], n, *_GB_NOISE))
    t = time_grid(seconds, rate_hz)
    return _trace("gb-normal", t, np.interp(t, np.arange(n, dtype=np.float64), f_1s))


# -- published events ----------------------------------------------------------------------------
# A shape is knots (t_s, f_hz, segment) joined by eased segments; `segment` shapes the segment
# that ends at the knot: "lin" linear, "cos" flat at both ends, "out" fast start and flat end
# (a fall arrested at its nadir), "in" flat start and fast end (a fall cut off by load
# shedding). Extremes sit exactly on knots.
Knot = tuple[float, float, str]
_EASE: dict[str, Callable[[FloatArray], FloatArray]] = {
    "lin": lambda u: u,
    "cos": lambda u: 0.5 - 0.5 * np.cos(np.pi * u),
    "out": lambda u: 1.0 - (1.0 - u) ** 2,
    "in": lambda u: u**2,
}


def _shape(knots: Sequence[Knot], t_s: FloatArray) -> FloatArray:
    tk = np.array([k[0] for k in knots])
    fk = np.array([k[1] for k in knots])
    seg = np.clip(np.searchsorted(tk, t_s, side="right"), 1, len(knots) - 1)
    u = np.clip((t_s - tk[seg - 1]) / (tk[seg] - tk[seg - 1]), 0.0, 1.0)
    eased = np.zeros_like(u)
    for i, (_, _, kind) in enumerate(knots[1:], start=1):
        eased = np.where(seg == i, _EASE[kind](u), eased)
    out: FloatArray = fk[seg - 1] + (fk[seg] - fk[seg - 1]) * eased
    return out


# 9 August 2019, t = 0 at the lightning strike (16:52:33 BST). Landmarks from National Grid ESO,
# "Technical report on the events of 9 August 2019" (6 Sept 2019) and Ofgem's final report
# (Jan 2020): near-simultaneous loss of Hornsea 1, Little Barford steam turbine and embedded
# generation; frequency fell to about 49.1 Hz, recovered to about 49.2 Hz; the Little Barford gas
# turbine trips (about 1 min in) took it to 48.8 Hz, where Low Frequency Demand Disconnection
# shed about 1 GW of demand (16:53:49, ~76 s); frequency was back at 50 Hz about 5 minutes
# after the strike. Synthetic: the curve between landmarks, the exact times of the first nadir
# (18 s) and of 50 Hz again (285 s), the flat hold at 49.2 Hz, and the absence of noise.
_GB_2019_08_09: tuple[Knot, ...] = (
    (0.0, 50.00, "lin"), (18.0, 49.10, "out"), (30.0, 49.20, "cos"), (58.0, 49.20, "lin"),
    (76.0, 48.80, "in"), (92.0, 49.25, "out"), (285.0, 50.00, "cos"),
)
# 8 January 2021, t = 0 at the system split (about 14:05 CET). Landmarks from ENTSO-E, "Continental
# Europe Synchronous Area Separation on 08 January 2021 - Final Report" (July 2021): the
# north-west area fell to 49.74 Hz within about 15 s, then settled near 49.84 Hz (FCR plus about
# 1.7 GW of interruptible load in France and Italy); the south-east area rose to 50.6 Hz, then
# settled between 50.2 and 50.3 Hz; the areas were resynchronised about an hour later.
# Synthetic: the curves between landmarks, the time of the south-east peak (taken as 15 s like
# the north-west nadir), the slow south-east drift from 50.28 to 50.22 Hz, holding both areas at
# their settled values to the end (no restoration, no resynchronisation), no noise.
_CE_2021_NW: tuple[Knot, ...] = ((0.0, 50.00, "lin"), (15.0, 49.74, "out"), (35.0, 49.84, "cos"))
_CE_2021_SE: tuple[Knot, ...] = (
    (0.0, 50.00, "lin"), (15.0, 50.60, "out"), (40.0, 50.28, "cos"), (300.0, 50.22, "lin"),
)


def _event_generator(name: str, knots: tuple[Knot, ...]) -> TraceGenerator:
    def event(seconds: float, seed: int, rate_hz: float) -> Trace:
        """A published event shape (sources above its knots); seed unused."""
        del seed
        t = time_grid(seconds, rate_hz)
        return _trace(name, t, _shape(knots, t))

    return event


# -- the built-in events of sim_chargers.traces --------------------------------------------------
_BUILTIN_PRE_POST_S = 5.0  # builtin_event defaults


def _builtin_generator(name: str) -> TraceGenerator:
    def event(seconds: float, seed: int, rate_hz: float) -> Trace:
        """sim_chargers.traces.builtin_event(name) with hold = seconds - 10 s, resampled."""
        del seed
        hold = max(0.0, seconds - 2 * _BUILTIN_PRE_POST_S)
        src = builtin_event(name, hold_s=hold)
        t = time_grid(seconds, rate_hz)
        return _trace(name, t, src.f_at_many(t))

    return event


# -- registry ------------------------------------------------------------------------------------
def build_registry(definitions: Mapping[str, ServiceDefinition] = DEFAULT_DEFINITIONS,
                   ) -> dict[str, TraceSpec]:
    """All named traces; the step traces follow `definitions` (configured curves move them)."""
    specs = [
        TraceSpec("gb-normal", "GB normal operation: bimodal about 50 Hz, mostly 49.8-50.2 Hz, "
                  "seeded (synthetic)", gb_normal, 3600.0),
        TraceSpec("ramp-down", "50 -> 49.5 Hz over 10 s, hold, back over 10 s", _ramp_down, 60.0),
        TraceSpec("ramp-up", "50 -> 50.5 Hz over 10 s, hold, back over 10 s", _ramp_up, 60.0),
        TraceSpec("gb-2019-08-09", "GB 9 Aug 2019: 49.1 Hz at 18 s, 49.2 hold, 48.8 Hz at 76 s "
                  "(LFDD), 50 Hz by 285 s", _event_generator("gb-2019-08-09", _GB_2019_08_09),
                  360.0),
        TraceSpec("ce-2021-01-08-nw", "CE split 8 Jan 2021, north-west area: 49.74 Hz at 15 s, "
                  "then 49.84 Hz", _event_generator("ce-2021-01-08-nw", _CE_2021_NW), 300.0),
        TraceSpec("ce-2021-01-08-se", "CE split 8 Jan 2021, south-east area: 50.6 Hz at 15 s, "
                  "then 50.2-50.3 Hz", _event_generator("ce-2021-01-08-se", _CE_2021_SE), 300.0),
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

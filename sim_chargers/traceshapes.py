"""Trace shapes: the sampling grid and the ideal test shapes, steps to service points and ramps.

PURE numpy: builds `Trace` objects from parameters; no names registry (sim_chargers/tracelib.py
maps trace names to these), no file I/O, no clock reads. Every trace is sampled uniformly at
`rate_hz` from t = 0 to t = seconds (`time_grid`) and rounded to 1 µHz (`rounded_trace`), so
its CSV text reads back bit-exact. Synthetic throughout: a real grid never steps, and the ramps
are chosen, not measured. Errors: `TraceError` (sim_chargers.traces) for a bad parameter.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np

from controller.control.services import ServiceDefinition
from sim_chargers.plant import FloatArray
from sim_chargers.traces import NOMINAL_HZ, Trace, TraceError

TraceGenerator = Callable[[float, int, float], Trace]  # (seconds, seed, rate_hz) -> Trace

F_DECIMALS = 6  # 1 µHz: far below meter resolution, keeps the CSV short and exact
DEADBAND_MARGIN_HZ = 0.005  # step just outside the deadband: 5 x a 1 mHz meter's resolution,
#                             so rounding cannot put it back inside; asks 0.1 % (DC) to 2.7 % (DR)
#                             of Pc, inside the 3 % compliance tolerance (SPEC §3.5)
LEAD_S = 10.0  # nominal 50 Hz before a step or ramp and after its return
MAX_DEPTH_HZ = 4.5  # ramps stay inside 45.5-54.5 Hz (SPEC §3.3: outside 45-55 Hz is implausible)


# -- sampling helpers ----------------------------------------------------------------------------
def time_grid(seconds: float, rate_hz: float) -> FloatArray:
    """Uniform sample times 0, 1/rate_hz, ... up to `seconds` (inclusive when on the grid)."""
    n = math.floor(seconds * rate_hz + 1e-9) + 1
    t: FloatArray = np.round(np.arange(n, dtype=np.float64) / rate_hz, 6)
    return t


def rounded_trace(name: str, t_s: FloatArray, f_hz: FloatArray) -> Trace:
    """A Trace named `name` with its frequencies rounded to F_DECIMALS (1 µHz)."""
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


def step_generator(name: str, f_event_hz: float) -> TraceGenerator:
    """The generator of trace `name`: a step from 50 Hz to `f_event_hz` and back."""

    def step(seconds: float, seed: int, rate_hz: float) -> Trace:
        """Step from 50 Hz to a service point after LEAD_S, back to 50 Hz LEAD_S before the end.

        Source: the service definition it was built from (SPEC §2.1 defaults, or configured
        curves). Synthetic: the ideal step itself (a real grid never steps); seed unused.
        """
        del seed
        t = time_grid(seconds, rate_hz)
        lead = _lead_s(seconds)
        return rounded_trace(name, t, _trapezoid(t, f_event_hz, lead, seconds - lead, 0.0))

    return step


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
    f_hz = _trapezoid(t, f_event, lead, seconds - lead, ramp_s)
    return rounded_trace(f"ramp-{direction}", t, f_hz)


def ramp_down(seconds: float, seed: int, rate_hz: float) -> Trace:
    """`ramp-down`: the default ramp to 49.5 Hz; seed unused."""
    del seed
    return ramp("down", seconds, rate_hz)


def ramp_up(seconds: float, seed: int, rate_hz: float) -> Trace:
    """`ramp-up`: the default ramp to 50.5 Hz; seed unused."""
    del seed
    return ramp("up", seconds, rate_hz)

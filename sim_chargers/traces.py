"""Frequency traces: the trace CSV reader (SPEC §3.2) and built-in frequency events.

PURE: parses text it is given (load_trace is the only function that opens a file); no clock
reads, no asyncio.

Interpolation: zero-order hold. A trace is a record of meter samples, so the frequency at t is
the latest sample at or before t (the first sample before it, the last one after the end). It
invents no values between samples and keeps steps exact; a ramp is written as samples along it
(the built-in events do so at 50 Hz when `ramp_s` > 0).

Built-in events (nominal 50 Hz; pre_s, hold_s, post_s, ramp_s are parameters):
    flat       50.0 Hz for pre_s + hold_s + post_s
    dc-l-dip   50.0 for pre_s, then (step, or linear over ramp_s) to 49.5 Hz - the GB Dynamic
               Containment Low full-delivery point (|df| = 0.5 Hz, SPEC §2.1) - held hold_s
               (default 20 s), back to 50.0 the same way, 50.0 for post_s
    dc-h-rise  the mirror: 50.5 Hz
    fcr-step   as dc-l-dip at 49.8 Hz (FCR full activation at |df| = 200 mHz), hold 60 s
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sim_chargers.plant import FloatArray

NOMINAL_HZ = 50.0
HEADER = "t_s,f_hz"
MAX_RATE_HZ = 50.0  # SPEC §3.2: any rate up to 50 Hz
_MIN_DT_S = 1.0 / MAX_RATE_HZ - 1e-9  # float tolerance on 0.02 s spacing


class TraceError(ValueError):
    """A trace file or event is invalid; the message names the line or parameter."""


@dataclass(frozen=True, eq=False)
class Trace:
    """Frequency samples (t_s strictly increasing, from 0), read by zero-order hold."""

    t_s: FloatArray
    f_hz: FloatArray
    name: str = "trace"

    @property
    def duration_s(self) -> float:
        return float(self.t_s[-1])

    def f_at(self, t_s: float) -> float:
        """Frequency (Hz) at `t_s` seconds from the start of the trace."""
        i = int(np.searchsorted(self.t_s, t_s, side="right")) - 1
        return float(self.f_hz[max(i, 0)])

    def f_at_many(self, t_s: npt.ArrayLike) -> FloatArray:
        """Vectorised f_at (fast-time evaluation)."""
        i = np.searchsorted(self.t_s, np.asarray(t_s, dtype=np.float64), side="right") - 1
        return self.f_hz[np.maximum(i, 0)]


def parse_trace(text: str, source: str = "<trace>") -> Trace:
    """Parse trace CSV text.

    Raises:
        TraceError: "<source>:<line>: what is wrong".
    """
    lines = text.splitlines()
    if not lines or lines[0].lstrip("\ufeff").strip() != HEADER:
        got = lines[0].strip() if lines else ""
        raise TraceError(f"{source}:1: header must be exactly {HEADER!r}, got {got!r}")
    ts: list[float] = []
    fs: list[float] = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split(",")
        if len(parts) != 2:
            raise TraceError(f"{source}:{lineno}: expected 2 fields t_s,f_hz, got {len(parts)}")
        try:
            t, f = float(parts[0]), float(parts[1])
        except ValueError:
            raise TraceError(f"{source}:{lineno}: not numbers: {line.strip()!r}") from None
        if not (math.isfinite(t) and math.isfinite(f)):
            raise TraceError(f"{source}:{lineno}: values must be finite, got {line.strip()!r}")
        if not ts and t < 0:
            raise TraceError(f"{source}:{lineno}: t_s must start at >= 0, got {t}")
        if ts and t <= ts[-1]:
            raise TraceError(f"{source}:{lineno}: t_s must increase strictly ({t} after {ts[-1]})")
        if ts and t - ts[-1] < _MIN_DT_S:
            raise TraceError(f"{source}:{lineno}: samples {t - ts[-1]:.4g} s apart; the rate "
                             f"limit is {MAX_RATE_HZ:g} Hz (>= {1 / MAX_RATE_HZ} s)")
        ts.append(t)
        fs.append(f)
    if not ts:
        raise TraceError(f"{source}:2: no samples after the header")
    return Trace(np.array(ts), np.array(fs), name=source)


def load_trace(path: str | Path) -> Trace:
    """Read a trace CSV file (see parse_trace)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TraceError(f"{p}: no such trace file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"{p}: cannot read trace file: {exc}") from None
    return parse_trace(text, str(p))


# name -> (event frequency Hz, default hold s)
BUILTIN_EVENTS: dict[str, tuple[float, float]] = {
    "flat": (NOMINAL_HZ, 20.0),
    "dc-l-dip": (49.5, 20.0),
    "dc-h-rise": (50.5, 20.0),
    "fcr-step": (49.8, 60.0),
}


def builtin_event(name: str, *, pre_s: float = 5.0, hold_s: float | None = None,
                  post_s: float = 5.0, ramp_s: float = 0.0) -> Trace:
    """A built-in frequency event (shapes in the module docstring).

    Raises:
        TraceError: unknown name (listing the known ones) or a bad duration.
    """
    if name not in BUILTIN_EVENTS:
        raise TraceError(f"unknown frequency event {name!r}; known: {', '.join(BUILTIN_EVENTS)}")
    f_event, hold_default = BUILTIN_EVENTS[name]
    hold = hold_default if hold_s is None else hold_s
    for label, val in (("pre_s", pre_s), ("hold_s", hold), ("post_s", post_s),
                       ("ramp_s", ramp_s)):
        if not (math.isfinite(val) and 0 <= val <= 86_400):
            raise TraceError(f"{label}: must be a duration 0..86400 s, got {val!r}")
    t = [0.0]
    f = [NOMINAL_HZ]
    _edge(t, f, pre_s, NOMINAL_HZ, f_event, ramp_s=ramp_s)
    _edge(t, f, pre_s + ramp_s + hold, f_event, NOMINAL_HZ, ramp_s=ramp_s)
    end = pre_s + 2 * ramp_s + hold + post_s
    if end > t[-1]:
        t.append(end)
        f.append(NOMINAL_HZ)
    ts, fs = np.array(t), np.array(f)
    keep = np.concatenate(([True], np.diff(ts) > 0))  # zero-length segments collapse
    return Trace(ts[keep], fs[keep], name=name)


def _edge(t: list[float], f: list[float], start_s: float, f0: float, f1: float, *,
          ramp_s: float) -> None:
    """Append a step (ramp_s 0) or 50 Hz samples of a linear ramp from f0 to f1."""
    if ramp_s <= 0:
        if start_s > t[-1]:
            t.append(start_s)
            f.append(f1)
        else:
            f[-1] = f1
        return
    n = max(1, math.ceil(ramp_s * MAX_RATE_HZ))
    for k in range(1, n + 1):
        tk = start_s + ramp_s * k / n
        if tk > t[-1]:
            t.append(tk)
            f.append(f0 + (f1 - f0) * k / n)

"""MeterGuard: validates site-meter samples (SPEC §3.3) and tracks their freshness.

Pure: no I/O, no clock reads; the adapter passes the raw bytes and our monotonic receive time
`recv_s`, the controller asks with `now_s`. Invalid, non-finite, implausible or stale samples never
reach the controller: `freq_hz(now_s)` returns None and the controller falls back to baseline.

Errors (one tree):
    ValueError
     └── MeterSampleError(reason, message)   reason is one of REASONS

States (`state(now_s)`, with S = stale_after_s):
    "no_data"  nothing (good or bad) has ever been received;
    "ok"       the last accepted sample was received at most S ago (rejects in between are
               counted but do not interrupt a good stream: one garbled datagram is no outage);
    "invalid"  not ok, and a datagram was rejected within the last S: the meter is talking but
               what it sends is unusable (alarm "meter invalid");
    "stale"    otherwise: data was seen once, but nothing at all usable or not within S.
`freq_hz(now_s)` is not None exactly when the state is "ok".

Time checks use `t` only relative to the last accepted sample (we have no trustworthy wall clock
here): `t` must strictly advance (drops duplicated / reordered datagrams) and may not run ahead of
our receive clock by more than `max_clock_skew_s`. Both checks apply only while the last accepted
sample is fresh, so a meter whose clock was stepped re-anchors after S instead of locking out.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import orjson

MeterState = Literal["ok", "stale", "invalid", "no_data"]
REASONS = ("not_json", "not_object", "missing_field", "wrong_type", "non_finite", "implausible",
           "not_advancing", "time_jump")


class MeterSampleError(ValueError):
    """A meter datagram was rejected; `reason` is one of REASONS (for counters and alarms)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"meter sample rejected ({reason}): {message}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class MeterSample:
    t_wall_s: float  # sample time as sent by the meter (Unix s)
    f_hz: float
    p_w: float | None  # site active power, + = import
    recv_s: float  # our monotonic receive time


class _NonFiniteConstantError(ValueError):
    pass


def _reject_constant(name: str) -> float:
    raise _NonFiniteConstantError(name)


def _decode(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # orjson refuses NaN/Infinity literals and overflowing numbers (1e999) outright; tell
        # those apart from garbage so the alarm says "non-finite" (error path only, not hot).
        if "infinity" in str(exc).lower():
            raise MeterSampleError("non_finite", "a number overflows to infinity") from None
        try:
            json.loads(raw, parse_constant=_reject_constant)
        except _NonFiniteConstantError as nan_exc:
            raise MeterSampleError("non_finite", f"{nan_exc} is not a number") from None
        except (ValueError, UnicodeDecodeError):
            pass
        raise MeterSampleError("not_json", f"not valid JSON ({exc.msg})") from None


def _number(obj: dict[str, Any], key: str, *, required: bool) -> float | None:
    val = obj.get(key)
    if val is None:
        if required:
            raise MeterSampleError("missing_field", f"required field {key!r} is missing")
        return None
    if isinstance(val, bool) or not isinstance(val, int | float):
        raise MeterSampleError("wrong_type", f"{key!r} must be a number, got "
                                             f"{type(val).__name__}")
    num = float(val)
    if not math.isfinite(num):
        raise MeterSampleError("non_finite", f"{key!r} is not finite")
    return num


def _required(obj: dict[str, Any], key: str) -> float:
    val = _number(obj, key, required=True)
    if val is None:  # unreachable: required=True raises instead
        raise MeterSampleError("missing_field", f"required field {key!r} is missing")
    return val


def parse_sample(raw: bytes, recv_s: float) -> MeterSample:
    """Parse one datagram/line into a MeterSample; checks syntax and types only.

    Raises:
        MeterSampleError: not_json, not_object, missing_field, wrong_type, non_finite.
    """
    obj = _decode(raw)
    if not isinstance(obj, dict):
        raise MeterSampleError("not_object", f"expected a JSON object, got {type(obj).__name__}")
    return MeterSample(_required(obj, "t"), _required(obj, "f_hz"),
                       _number(obj, "p_w", required=False), recv_s)


class MeterGuard:
    """Accepts or rejects meter samples and answers with a fresh frequency or None."""

    def __init__(self, *, f_min_hz: float = 45.0, f_max_hz: float = 55.0,
                 stale_after_s: float = 0.5, max_clock_skew_s: float = 1.0) -> None:
        """Args (defaults: settings.MeterConfig):
            f_min_hz, f_max_hz: plausibility window (SPEC §3.3: 45-55 Hz).
            stale_after_s: a sample older than this (by receive time) cannot drive a response;
                0.5 s is DC's start-by time (SPEC §2.1).
            max_clock_skew_s: how far the meter's `t` may advance beyond our own receive clock
                between two accepted samples; 50 Hz streams jitter by tens of ms, 1 s is ample.
        """
        self.f_min_hz = f_min_hz
        self.f_max_hz = f_max_hz
        self.stale_after_s = stale_after_s
        self.max_clock_skew_s = max_clock_skew_s
        self.last: MeterSample | None = None
        self.last_reject_s: float | None = None
        self.last_error: MeterSampleError | None = None
        self.accepted = 0
        self.rejects: Counter[str] = Counter()

    def accept(self, raw: bytes, recv_s: float) -> MeterSample:
        """Validate one datagram received at monotonic `recv_s`; remember it if good.

        Raises:
            MeterSampleError: the sample is rejected (counted in `rejects[reason]`).
        """
        try:
            sample = self._check(parse_sample(raw, recv_s))
        except MeterSampleError as exc:
            self.rejects[exc.reason] += 1
            self.last_reject_s = recv_s
            self.last_error = exc
            raise
        self.last = sample
        self.accepted += 1
        return sample

    def _check(self, s: MeterSample) -> MeterSample:
        if not self.f_min_hz <= s.f_hz <= self.f_max_hz:
            raise MeterSampleError("implausible", f"f_hz {s.f_hz} outside "
                                                  f"[{self.f_min_hz}, {self.f_max_hz}] Hz")
        prev = self.last
        if prev is not None and s.recv_s - prev.recv_s <= self.stale_after_s:
            if s.t_wall_s <= prev.t_wall_s:
                raise MeterSampleError("not_advancing", f"t {s.t_wall_s} does not advance past "
                                                        f"{prev.t_wall_s}")
            ahead = (s.t_wall_s - prev.t_wall_s) - (s.recv_s - prev.recv_s)
            if ahead > self.max_clock_skew_s:
                raise MeterSampleError("time_jump", f"t jumped {ahead:.3f} s ahead of the "
                                                    "receive clock")
        return s

    def _fresh(self, at_s: float | None, now_s: float) -> bool:
        return at_s is not None and now_s - at_s <= self.stale_after_s

    def state(self, now_s: float) -> MeterState:
        """"no_data" | "ok" | "stale" | "invalid" at monotonic `now_s` (see module docstring)."""
        if self._fresh(self.last.recv_s if self.last else None, now_s):
            return "ok"
        if self._fresh(self.last_reject_s, now_s):
            return "invalid"
        if self.last is None and self.last_reject_s is None:
            return "no_data"
        return "stale"

    def freq_hz(self, now_s: float) -> float | None:
        """The last accepted frequency if it is fresh at `now_s`, else None."""
        last = self.last
        if last is not None and now_s - last.recv_s <= self.stale_after_s:
            return last.f_hz
        return None

"""Compliance metric for frequency response (SPEC §3.5), vectorised over a whole run.

Pure numpy over arrays of samples; no I/O. Used by the demo summary and (later) by `evaluate`
and the performance-log report, so every consumer scores delivery the same way.

The tube: with E(t) = Pc·curve(f(t)) the expected response and T_full the service's
full-delivery time, the delivered response D(t) (measured fleet power minus baseline) is
compliant at t when  min E(s) - tol <= D(t) <= max E(s) + tol  over s in [t - T_full, t],
tol = 3 % of Pc.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

TOL_FRAC = 0.03  # SPEC §3.5: tolerance is 3 % of contracted power


@dataclass(frozen=True, slots=True)
class Compliance:
    """Scores of one run; percentages of Pc, times in seconds, energy in kWh."""

    compliance_pct: float
    max_shortfall_pct: float
    energy_shortfall_kwh: float
    start_delay_s: float | None  # event onset -> first response of the right sign beyond tol
    full_delivery_s: float | None  # event onset -> response within tol of the requirement
    n_samples: int


def _window_extrema(values: FloatArray, start_idx: npt.NDArray[np.intp]) -> tuple[FloatArray,
                                                                                   FloatArray]:
    """min and max of values[start_idx[i] : i + 1] for every i, with a sparse table (O(n log n))."""
    n = values.size
    mins = [values]
    maxs = [values]
    span = 1
    while span * 2 <= n:
        prev_min, prev_max = mins[-1], maxs[-1]
        mins.append(np.minimum(prev_min[:-span], prev_min[span:]))
        maxs.append(np.maximum(prev_max[:-span], prev_max[span:]))
        span *= 2
    end = np.arange(n)
    length = end - start_idx + 1
    level = np.floor(np.log2(length)).astype(np.intp)
    lo = np.empty(n)
    hi = np.empty(n)
    for k in np.unique(level):  # at most log2(n) levels, not a loop over samples
        sel = level == k
        a = start_idx[sel]
        b = end[sel] - (1 << int(k)) + 1
        lo[sel] = np.minimum(mins[k][a], mins[k][b])
        hi[sel] = np.maximum(maxs[k][a], maxs[k][b])
    return lo, hi


def tube(t_s: FloatArray, expected_w: FloatArray, contract_w: float,
         full_delivery_s: float) -> tuple[FloatArray, FloatArray]:
    """Lower and upper bound of the compliance tube at each sample time."""
    # 1 us of slack so float round-off in sample times never drops the window's first sample
    start_idx = np.searchsorted(t_s, t_s - full_delivery_s - 1e-6, side="left").astype(np.intp)
    lo, hi = _window_extrema(expected_w, start_idx)
    tol = TOL_FRAC * contract_w
    return lo - tol, hi + tol


def score(t_s: FloatArray, expected_w: FloatArray, delivered_w: FloatArray, contract_w: float,
          full_delivery_s: float) -> Compliance:
    """Score a run. Arrays share one time base (seconds, strictly increasing).

    Raises:
        ValueError: on mismatched lengths, an empty run or a non-positive contract.
    """
    t_s = np.asarray(t_s, dtype=np.float64)
    expected_w = np.asarray(expected_w, dtype=np.float64)
    delivered_w = np.asarray(delivered_w, dtype=np.float64)
    if not t_s.size or not t_s.size == expected_w.size == delivered_w.size:
        raise ValueError("score: t_s, expected_w and delivered_w must be equal, non-empty arrays")
    if contract_w <= 0:
        raise ValueError(f"score: contract_w must be > 0, got {contract_w}")
    lo, hi = tube(t_s, expected_w, contract_w, full_delivery_s)
    miss_w = np.maximum(lo - delivered_w, 0.0) + np.maximum(delivered_w - hi, 0.0)
    ok = miss_w <= 0.0
    dt = np.diff(t_s, append=t_s[-1])
    start, full = _event_times(t_s, expected_w, delivered_w, contract_w)
    return Compliance(
        compliance_pct=100.0 * float(ok.mean()),
        max_shortfall_pct=100.0 * float(miss_w.max()) / contract_w,
        energy_shortfall_kwh=float((miss_w * dt).sum()) / 3.6e6,
        start_delay_s=start,
        full_delivery_s=full,
        n_samples=int(t_s.size),
    )


def _event_times(t_s: FloatArray, expected_w: FloatArray, delivered_w: FloatArray,
                 contract_w: float) -> tuple[float | None, float | None]:
    """Start delay and time to full delivery after the first excursion beyond tolerance."""
    tol = TOL_FRAC * contract_w
    onset = np.flatnonzero(np.abs(expected_w) > tol)
    if not onset.size:
        return None, None
    i0 = int(onset[0])
    sign = np.sign(expected_w[i0])
    after_d = sign * delivered_w[i0:]
    after_e = sign * expected_w[i0:]
    started = np.flatnonzero(after_d > tol)
    full = np.flatnonzero(after_d >= after_e - tol)
    t0 = float(t_s[i0])
    return (float(t_s[i0 + started[0]]) - t0 if started.size else None,
            float(t_s[i0 + full[0]]) - t0 if full.size else None)


@dataclass(frozen=True, slots=True)
class EventTiming:
    """Timing of one event: a maximal run of samples with |E| > tol and one sign of E.

    Delays are measured from the event's first sample and searched only while the event lasts;
    None means "not reached before the event ended".
    """

    onset_s: float
    end_s: float  # time of the event's last sample
    sign: int  # -1 export asked, +1 import asked
    start_delay_s: float | None  # first sample with sign·D > tol
    full_delivery_s: float | None  # first sample with sign·D >= sign·E - tol


def event_timings(t_s: FloatArray, expected_w: FloatArray, delivered_w: FloatArray,
                  contract_w: float) -> list[EventTiming]:
    """Per-event start delay and time to full delivery (see EventTiming), in time order.

    Vectorised over samples; the Python loop is over events only.
    """
    t = np.asarray(t_s, dtype=np.float64)
    e = np.asarray(expected_w, dtype=np.float64)
    d = np.asarray(delivered_w, dtype=np.float64)
    tol = TOL_FRAC * contract_w
    s = np.where(np.abs(e) > tol, np.sign(e), 0.0)
    if not s.size:
        return []
    cuts = np.flatnonzero(np.diff(s) != 0) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [s.size]))
    out: list[EventTiming] = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        sign = s[a]
        if sign == 0:
            continue
        sd = sign * d[a:b]
        started = np.flatnonzero(sd > tol)
        full = np.flatnonzero(sd >= sign * e[a:b] - tol)
        t0 = float(t[a])
        out.append(EventTiming(
            t0, float(t[b - 1]), int(sign),
            float(t[a + started[0]]) - t0 if started.size else None,
            float(t[a + full[0]]) - t0 if full.size else None))
    return out

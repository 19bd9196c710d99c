"""Per-episode estimation maths of online identification (control.identify).

Pure numpy functions over arrays of rows: which changes are worth an episode, what one closed
episode's record says about the dead time and the ramp (a charge <-> discharge crossing's dead
time becomes t_zero in identify_zero), and the rule that combines a window of per-episode
estimates (`EstimateWindows` holds those windows, the only state here). No I/O, no clock reads,
no Python loop over rows, never raises on odd input (NaN in gives NaN / False out). It decides
nothing about which samples belong to an episode (identify.Identifier does) and writes no fleet
column.

Dead time of an episode, from the bracket [lo, hi] (last unmoved sample, first moved one, s
after the command), the running sums of the in-ramp line fit and the first moved value y1:
the fitted line's zero crossing clipped to [lo - tol / slope, hi]; without a usable slope, hi
backed off by y1 / (the row's ramp figure in force) when y1 is inside the ramp, else the
bracket's middle, and then only if the bracket is at most `max_bracket_s` wide.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from controller.control.identify_zero import crossing

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def tolerance(p0_w: FloatArray, target_w: FloatArray, tol_w: float,
              tol_frac: float) -> FloatArray:
    """Movement / arrival threshold of a change: tol_w or tol_frac of the step, the larger."""
    out: FloatArray = np.maximum(tol_w, tol_frac * np.abs(target_w - p0_w))
    return out


def settled(age_s: FloatArray, *, last_w: FloatArray, old_cmd_w: FloatArray,
            cmd_p_w: FloatArray, bound_s: FloatArray, settle_s: float, tol_w: float,
            tol_frac: float) -> BoolArray:
    """Rows whose previous command surely applied, with the power at it, or is long past.

    Applied: the power moved from where it was to the command, or the command is older than
    the row's dead-time bound (a change within tol shows no movement, and a new command before
    it applied would inherit its effective time: a dead time too short).

    Args:
        age_s: time since the previous command (NaN: never commanded, counts as long past).
        last_w: the latest power samples (the caller checks they are fresh).
        old_cmd_w: the previous commands (NaN: none).
        cmd_p_w: the power seen when they were given.
        bound_s: the rows' dead-time bounds.
        settle_s, tol_w, tol_frac: as identify.IdentParams.
    """
    at_old = np.abs(last_w - old_cmd_w) <= tolerance(last_w, old_cmd_w, tol_w, tol_frac)
    moved_to = np.abs(cmd_p_w - old_cmd_w) > tolerance(cmd_p_w, old_cmd_w, tol_w, tol_frac)
    waited = ~(age_s < bound_s)
    long_ago = ~(age_s < settle_s)
    out: BoolArray = (at_old & (moved_to | waited)) | long_ago | ~np.isfinite(old_cmd_w)
    return out


def usable(p0_w: FloatArray, target_w: FloatArray, idle_w: float, min_step_w: float,  # noqa: PLR0917
           min_cross_w: float, tol_w: FloatArray) -> BoolArray:
    """Changes worth an episode: a step of >= max(min_step_w, tol) on one side of zero, or a
    crossing whose target is >= max(min_cross_w, 2 tol) on the new side (its rise must show)."""
    cross = crossing(p0_w, target_w, idle_w)
    step = np.abs(target_w - p0_w) >= np.maximum(min_step_w, tol_w)
    rise = np.abs(target_w) >= np.maximum(min_cross_w, 2.0 * tol_w)
    out: BoolArray = np.isfinite(p0_w) & np.where(cross, rise, step)
    return out


def fit_line(sums: Sequence[FloatArray], reached: BoolArray,
             tol: FloatArray) -> tuple[FloatArray, FloatArray, BoolArray]:
    """Least-squares line y = a + b tau from running sums: (slope b, zero crossing, usable).

    `sums` are, per row: n, sum tau, sum y, sum tau^2, sum tau y, sum y^2. Usable: >= 2
    in-ramp samples, a positive slope, and either the target reached afterwards (no plateau
    at a hidden limit was fitted) or >= 3 samples on one line (rms <= tol).
    """
    n, st, sy, stt, sty, syy = sums
    den = n * stt - st * st
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        b = np.where(den > 0, (n * sty - st * sy) / np.where(den > 0, den, 1.0), np.nan)
        a = np.where(n > 0, (sy - b * st) / np.where(n > 0, n, 1.0), np.nan)
        sse = np.maximum(syy - a * sy - b * sty, 0.0)
        rms = np.sqrt(sse / np.where(n > 0, n, 1.0))
        zero = -a / b
    straight = (n >= 3) & (rms <= tol)
    ok: BoolArray = ((n >= 2) & np.isfinite(b) & (b > 0) & np.isfinite(zero)
                     & (reached | straight))
    return np.where(ok, b, np.nan), np.where(ok, zero, np.nan), ok


def dead_time(lo_s: FloatArray, hi_s: FloatArray, y1_w: FloatArray,  # noqa: PLR0917
              fit: tuple[FloatArray, FloatArray, BoolArray], tol_w: FloatArray,
              rate_w_s: FloatArray, max_bracket_s: float) -> tuple[FloatArray, BoolArray]:
    """(dead time s after the command, usable) of episodes; see the module docstring.

    Args:
        lo_s, hi_s: last unmoved and first moved sample (hi NaN: never moved).
        y1_w: movement at the first moved sample when it was inside the ramp, else NaN.
        fit: `fit_line`'s (slope, zero crossing, usable).
        tol_w: the episodes' movement thresholds.
        rate_w_s: the rows' ramp figures in force for the movement's direction.
        max_bracket_s: widest bracket accepted without a slope.
    """
    slope, d_fit, ramp_ok = fit
    moved = np.isfinite(hi_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        # the last "unmoved" sample may already be up to tol into the ramp: lo - tol / slope
        lo_fit = lo_s - tol_w / np.where(ramp_ok, slope, 1.0)
        one = np.isfinite(y1_w) & (rate_w_s > 0)
        r1 = np.where(one, rate_w_s, 1.0)
        d_one = np.clip(hi_s - y1_w / r1, lo_s - tol_w / r1, hi_s)
    dead = np.where(ramp_ok, np.clip(d_fit, lo_fit, np.where(moved, hi_s, lo_s)),
                    np.where(one, d_one, 0.5 * (lo_s + hi_s)))
    ok: BoolArray = moved & (ramp_ok | (hi_s - lo_s <= max_bracket_s)) & np.isfinite(dead)
    return dead, ok


def robust_median(values: FloatArray, count: npt.NDArray[np.intp], *, min_changes: int,
                  rel_tol: float, abs_tol: float,
                  offset: FloatArray | float = 0.0) -> tuple[FloatArray, BoolArray]:
    """Per row (median of its window of estimates, replacement rule holds).

    Args:
        values: (rows, window) estimates, NaN where the window is not full yet.
        count: estimates ever pushed per row.
        min_changes: at least this many estimates in the window ...
        rel_tol, abs_tol: ... whose median absolute deviation is within max(rel_tol x (median -
            offset), abs_tol) of the median.
        offset: per row, the part of the median the relative tolerance is not about (the t_c
            within a crossing's t_c + t_zero); 0 elsewhere.
    """
    with np.errstate(invalid="ignore"):
        filled = np.asarray(np.isfinite(values).any(axis=1), dtype=bool)
        safe = np.where(filled[:, None], values, 0.0)
        med = np.nanmedian(safe, axis=1)
        mad = np.nanmedian(np.abs(safe - med[:, None]), axis=1)
    ok: BoolArray = (filled & (np.minimum(count, values.shape[1]) >= min_changes)
                     & (mad <= np.maximum(rel_tol * med, abs_tol)))
    return med, ok


class EstimateWindows:
    """The last `window` per-episode estimates of each named parameter, per row."""

    def __init__(self, names: tuple[str, ...], window: int) -> None:
        self.window = max(int(window), 1)
        self._buf = {k: np.full((0, self.window), np.nan) for k in names}
        self._count = {k: np.zeros(0, dtype=np.intp) for k in names}

    def grow(self, cap: int) -> None:
        """Room for `cap` rows (new rows have no estimates)."""
        for k, old in self._buf.items():
            n = old.shape[0]
            if n >= cap:
                continue
            self._buf[k] = np.concatenate([old, np.full((cap - n, self.window), np.nan)])
            self._count[k] = np.concatenate([self._count[k], np.zeros(cap - n, dtype=np.intp)])

    def count(self, name: str, row: int) -> int:
        """Estimates of `name` ever pushed for `row` (0 for a row never grown to)."""
        cnt = self._count[name]
        return int(cnt[row]) if 0 <= row < cnt.size else 0

    def clear(self, row: int) -> None:
        """Forget every estimate of `row`."""
        for k, buf in self._buf.items():
            if 0 <= row < buf.shape[0]:
                buf[row] = np.nan
                self._count[k][row] = 0

    def push(self, name: str, rows: npt.NDArray[np.intp],
             values: FloatArray) -> tuple[FloatArray, npt.NDArray[np.intp]]:
        """Add one estimate per row (rows distinct); their (windows, counts) afterwards."""
        buf, cnt = self._buf[name], self._count[name]
        buf[rows, cnt[rows] % self.window] = values
        cnt[rows] += 1
        return buf[rows], cnt[rows]

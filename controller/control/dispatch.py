"""Vectorised split of a fleet power response over EVSE rows, in proportion to headroom.

Pure numpy: no I/O, no clock reads, no Python loop over rows. Sign convention: + = charge/import,
- = discharge/export; the response is relative to each row's baseline.

Per eligible row (docs/design.md):
- floor  = -max_discharge_w if the row may discharge, else 0 (never below 0 without discharge);
- limits = [floor, max_charge_w]; the baseline is first clipped into them;
- down headroom = baseline - floor, up headroom = max_charge_w - baseline (both ≥ 0).
A response r < 0 moves every eligible row down by the same fraction min(1, |r| / Σ down) of its
own headroom (r > 0 likewise up). Rows therefore saturate together, the sum equals r whenever
|r| fits in the headroom, and no row ever leaves its limits. Ineligible rows, and rows with a
non-finite baseline or limit, keep their baseline untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Split:
    """Result of a split: targets plus the fleet's headroom (magnitudes, W) in each direction."""

    target_w: FloatArray
    down_w: float  # how far the eligible rows can go below their baselines together
    up_w: float  # how far above


def _bounds(baseline_w: FloatArray, max_charge_w: FloatArray, max_discharge_w: FloatArray,
            can_discharge: BoolArray, eligible: BoolArray
            ) -> tuple[BoolArray, FloatArray, FloatArray, FloatArray]:
    """(usable rows, clipped baseline, floor, ceiling); headroom is zero outside usable rows."""
    base = np.asarray(baseline_w, dtype=np.float64)
    ceil = np.maximum(np.asarray(max_charge_w, dtype=np.float64), 0.0)
    floor = np.where(can_discharge, -np.abs(np.asarray(max_discharge_w, dtype=np.float64)), 0.0)
    usable = (np.asarray(eligible, dtype=bool) & np.isfinite(base) & np.isfinite(ceil)
              & np.isfinite(floor))
    floor = np.where(usable, floor, 0.0)
    ceil = np.where(usable, np.maximum(ceil, floor), 0.0)
    clipped = np.where(usable, np.clip(np.where(usable, base, 0.0), floor, ceil), 0.0)
    return usable, clipped, floor, ceil


def split_with_headroom(  # noqa: PLR0917 - signature fixed by docs/design.md
        response_w: float, baseline_w: FloatArray, max_charge_w: FloatArray,
        max_discharge_w: FloatArray, can_discharge: BoolArray, eligible: BoolArray) -> Split:
    """Split `response_w` over the eligible rows in proportion to headroom, saturating.

    Args:
        response_w: signed fleet response relative to baseline (W). Non-finite means 0.
        baseline_w: per-row setpoint without frequency response (W).
        max_charge_w: per-row charge limit (magnitude, W).
        max_discharge_w: per-row discharge limit (magnitude, W); ignored where not can_discharge.
        can_discharge: rows that may export (go below 0 W).
        eligible: rows that take part (e.g. online with an active transaction).

    Returns:
        Split with `target_w` (float64, one per row) and the total down/up headroom.
    """
    usable, base, floor, ceil = _bounds(baseline_w, max_charge_w, max_discharge_w,
                                        can_discharge, eligible)
    down = base - floor  # zero on unusable rows (all three are 0 there)
    up = ceil - base
    down_w = float(down.sum())
    up_w = float(up.sum())
    r = float(response_w) if np.isfinite(response_w) else 0.0
    if r < 0 and down_w > 0:
        frac = min(1.0, -r / down_w)
        moved = base - frac * down
    elif r > 0 and up_w > 0:
        frac = min(1.0, r / up_w)
        moved = base + frac * up
    else:
        moved = base
    # Guard float rounding at the ends so a target never leaves its row's limits.
    moved = np.clip(moved, floor, ceil)
    target = np.where(usable, moved, np.asarray(baseline_w, dtype=np.float64))
    return Split(target.astype(np.float64, copy=False), down_w, up_w)


def split_proportional(  # noqa: PLR0917 - signature fixed by docs/design.md
        response_w: float, baseline_w: FloatArray, max_charge_w: FloatArray,
        max_discharge_w: FloatArray, can_discharge: BoolArray, eligible: BoolArray) -> FloatArray:
    """Per-row targets (W) for `response_w`; see `split_with_headroom` and the module docstring."""
    return split_with_headroom(response_w, baseline_w, max_charge_w, max_discharge_w,
                               can_discharge, eligible).target_w


def headroom_w(baseline_w: FloatArray, max_charge_w: FloatArray, max_discharge_w: FloatArray,
               can_discharge: BoolArray, eligible: BoolArray) -> tuple[float, float]:
    """(down_w, up_w): how far (magnitudes, W) the eligible rows can move from baseline together."""
    split = split_with_headroom(0.0, baseline_w, max_charge_w, max_discharge_w, can_discharge,
                                eligible)
    return split.down_w, split.up_w

"""How large a standing offset the compensated dispatch needs: sized to the contract.

Pure numpy: no I/O, no clock reads, no loop over rows (one vectorised pass over a small grid of
candidate offsets). The compensated dispatch (control.dispatch_comp, READINESS) keeps each
discharge-capable row flowing at +o (charging half) or -o (discharging half) so change delays
t_c apply instead of start delays t_a. Every watt of o costs conversion losses in both
directions, so o should be no larger than what makes the contract deliverable:

    the smallest o in [min_w, max_frac x row limit] such that, for each contracted direction,
    the rows' predicted swing by that direction's full-delivery deadline covers
    (1 + headroom_frac) x the contracted power.

Predicted swing of one row by deadline T (dynamics already made pessimistic by the caller):
time to move tau = max(0, T - delivery delay - t_c); a row moving toward zero (the charging
half asked for export, the discharging half for import) gives min(o - keep_w, ramp_down x tau);
a row moving away from zero gives min(limit - o, ramp_up x tau) (|p| rises at ramp_up and falls
at ramp_down, SPEC §2.2). Rows are never assumed to cross zero in time (t_zero >= 0.5 s, seed
Table 11 t_a). When no candidate suffices the contract is not deliverable by its deadline from
readiness alone (`Readiness.sufficient` says so) and the caller's fallback offset is used:
a larger one would buy part of the deadline at more losses, and in an overloaded fleet larger
offsets made side swaps (ENERGY) unbalance the site beyond the tube (tests/unit/control).

Why it matters (bench/dispatch_matrix.py --uniform): a fixed 5 kW offset left 60 Tesla M3
(0.73 kW/s ramp up, 552 kW/s down) 30 kW short of a 150 kW DC contract on the fast side, while
60 Ariyas (6.59 kW/s up) need far less than 5 kW and paid its losses for nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from controller.control.dynamics import Dynamics
    from controller.control.services import ContractedService

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


Steps = tuple[tuple[float, float], ...]  # (deadline s, W due by then), deadlines ascending


@dataclass(frozen=True, slots=True)
class Need:
    """What the contracts ask of each direction: for each distinct full-delivery deadline, the
    power (W >= 0) of the contracts due by then. DC-L 100 kW + DR-L 50 kW is
    ((1 s, 100 kW), (10 s, 150 kW)): DR's part is not due within DC's second."""

    down: Steps = ()  # export: Low products and FCR
    up: Steps = ()  # import: High products and FCR


def _steps(contracts: Sequence[ContractedService]) -> Steps:
    deadlines = sorted({c.definition.full_s for c in contracts})
    return tuple((d, float(sum(c.contract_w for c in contracts if c.definition.full_s <= d)))
                 for d in deadlines)


def need_from(contracts: Sequence[ContractedService]) -> Need:
    """Responses add (SPEC §2.1): per direction, the power due by each deadline."""
    return Need(_steps([c for c in contracts if c.definition.direction != "high"]),
                _steps([c for c in contracts if c.definition.direction != "low"]))


@dataclass(frozen=True, slots=True)
class Readiness:
    """The chosen offset (W) and whether it covers the need in both directions."""

    offset_w: float
    sufficient: bool


def swing_w(offsets_w: FloatArray, side: FloatArray, dyn: Dynamics, rows: BoolArray, *,
            keep_w: float, max_frac: float, delay_s: float,
            deadline_s: float) -> tuple[FloatArray, FloatArray]:
    """(down, up) swing in W of `rows` by `deadline_s`, one value per candidate offset.

    `side` is +1 (charging half) / -1 (discharging half) per row; each row's offset is the
    candidate capped at `max_frac` of its limit on its side, and the larger half scaled down
    so the halves cancel, as the dispatch does (`_offsets`): one free row holds no offset.
    """
    tau = np.maximum(deadline_s - delay_s - dyn.t_c_s, 0.0)[rows]
    fall_w, rise_w = dyn.ramp_down_w_s[rows] * tau, dyn.ramp_up_w_s[rows] * tau
    chg = side[rows] > 0
    limit = np.where(chg, dyn.max_charge_w[rows], dyn.max_discharge_w[rows])
    o = np.minimum(offsets_w[:, None], max_frac * limit[None, :])  # (K, n)
    pos, neg = np.where(chg, o, 0.0).sum(axis=1), np.where(chg, 0.0, o).sum(axis=1)
    both = np.minimum(pos, neg)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(chg, np.where(pos > 0, both / pos, 0.0)[:, None],
                         np.where(neg > 0, both / neg, 0.0)[:, None])
    o = o * scale
    toward_zero = np.minimum(np.maximum(o - keep_w, 0.0), fall_w)
    away = np.minimum(np.maximum(limit - o, 0.0), rise_w)
    down = np.where(chg, toward_zero, away).sum(axis=1)
    up = np.where(chg, away, toward_zero).sum(axis=1)
    return down, up


def size_offset(need: Need, side: FloatArray, dyn: Dynamics, rows: BoolArray, *,
                keep_w: float, min_w: float, max_frac: float, delay_s: float,
                headroom_frac: float, fallback_w: float, steps: int = 32) -> Readiness:
    """The smallest offset on a `steps`-point grid that covers `need` (module docstring)."""
    if not rows.any():
        return Readiness(min_w, not any(p > 0 for _, p in (*need.down, *need.up)))
    limit = np.where(side > 0, dyn.max_charge_w, dyn.max_discharge_w)[rows]
    top_w = max(min_w, max_frac * float(limit.max()))
    grid = np.linspace(min_w, top_w, steps)
    kw = {"keep_w": keep_w, "max_frac": max_frac, "delay_s": delay_s}
    ok = np.ones(steps, dtype=bool)
    for way, due in ((0, need.down), (1, need.up)):
        for deadline_s, power_w in due:
            swing = swing_w(grid, side, dyn, rows, deadline_s=deadline_s, **kw)[way]
            ok &= swing >= (1 + headroom_frac) * power_w
    if ok.any():
        return Readiness(float(grid[int(np.argmax(ok))]), True)
    return Readiness(fallback_w, False)

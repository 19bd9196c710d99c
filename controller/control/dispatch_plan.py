"""POSTURE and DEADLINE steps of the compensated dispatch: the split, the plan, sticky moves.

Pure numpy functions over rows (dispatch_comp.CompensatedDispatch calls them once per tick; its
docstring tells the strategy): no state, no I/O, no clock reads (`now_s` is an argument), no
Python loop over rows. They must not decide sides, offsets or feedback. Sign: + = charge/import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from controller.control.dynamics import predict

if TYPE_CHECKING:
    from controller.control.dynamics import Dynamics, RowState

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
REACHED_W = 1.0  # a prediction within this of the posture counts as "reached"


def plan(dyn: Dynamics, st: RowState, now_s: float, usable: BoolArray,  # noqa: PLR0917
         posture: FloatArray, lo_lim: FloatArray, hi_lim: FloatArray, target_sum: float,
         crossing: BoolArray, *, early: float, delay_s: float, horizon_s: float,
         ) -> tuple[FloatArray, bool, float]:
    """Commands that make the predicted sum at the horizon the target; (cmd, sat, need).

    Args:
        dyn: row dynamics (limits already cut for energy, pessimistic by the margin).
        st: the replica of each row, at now_s.
        now_s: this tick's time (s).
        usable: rows the dispatch commands.
        posture: the steady-state split (W).
        lo_lim: same-side low limit per row (W).
        hi_lim: same-side high limit per row (W).
        target_sum: the sum to reach at the horizon (W).
        crossing: rows of a pair swapping sides (ENERGY); ignored unless sized to the rows.
        early: earliest / latest dead time of the planning spread.
        delay_s: CSMS -> charger delivery (s).
        horizon_s: planning horizon (s).
    """
    arrive = now_s + delay_s
    t_end = now_s + horizon_s
    nat = predict(dyn, st, now_s, posture, arrive, t_end, early)
    lo = np.minimum(predict(dyn, st, now_s, lo_lim, arrive, t_end, early), nat)
    hi = np.maximum(predict(dyn, st, now_s, hi_lim, arrive, t_end, early), nat)
    # a pair swapping sides (ENERGY) crosses zero in step: count it at its command, give it
    # no share, or the others chase its (cancelling) dead times
    crossing = crossing if crossing.size == nat.size else np.zeros_like(usable)
    nat = np.where(crossing, posture, nat)
    need = target_sum - float(nat[usable].sum())
    slack = np.where(usable & ~crossing, np.where(need < 0, nat - lo, hi - nat), 0.0)
    frac, sat = _fraction(need, float(slack.sum()))
    delta = np.sign(need) * frac * slack
    reached = np.abs(nat - posture) <= REACHED_W
    cmd = np.where(reached, posture + delta,
                   np.where(np.abs(delta) > REACHED_W, nat + delta, posture))
    # a posture across zero (the sustained part beyond the same side) widens the range
    lo_cmd, hi_cmd = np.minimum(lo_lim, posture), np.maximum(hi_lim, posture)
    limit = lo_cmd if need < 0 else hi_cmd
    cmd = np.where(sat & (slack > REACHED_W), limit, cmd)
    return dyn.clamp(np.clip(cmd, lo_cmd, hi_cmd)), sat, need


def sticky(cmd: FloatArray, last: FloatArray, usable: BoolArray,  # noqa: PLR0917
           lo_lim: FloatArray, hi_lim: FloatArray, min_step_w: float) -> FloatArray:
    """Moves below min_step_w stay at the last offer; their sum goes to the roomiest row.

    Without this, sixty rows each asked to move 80 W would leave 4.8 kW undelivered (the
    controller never sends them) and the integrator would wind up chasing it.
    """
    small = usable & np.isfinite(last) & (np.abs(cmd - last) < min_step_w)
    kept = np.where(small, last, cmd)
    residual = float((cmd - kept)[usable].sum())
    if abs(residual) < min_step_w:
        return kept
    room = np.where(usable, hi_lim - kept if residual > 0 else kept - lo_lim, -np.inf)
    i = int(np.argmax(room))
    kept[i] = np.clip(kept[i] + residual, lo_lim[i], hi_lim[i])
    return kept


def posture(r: float, base: FloatArray, lo_lim: FloatArray, hi_lim: FloatArray,  # noqa: PLR0917
            x_down: FloatArray, x_up: FloatArray) -> tuple[FloatArray, float, float]:
    """Steady-state split of r; (targets, total down headroom, total up headroom).

    First every row moves the same fraction of its same-side headroom; what that cannot hold
    goes across zero, in proportion to each row's headroom on the other side.
    """
    down, up = base - lo_lim, hi_lim - base
    d_w, u_w = float(down.sum()), float(up.sum())
    xd_w, xu_w = float(x_down.sum()), float(x_up.sum())
    out = base.copy()
    if r < 0 and d_w > 0:
        out = base - min(1.0, -r / d_w) * down
        if -r > d_w and xd_w > 0:
            out = lo_lim - min(1.0, (-r - d_w) / xd_w) * x_down
    elif r > 0 and u_w > 0:
        out = base + min(1.0, r / u_w) * up
        if r > u_w and xu_w > 0:
            out = hi_lim + min(1.0, (r - u_w) / xu_w) * x_up
    return out, d_w + xd_w, u_w + xu_w


def _fraction(need: float, slack_w: float) -> tuple[float, bool]:
    """(share of the slack to use, saturated?)."""
    if slack_w <= 0:
        return 0.0, need != 0
    f = abs(need) / slack_w
    return min(1.0, f), f >= 1.0

"""The zero-crossing delay t_zero from charge <-> discharge changes (for control.identify).

Pure numpy over arrays of rows: which changes cross zero, when such a change may open an
episode, and what its dead time says about t_zero. No state, no I/O, no clock reads (`now_s`
is an argument), no Python loop over rows, never raises on odd input (NaN in gives NaN / False
out). It writes no fleet column; identify.Identifier applies these rules and combines the
estimates (identify_fit).

The plant's and dynamics.py's rule: a command that asks for the opposite sign of the power
flowing (|p0| >= IDLE_W, |target| >= IDLE_W) takes effect after t_c + t_zero; then the power
ramps to 0 at ramp_down and on at ramp_up to the new side with no pause at zero. A crossing
that arrives while a same-side command is still pending replaces it and still waits its own
full t_c + t_zero (the plant's zero-crossing exception to the latest-value rule).

Observed: the episode's movement is measured from 0 toward the target, so its "dead time" d is
when the power reaches zero and starts on the new side (the first sample beyond tol on the new
side, backed off or fitted like any dead time, the new side's slope being ramp_up). A crossing
closed before the power shows on the new side (a new command, the timeout) gives nothing. Each
crossing gives a total
    t_c + t_zero = d - transport delay - |p0| / ramp_down        (`crossing_total_s`)
with the ramp_down in force when it closes (the model's time from leaving p0 to 0). Totals are
combined like any estimate (the relative tolerance applies to the t_zero part), and the fleet's
t_zero is their median minus the t_c in force, written again whenever t_c changes: crossings
seen before t_c was identified are not biased by its prior, and the model's crossing time
t_c + t_zero stays the measured one. A vehicle that leaves at t_c and waits at zero instead
gives the same t_zero: the extra time of a crossing, wherever the vehicle spends it.

When (`leaving`): besides a row settled at its previous command, a crossing also opens while
the row is still within `near_w` of a previous command on the same side (the compensated
dispatch's swap ramps a pair's offsets down in 100 W steps every ~0.25 s and crosses right
after the last one, which may still be in transit): p0 is then that previous command.

Limits: an error in the ramp_down in force goes into the total (|p0| x its relative error /
ramp_down: milliseconds for the dispatch's +-500 W swaps, not for a crossing from 10 kW with an
unidentified ramp); the old side's leg itself is not measured, nor when the power leaves p0;
with `leaving`, a previous command that never applied puts up to near_w / ramp_down into the
total; a vehicle that refuses the new side (SoC bound, no export) gives nothing; a t_c in force
above the crossings' total clips t_zero to 0.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def crossing(p0_w: FloatArray, target_w: FloatArray, idle_w: float) -> BoolArray:
    """Changes that need the zero-crossing dead time (plant.VehiclePlant.command's rule)."""
    out: BoolArray = ((np.abs(p0_w) >= idle_w) & (np.abs(target_w) >= idle_w)
                      & (p0_w * target_w < 0))
    return out


def leaving(last_w: FloatArray, old_cmd_w: FloatArray, target_w: FloatArray, *,
            idle_w: float, near_w: float) -> BoolArray:
    """Crossings asked of rows flowing toward a previous command on the same side and within
    `near_w` of it: they may open an episode with p0 = that command (module docstring).

    Args:
        last_w: the rows' latest power samples (the caller checks they are fresh).
        old_cmd_w: their previous commands (NaN: none).
        target_w: the new commands.
        idle_w: below this a row is idle (dynamics.IDLE_W).
        near_w: how far short of its previous command a row may still be.
    """
    out: BoolArray = (crossing(last_w, target_w, idle_w) & crossing(old_cmd_w, target_w, idle_w)
                      & (np.abs(last_w - old_cmd_w) <= near_w))
    return out


def crossing_total_s(dead_s: FloatArray, p0_w: FloatArray,
                     ramp_down_w_s: FloatArray) -> FloatArray:
    """t_c + t_zero from a crossing's time to the new side (transport delay already off).

    dead_s - |p0_w| / ramp_down_w_s: the time before the power leaves the old side, in the
    model. NaN where the ramp figure is not positive.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        down_s = np.abs(p0_w) / np.where(ramp_down_w_s > 0, ramp_down_w_s, np.nan)
    out: FloatArray = dead_s - down_s
    return out


def t_zero_s(total_s: FloatArray, t_c_s: FloatArray, bounds_s: tuple[float, float]) -> FloatArray:
    """The fleet's t_zero: the crossings' median total less the t_c in force, within bounds."""
    out: FloatArray = np.clip(total_s - t_c_s, *bounds_s)
    return out

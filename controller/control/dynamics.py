"""Per-EVSE response dynamics model and predictor, vectorised over fleet rows.

Pure numpy over struct-of-arrays: no I/O, no clock reads (times are arguments), no Python loop
over rows. This is the CONTROLLER's model of each vehicle (priors from the model library, seed
Table 11, NEUTRAL when unknown); the simulator's plant (sim_chargers.plant) is the world it is
tested against and is never imported here.

Model (SPEC §2.2, the same rules as the plant):
- a command is a setpoint in W clamped to [-max_discharge_w, max_charge_w], rounded to the
  EVSE's `quantum_w` when that is > 0;
- it takes effect after a dead time: `t_a_s` when the vehicle is idle (|p| < IDLE_W), `t_c_s`
  while power flows, plus `t_zero_s` when it asks for the opposite sign of the power flowing;
- a command arriving while another waits out its dead time replaces the waiting target and keeps
  the earlier effective time (latest-value slot, SPEC §2.4);
- after the dead time |p| rises at `ramp_up_w_s` and falls at `ramp_down_w_s`; crossing zero goes
  down to 0 and then up.

`RowState` is the controller's replica of where each row is (power, target in force, pending
target and its effective time); `advance` moves it through time, `accept` applies commands that
reached the vehicles, `predict` answers "what power at time t_end if this command arrives at
`arrive_s`".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from controller.control.vehicles import NEUTRAL, VehicleModel

if TYPE_CHECKING:
    from controller.control.fleet import FleetState

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

IDLE_W = 1.0  # |p| below this counts as idle and the start delay t_a applies (as the plant)


@dataclass(frozen=True, eq=False)
class Dynamics:
    """Per-row dynamics arrays (s, W/s, W; magnitudes >= 0), all of one length."""

    t_a_s: FloatArray
    t_c_s: FloatArray
    t_zero_s: FloatArray
    ramp_up_w_s: FloatArray
    ramp_down_w_s: FloatArray
    max_charge_w: FloatArray
    max_discharge_w: FloatArray  # 0 where the row may not export
    quantum_w: FloatArray  # 0 = continuous

    def __post_init__(self) -> None:
        n = None
        for f in fields(self):
            arr = np.asarray(getattr(self, f.name), dtype=np.float64).reshape(-1)
            object.__setattr__(self, f.name, arr)
            if n is not None and arr.shape[0] != n:
                raise ValueError(f"Dynamics.{f.name}: length {arr.shape[0]} != {n}")
            n = arr.shape[0]

    @property
    def n(self) -> int:
        return int(self.t_a_s.shape[0])

    @classmethod
    def from_models(cls, models: Sequence[VehicleModel | None], max_charge_w: npt.ArrayLike,
                    max_discharge_w: npt.ArrayLike) -> Dynamics:
        """Priors from library models (None = unknown vehicle: vehicles.NEUTRAL)."""
        ms = [m if m is not None else NEUTRAL for m in models]

        def col(get: str) -> FloatArray:
            return np.array([getattr(m, get) for m in ms], dtype=np.float64)

        return cls(col("t_a_s"), col("t_c_s"), col("t_zero_cross_s"), col("ramp_up_w_s"),
                   col("ramp_down_w_s"), np.asarray(max_charge_w, dtype=np.float64),
                   np.asarray(max_discharge_w, dtype=np.float64), np.zeros(len(ms)))

    @classmethod
    def from_fleet(cls, fleet: FleetState) -> Dynamics:
        """The fleet's dynamics columns (copies), limits from the fleet's ratings."""
        lim_dis = np.where(fleet.can_discharge, fleet.max_discharge_w, 0.0)
        return cls(fleet.t_a_s.copy(), fleet.t_c_s.copy(), fleet.t_zero_s.copy(),
                   fleet.ramp_up_w_s.copy(), fleet.ramp_down_w_s.copy(),
                   fleet.max_charge_w.copy(), lim_dis, fleet.quantum_w.copy())

    def pessimistic(self, margin_frac: float) -> Dynamics:
        """Dead times x (1 + m), ramp rates x (1 - m): a bound for a spread of +-m."""
        m = float(np.clip(margin_frac, 0.0, 0.9))
        return replace(self, t_a_s=self.t_a_s * (1 + m), t_c_s=self.t_c_s * (1 + m),
                       t_zero_s=self.t_zero_s * (1 + m), ramp_up_w_s=self.ramp_up_w_s * (1 - m),
                       ramp_down_w_s=self.ramp_down_w_s * (1 - m))

    def clamp(self, setpoint_w: FloatArray) -> FloatArray:
        """Setpoints within the row limits, on the row's quantisation grid."""
        q = self.quantum_w
        sp = np.where(q > 0, np.round(setpoint_w / np.where(q > 0, q, 1.0)) * q, setpoint_w)
        return np.clip(sp, -self.max_discharge_w, self.max_charge_w)


@dataclass(eq=False)
class RowState:
    """Replica of each row's state: power now, target in force, pending target and when."""

    p_w: FloatArray
    target_w: FloatArray
    pending_w: FloatArray
    pending_at_s: FloatArray  # latest time the pending target takes over (inf: none pending)
    # earliest time it may take over (= pending_at_s unless accept got early_ratio < 1): before
    # it the vehicle surely still waits, so a new command surely inherits the dead time
    pending_from_s: FloatArray

    @classmethod
    def idle(cls, n: int) -> RowState:
        return cls(np.zeros(n), np.zeros(n), np.zeros(n), np.full(n, np.inf),
                   np.full(n, np.inf))

    def copy(self) -> RowState:
        return RowState(self.p_w.copy(), self.target_w.copy(), self.pending_w.copy(),
                        self.pending_at_s.copy(), self.pending_from_s.copy())


def ramp(p_w: FloatArray, target_w: FloatArray, tau_s: FloatArray | float, up_w_s: FloatArray,
         down_w_s: FloatArray) -> FloatArray:
    """Power after ramping toward target for tau_s (crossing zero: down to 0, then up)."""
    tau = np.maximum(tau_s, 0.0)
    cross = p_w * target_w < 0
    first = np.where(cross, 0.0, target_w)
    rate = np.where(np.abs(first) > np.abs(p_w), up_w_s, down_w_s)
    lim = rate * tau
    p1 = p_w + np.clip(first - p_w, -lim, lim)
    rem = np.maximum(np.where(cross, tau - np.abs(p_w) / down_w_s, 0.0), 0.0)
    lim2 = up_w_s * rem
    out: FloatArray = np.where(cross & (rem > 0), np.clip(target_w, -lim2, lim2), p1)
    return out


def advance(dyn: Dynamics, st: RowState, t0_s: float, t1_s: float) -> RowState:
    """The replica at t1_s from t0_s (a pending target takes over at its effective time)."""
    dt = t1_s - t0_s
    if not dt > 0:
        return st.copy()
    at = st.pending_at_s
    due = at <= t1_s
    seg1 = np.where(due, np.clip(at - t0_s, 0.0, dt), dt)
    p1 = ramp(st.p_w, st.target_w, seg1, dyn.ramp_up_w_s, dyn.ramp_down_w_s)
    tgt = np.where(due, st.pending_w, st.target_w)
    p2 = ramp(p1, tgt, dt - seg1, dyn.ramp_up_w_s, dyn.ramp_down_w_s)
    return RowState(p2, tgt, st.pending_w.copy(), np.where(due, np.inf, at),
                    np.where(due, np.inf, st.pending_from_s))


def dead_time_s(dyn: Dynamics, p_w: FloatArray, command_w: FloatArray) -> FloatArray:
    """Dead time of a new command given the power flowing when it arrives."""
    flowing = np.abs(p_w) >= IDLE_W
    zero = flowing & (np.abs(command_w) >= IDLE_W) & (p_w * command_w < 0)
    out: FloatArray = (np.where(flowing, dyn.t_c_s, dyn.t_a_s)
                       + np.where(zero, dyn.t_zero_s, 0.0))
    return out


def accept(dyn: Dynamics, st: RowState, command_w: FloatArray, arrive_s: float,  # noqa: PLR0917
           rows: BoolArray | None = None, early_ratio: float = 1.0) -> RowState:
    """The replica after `command_w` reached the rows in `rows` (all rows if None) at arrive_s.

    `st` must be the state AT arrive_s. Non-finite commands are ignored (as the plant does).
    `early_ratio` (<= 1) scales the dead time to the earliest the vehicle may act: with
    pessimistic `dyn` and an uncertain vehicle, a pending command may already have been applied
    after `pending_from_s`, and a new command then waits a full dead time of its own.
    """
    cmd = dyn.clamp(np.asarray(command_w, dtype=np.float64))
    take = np.isfinite(cmd) if rows is None else (rows & np.isfinite(cmd))
    has = np.isfinite(st.pending_at_s)
    same = ~has & (cmd == st.target_w)  # a refresh of the target in force changes nothing
    take = take & ~same
    dead = dead_time_s(dyn, st.p_w, cmd)
    at_new = arrive_s + dead
    # latest value wins, earlier effective time kept (plant rule); a zero crossing the pending
    # command did not need postpones it to the new command's own effective time
    flowing = np.abs(st.p_w) >= IDLE_W
    zero_new = flowing & (np.abs(cmd) >= IDLE_W) & (st.p_w * cmd < 0)
    zero_old = flowing & (np.abs(st.pending_w) >= IDLE_W) & (st.p_w * st.pending_w < 0)
    certain = has & (arrive_s < st.pending_from_s)  # surely still waiting: inherits
    at = np.where(certain, np.where(zero_new & ~zero_old, np.maximum(st.pending_at_s, at_new),
                                    st.pending_at_s), at_new)
    start = np.where(certain, st.pending_from_s, arrive_s + dead * min(early_ratio, 1.0))
    # maybe applied already: count the old pending target as in force
    target = np.where(take & has & ~certain, st.pending_w, st.target_w)
    return RowState(st.p_w.copy(), target, np.where(take, cmd, st.pending_w),
                    np.where(take, at, st.pending_at_s), np.where(take, start,
                                                                  st.pending_from_s))


def predict(dyn: Dynamics, st: RowState, now_s: float, command_w: FloatArray,  # noqa: PLR0917
            arrive_s: float, t_end_s: float, early_ratio: float = 1.0) -> FloatArray:
    """Power (W) of each row at t_end_s if `command_w` arrives at arrive_s (>= now_s).

    NaN in `command_w` means "no new command" for that row; `early_ratio` as in `accept`.
    """
    if t_end_s <= arrive_s:
        return advance(dyn, st, now_s, t_end_s).p_w
    at_arrival = advance(dyn, st, now_s, arrive_s)
    after = accept(dyn, at_arrival, command_w, arrive_s, early_ratio=early_ratio)
    return advance(dyn, after, arrive_s, t_end_s).p_w

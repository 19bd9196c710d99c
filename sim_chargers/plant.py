"""Vectorised vehicle plant: dead times, direction-dependent ramps, charger limits and SoC.

PURE numpy over struct-of-arrays state, one row per vehicle. No I/O, no asyncio, no clock reads:
every call takes `now_s`. No per-vehicle Python loop (issue 3 reuses this for fast-time runs of
1000 vehicles x 1 h x 20 Hz). Sign: + = vehicle charges (site imports), - = discharges.

Model (SPEC §2.2, seed Table 11):
- A command is a setpoint in W, clamped to [-max_discharge_w, max_charge_w].
- Dead time before it takes effect: `t_a_s` if the vehicle is idle (|p| < 1 W) when the command
  arrives, `t_c_s` if power is flowing, plus `t_zero_s` when the target has the opposite sign of
  the power flowing (charge <-> discharge switch).
- Latest wins, earlier effective time kept: a command arriving while another is still in its dead
  time replaces the pending target but keeps the pending effective time (the vehicle is already
  processing a change; a controller refreshing faster than the dead time must not postpone the
  response forever, SPEC §2.4 latest-value slot). Exception: if the new command needs the
  zero-crossing dead time and the pending one did not, the effective time becomes the later of
  the pending one and now + the new command's full dead time.
- After the dead time the power ramps toward the target: |p| rising at `ramp_up_w_s`, falling at
  `ramp_down_w_s`; crossing zero ramps down to 0 at ramp_down, then up at ramp_up. A step that
  contains an effective time is split there (exact piecewise ramps, no step-size artefact).
- Conversion losses: `power_w` is GRID-side. The battery receives grid energy x `efficiency`
  on charge and gives grid energy / `efficiency` on discharge (one-way efficiency; the seed gives
  94.7-99 % for bidirectional on-board chargers). SoC integrates the BATTERY-side energy
  (trapezoidal over each segment) / capacity_wh / 3600; `losses_wh` accumulates the difference
  per vehicle. At SoC >= 1 charging stops and at SoC <= 0
  discharging stops: the power is forced to 0 in that step and the target is held at 0 in that
  direction until the SoC moves away from the bound.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

IDLE_W = 1.0  # |p| below this counts as idle: the start delay t_a applies (SPEC §2.2)


class PlantParamsError(ValueError):
    """Plant parameter arrays are inconsistent (shape, non-finite, out of range)."""


@dataclass(frozen=True, eq=False)
class PlantParams:
    """Per-vehicle parameter arrays, all of the same length n (W, s, Wh; magnitudes >= 0)."""

    t_a_s: FloatArray  # start delay from idle
    t_c_s: FloatArray  # change delay while power flows
    t_zero_s: FloatArray  # extra dead time for a charge <-> discharge switch
    ramp_up_w_s: FloatArray  # |p| rising
    ramp_down_w_s: FloatArray  # |p| falling
    max_charge_w: FloatArray
    max_discharge_w: FloatArray
    capacity_wh: FloatArray
    efficiency: FloatArray  # one-way grid <-> battery conversion efficiency (1.0 = lossless)

    def __post_init__(self) -> None:
        n: int | None = None
        for f in fields(self):
            arr = np.array(getattr(self, f.name), dtype=np.float64, copy=True).reshape(-1)
            object.__setattr__(self, f.name, arr)
            if n is None:
                n = arr.shape[0]
            if arr.shape[0] != n:
                raise PlantParamsError(f"{f.name}: length {arr.shape[0]} != {n}")
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise PlantParamsError(f"{f.name}: values must be finite and >= 0")
        for name in ("ramp_up_w_s", "ramp_down_w_s", "capacity_wh", "efficiency"):
            if np.any(getattr(self, name) <= 0):
                raise PlantParamsError(f"{name}: values must be > 0")
        if np.any(self.efficiency > 1):
            raise PlantParamsError("efficiency: values must be <= 1")

    @property
    def n(self) -> int:
        return int(self.t_a_s.shape[0])

    @classmethod
    def uniform(cls, n: int, *, t_a_s: float, t_c_s: float, t_zero_s: float,
                ramp_up_w_s: float, ramp_down_w_s: float, max_charge_w: float,
                max_discharge_w: float, capacity_wh: float,
                efficiency: float = 1.0) -> PlantParams:
        """n identical vehicles (tests, benchmarks)."""
        def full(v: float) -> FloatArray:
            return np.full(n, v, dtype=np.float64)
        return cls(full(t_a_s), full(t_c_s), full(t_zero_s), full(ramp_up_w_s),
                   full(ramp_down_w_s), full(max_charge_w), full(max_discharge_w),
                   full(capacity_wh), full(efficiency))


def _ramp(p: FloatArray, tgt: FloatArray, tau: FloatArray, up: FloatArray,
          down: FloatArray) -> FloatArray:
    """Move p toward tgt for tau seconds (vectorised; crossing zero goes down then up)."""
    cross = p * tgt < 0
    first = np.where(cross, 0.0, tgt)
    rate = np.where(np.abs(first) > np.abs(p), up, down)
    lim = rate * tau
    p1 = p + np.clip(first - p, -lim, lim)
    rem = np.where(cross, tau - np.abs(p) / down, 0.0)
    rem = np.maximum(rem, 0.0)
    lim2 = up * rem
    return np.where(cross & (rem > 0), np.clip(tgt, -lim2, lim2), p1)


class VehiclePlant:
    """Vehicles as arrays. `power_w` and `soc_frac` are the current arrays: read, never mutate."""

    def __init__(self, params: PlantParams, soc_frac: npt.ArrayLike, *,
                 now_s: float = 0.0) -> None:
        self.params = params
        n = params.n
        soc = np.array(soc_frac, dtype=np.float64, copy=True).reshape(-1)
        if soc.shape[0] != n or not np.all(np.isfinite(soc)):
            raise PlantParamsError(f"soc_frac: need {n} finite values")
        self._soc = np.clip(soc, 0.0, 1.0)
        self._p = np.zeros(n)
        self._target = np.zeros(n)  # target the ramp follows now
        self._pending = np.zeros(n)  # target waiting for its dead time
        self._pending_at = np.full(n, np.inf)  # effective time of the pending target (inf none)
        self._pending_zero = np.zeros(n, dtype=bool)  # pending dead time includes t_zero
        self._t_s = float(now_s)
        self._losses_wh = np.zeros(n)

    @property
    def n(self) -> int:
        return self.params.n

    @property
    def power_w(self) -> FloatArray:
        return self._p

    @property
    def soc_frac(self) -> FloatArray:
        return self._soc

    @property
    def setpoint_w(self) -> FloatArray:
        """Latest commanded (clamped) setpoint per vehicle, pending or in effect."""
        return np.where(np.isfinite(self._pending_at), self._pending, self._target)

    @property
    def losses_wh(self) -> FloatArray:
        """Conversion losses so far per vehicle (Wh, >= 0): grid-side minus battery-side energy."""
        return self._losses_wh

    @property
    def time_s(self) -> float:
        return self._t_s

    def command(self, rows: npt.ArrayLike, setpoint_w: npt.ArrayLike, now_s: float) -> None:
        """Give vehicles `rows` a new setpoint at `now_s` (plant is first advanced to now_s).

        Non-finite setpoints are ignored (the vehicle keeps its previous command).
        """
        self.step(now_s)
        r = np.asarray(rows, dtype=np.intp).reshape(-1)
        sp = np.broadcast_to(np.asarray(setpoint_w, dtype=np.float64), r.shape)
        ok = np.isfinite(sp)
        r, sp = r[ok], sp[ok]
        if r.size == 0:
            return
        par = self.params
        tgt = np.clip(sp, -par.max_discharge_w[r], par.max_charge_w[r])
        # re-stating the target already in force (a profile refresh) changes nothing: it must
        # not start a dead-time countdown that a later real change would inherit
        same = ~np.isfinite(self._pending_at[r]) & (tgt == self._target[r])
        r, tgt = r[~same], tgt[~same]
        if r.size == 0:
            return
        p = self._p[r]
        flowing = np.abs(p) >= IDLE_W
        zero = flowing & (np.abs(tgt) >= IDLE_W) & (p * tgt < 0)
        delay = np.where(flowing, par.t_c_s[r], par.t_a_s[r]) + np.where(zero, par.t_zero_s[r], 0.0)
        at_new = now_s + delay
        at_old = self._pending_at[r]
        has = np.isfinite(at_old)
        at = np.where(has, at_old, at_new)
        extend = has & zero & ~self._pending_zero[r]
        at = np.where(extend, np.maximum(at_old, at_new), at)
        self._pending[r] = tgt
        self._pending_at[r] = at
        self._pending_zero[r] = np.where(has, self._pending_zero[r] | zero, zero)

    def step(self, now_s: float) -> FloatArray:
        """Advance every vehicle to `now_s`; returns power_w (W, + charge). Past times no-op."""
        t0 = self._t_s
        dt = now_s - t0
        if not dt > 0:
            return self._p
        par = self.params
        at = self._pending_at
        due = at <= now_s
        t_split = np.where(due, np.maximum(at, t0), now_s)
        seg1 = t_split - t0
        seg2 = now_s - t_split
        p0 = self._p
        p1 = _ramp(p0, self._bounded(self._target), seg1, par.ramp_up_w_s, par.ramp_down_w_s)
        if np.any(due):
            self._target = np.where(due, self._pending, self._target)
            self._pending_at = np.where(due, np.inf, at)
            self._pending_zero = self._pending_zero & ~due
        p2 = _ramp(p1, self._bounded(self._target), seg2, par.ramp_up_w_s, par.ramp_down_w_s)
        self._integrate(p0, p1, p2, seg1, seg2)
        self._t_s = float(now_s)
        return self._p

    def _bounded(self, tgt: FloatArray) -> FloatArray:
        """Target with no charge at full SoC and no discharge when empty."""
        tgt = np.where(self._soc >= 1.0, np.minimum(tgt, 0.0), tgt)
        return np.where(self._soc <= 0.0, np.maximum(tgt, 0.0), tgt)

    def _integrate(self, p0: FloatArray, p1: FloatArray, p2: FloatArray, seg1: FloatArray,
                   seg2: FloatArray) -> None:
        eff = self.params.efficiency
        e1 = 0.5 * (p0 + p1) * seg1
        e2 = 0.5 * (p1 + p2) * seg2
        stored_ws = (np.where(e1 > 0, e1 * eff, e1 / eff)
                     + np.where(e2 > 0, e2 * eff, e2 / eff))  # battery side, per segment
        self._losses_wh = self._losses_wh + (e1 + e2 - stored_ws) / 3600.0
        soc = self._soc + stored_ws / 3600.0 / self.params.capacity_wh
        full = soc >= 1.0
        empty = soc <= 0.0
        self._soc = np.clip(soc, 0.0, 1.0)
        p2 = np.where(full & (p2 > 0), 0.0, p2)
        self._p = np.where(empty & (p2 < 0), 0.0, p2)

"""Online identification of each EVSE's dead times and ramp rates (SPEC §2.2, issue 4 item 3).

Pure numpy over struct-of-arrays state, one row per fleet row: no I/O, no clock reads (`now_s`
is an argument). It watches setpoint changes (`commanded`), power samples (`observe`, from
MeterValues in the daemon, from the plant each tick in `evaluate`) and site meter samples
(`observe_site`, SPEC §3.3 `p_w`, in the daemon), and once an estimate is confident writes it
into the fleet's dynamics columns (`FleetState.t_a_s`, `t_c_s`, `t_zero_s`, ramps), which the
compensated dispatch reads every tick, and keeps the telemetry columns `dyn_changes` and
`dyn_identified_bits` (bit i = PARAMS[i]) up to date. It touches no other column and never
raises on odd input (non-finite samples and setpoints, unknown rows are ignored). The
per-episode maths (line fit, dead-time bracket, median/MAD rule) is identify_fit's, the
zero-crossing rules identify_zero's.

Site meter samples around a lone change become samples of the changing row; when an episode
may be tracked that way, and how that can bias it, is identify_site's docstring.

One "episode" per setpoint change made while the row is settled (its power at the previous
command's target, or that command older than `settle_s`): a step of at least `min_step_w` on
one side of zero, or a charge <-> discharge crossing (|p0|, |target| >= IDLE_W, opposite signs:
the plant's rule) whose target is at least `min_cross_w` on the new side:
- it opens at the command time t0 with p0 = the last sample; a start from idle (|p0| < IDLE_W)
  measures t_a, a change while flowing t_c, a crossing t_zero (never t_a or t_c);
- movement counts from a reference: p0, or 0 for a crossing (its power must show on the new
  side). Commands arriving before the power left p0 replace the target and keep t0 (the plant's
  latest-value rule) unless that changes whether it crosses zero (the plant then moves the
  effective time): the episode is dropped. A command after the power left p0, reaching the
  target, or `timeout_s` closes it; a crossing closed before its power showed on the new side
  gives nothing;
- samples are classed by y = |p - ref| toward the target: unmoved (y <= tol), in the ramp
  (moved, not within tol of the target) or arrived. The ramp rate is the least-squares slope of
  y over the in-ramp samples (running sums, no sample storage) over a leg of >= `min_step_w`
  (a crossing's leg is the new side's: ramp_up only); the dead time is that line's zero
  crossing or, without a slope, a bracket of the first movement (identify_fit.dead_time);
- dead times have `transport_delay_s` (offer -> vehicle) subtracted; a crossing gives
  t_c + t_zero = its dead time - |p0| / ramp_down, and the fleet's t_zero is the median of
  those minus the t_c in force, rewritten when t_c changes (identify_zero: rule and limits;
  a crossing may also open right after a small same-side command still in transit).

Combination and the replacement rule: each of t_a, t_c, t_zero (as t_c + t_zero), ramp up,
ramp down keeps its last `window` per-episode estimates; the estimate is their median. A column
is replaced once at least `min_changes` (3) estimates exist and their median absolute deviation
is within `rel_tol` (15 %) of the median, or `abs_tol_s` (0.3 s) for dead times; it is then
updated on every later episode that keeps that condition, and otherwise keeps its last
identified value (never reverts to the prior; `forget` drops what a row learnt). Every written
value is clipped to the plausible bounds (dead time 0-10 s, ramp 0.1-1000 kW/s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from controller.control import identify_fit as fit
from controller.control import identify_zero as zero
from controller.control.dynamics import IDLE_W
from controller.control.fleet import FleetState
from controller.control.identify_site import SiteAttribution, in_transit

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]

# Plausible bounds (issue 4 item 3): seed Table 11 spans 0.02-3.8 s and 0.73-552 kW/s; DTU
# (WEVJ 10(2) 21) measured 4-7 s activation delays and ~3.3 kW/s ramps.
DEAD_TIME_BOUNDS_S = (0.0, 10.0)
RAMP_BOUNDS_W_S = (100.0, 1.0e6)
# A command this many times the row's longest dead time old has surely been applied (the
# figures in force are within the +-20 % plant spread of the truth, issue 4 item 1).
DEAD_TIME_MARGIN = 1.5
# fleet columns identified; bit i of FleetState.dyn_identified_bits is PARAMS[i]
PARAMS = ("t_a_s", "t_c_s", "ramp_up_w_s", "ramp_down_w_s", "t_zero_s")


@dataclass(frozen=True)
class IdentParams:
    """Identification limits; defaults suit MeterValues every 0.1-5 s."""

    min_step_w: float = 1000.0  # smaller changes are not used: ramp too short to measure
    # crossings (identify_zero) are used when the target is this far on the new side (4 x
    # tol_w: its rise shows), also when the row is still within this of a same-side command in
    # transit (the compensated dispatch swaps at +-wake_w = 500 W right after 100 W steps)
    min_cross_w: float = 200.0
    tol_w: float = 50.0  # movement / arrival threshold (meter noise, quantisation)
    tol_frac: float = 0.03  # ... or this share of the step, whichever is larger
    timeout_s: float = 40.0  # an episode closes after this (10 s dead time + slowest ramp)
    settle_s: float = 30.0  # a command older than this counts as settled even if not reached
    max_bracket_s: float = 2.0  # dead-time bracket accepted without a slope (1-2 s MeterValues)
    transport_delay_s: float = 0.0  # offer -> vehicle delay subtracted from dead times
    window: int = 9  # per-episode estimates kept per parameter
    min_changes: int = 3  # replacement rule: at least this many estimates ...
    rel_tol: float = 0.15  # ... with MAD <= rel_tol x median ...
    abs_tol_s: float = 0.3  # ... or <= this for dead times
    site_ref_max_age_s: float = 0.5  # site sample taken as reference: SPEC §3.3 stale age


# Per-row state: last command and sample, the open episode (t0, p0, the last sample then, the
# reference movement is measured from, target, bracket of the dead time t_un..t_mv relative to
# t0), the identified median t_c + t_zero of crossings and the in-ramp line fit's running sums.
_FLOATS = {"cmd_w": np.nan, "cmd_s": np.nan, "cmd_p": np.nan, "last_p": np.nan, "last_t": np.nan,
           "t0": np.nan, "p0": 0.0, "p_seen": 0.0, "ref": 0.0, "tgt": 0.0, "t_un": 0.0,
           "t_mv": np.nan, "y_mv": np.nan, "zero_total": np.nan, "sn": 0.0, "st": 0.0, "sy": 0.0,
           "stt": 0.0, "sty": 0.0, "syy": 0.0}
_SUMS = ("sn", "st", "sy", "stt", "sty", "syy")  # n, sum tau, sum y, tau^2, tau y, y^2
# open episode; p0 was flowing; crossing zero; the power left p0; the target was reached
_BOOLS = ("open", "flowing", "cross", "left", "reached")


class Identifier:
    """Per-row episode state, estimate buffers and the identified flags of one fleet."""

    def __init__(self, fleet: FleetState, params: IdentParams | None = None) -> None:
        self.fleet = fleet
        self.p = params or IdentParams()
        self._n = 0
        self._f: dict[str, FloatArray] = {}
        self._b: dict[str, BoolArray] = {}
        self._est = fit.EstimateWindows(PARAMS, self.p.window)
        self._grow(max(fleet.n, 1))
        self.site = SiteAttribution(self.p.site_ref_max_age_s)

    # -- state arrays ---------------------------------------------------------------------------
    def _grow(self, n: int) -> None:
        if n <= self._n:
            return
        cap = max(n, 2 * self._n)
        for k, v in _FLOATS.items():
            old = self._f.get(k, np.empty(0))
            self._f[k] = np.concatenate([old, np.full(cap - old.size, v)])
        for k in (*_BOOLS, *("id_" + q for q in PARAMS)):
            old_b = self._b.get(k, np.zeros(0, dtype=bool))
            self._b[k] = np.concatenate([old_b, np.zeros(cap - old_b.size, dtype=bool)])
        self._est.grow(cap)
        self._n = cap

    def _rows(self, rows: npt.ArrayLike, values: npt.ArrayLike) -> tuple[IntArray, FloatArray]:
        r = np.atleast_1d(np.asarray(rows, dtype=np.intp))
        v = np.broadcast_to(np.asarray(values, dtype=np.float64), r.shape)
        ok = np.isfinite(v) & (r >= 0) & (r < self.fleet.n)
        self._grow(self.fleet.n)
        return r[ok], v[ok].copy()

    # -- inputs ---------------------------------------------------------------------------------
    def commanded(self, rows: npt.ArrayLike, setpoint_w: npt.ArrayLike, now_s: float) -> None:
        """Setpoints offered to `rows` at `now_s` (arrays; non-finite entries are ignored)."""
        r, sp = self._rows(rows, setpoint_w)
        f, b = self._f, self._b
        old = f["cmd_w"][r]
        chg = old != sp  # NaN old (never commanded) compares unequal: a change
        r, sp, old = r[chg], sp[chg], old[chg]
        if r.size == 0:
            return
        is_open = b["open"][r]
        moved = is_open & (np.isfinite(f["t_mv"][r]) | b["left"][r])
        self._close(r[moved])  # a new command after movement ends the episode
        waiting = is_open & ~moved  # no movement yet: latest target wins, t0 kept
        self._retarget(r[waiting], sp[waiting])
        settled = ~is_open & self._settled(r, old, now_s)
        # a crossing may follow a same-side command still in transit (identify_zero.leaving)
        near = ~is_open & ~settled & self._fresh(r, now_s) & zero.leaving(
            f["last_p"][r], old, sp, idle_w=IDLE_W, near_w=self.p.min_cross_w)
        p0 = np.where(near, old, f["last_p"][r])
        start = (settled | near) & self._usable(p0, sp)
        self._open(r[start], sp[start], p0[start], now_s)
        self._site_commanded(r, sp, r[start], now_s)
        f["cmd_w"][r] = sp
        f["cmd_s"][r] = now_s
        f["cmd_p"][r] = f["last_p"][r]

    def observe(self, rows: npt.ArrayLike, now_s: float, power_w: npt.ArrayLike) -> None:
        """Power samples (W, + import) of `rows` at `now_s` (scalars or arrays)."""
        r, pw = self._rows(rows, power_w)
        f, b = self._f, self._b
        if self.site.row >= 0 and np.any((r != self.site.row)
                                         & ~(np.abs(pw - f["last_p"][r]) <= self.p.tol_w)):
            self.site.stop()  # another row moved (or is new) while its change is tracked
        f["last_p"][r] = pw
        f["last_t"][r] = now_s
        live = b["open"][r] & (now_s > f["t0"][r])
        r, pw = r[live], pw[live]
        if r.size == 0:
            return
        tau = now_s - f["t0"][r]
        p0, ref, tgt = f["p0"][r], f["ref"][r], f["tgt"][r]
        y = (pw - ref) * np.sign(tgt - ref)  # a crossing's movement counts from 0
        tol = self._tol(ref, tgt)
        moved = y > tol
        b["left"][r] |= (pw - p0) * np.sign(tgt - p0) > tol
        at = np.abs(pw - tgt) <= tol
        first = ~np.isfinite(f["t_mv"][r])
        f["t_un"][r] = np.where(first & ~moved, tau, f["t_un"][r])
        f["t_mv"][r] = np.where(first & moved, tau, f["t_mv"][r])
        f["y_mv"][r] = np.where(first & moved & ~at, y, f["y_mv"][r])
        ramp = moved & ~at
        terms: tuple[FloatArray | float, ...] = (1.0, tau, y, tau * tau, tau * y, y * y)
        for k, v in zip(_SUMS, terms, strict=True):
            f[k][r] += np.where(ramp, v, 0.0)
        b["reached"][r] |= at
        self._close(r[at | (tau > self.p.timeout_s)])

    def observe_site(self, now_s: float, site_w: float) -> None:
        """A site meter sample (W, + import, SPEC §3.3 `p_w`) at `now_s`.

        While one row's episode is tracked (identify_site's docstring), the sample becomes a
        power sample of that row; otherwise it is only remembered as the next reference.
        """
        delta_w = self.site.sample(now_s, site_w)
        row = self.site.row
        if row < 0 or not np.isfinite(delta_w):
            return
        if not (self._b["open"][row] and self._f["t0"][row] == self.site.t0_s):
            self.site.stop()  # that episode ended
            return
        self.observe(row, now_s, float(self._f["p_seen"][row]) + delta_w)

    # -- episodes -------------------------------------------------------------------------------
    def _site_commanded(self, r: IntArray, sp: FloatArray, opened: IntArray,
                        now_s: float) -> None:
        """Stop tracking if another row starts moving; track a lone opened episode."""
        movers = r[~(np.abs(sp - self._f["last_p"][r]) <= self.p.tol_w)]  # NaN last_p: moves
        if np.any(movers != self.site.row):
            self.site.stop()
        if opened.size != 1 or movers.size != 1 or not self.site.fresh(now_s):
            return
        row = int(opened[0])
        busy = self._busy(now_s)
        busy[row] = False
        if not busy.any():
            self.site.start(row, now_s)

    def _busy(self, now_s: float) -> BoolArray:
        """Rows with an open episode or a command that may still be moving their power."""
        f, fl, n = self._f, self.fleet, self.fleet.n
        moving = in_transit(now_s, cmd_s=f["cmd_s"][:n], cmd_w=f["cmd_w"][:n],
                            cmd_p=f["cmd_p"][:n], last_p=f["last_p"][:n],
                            last_t=f["last_t"][:n], dead_s=self._bound_s(slice(0, n)),
                            ramp_w_s=np.minimum(fl.ramp_up_w_s[:n], fl.ramp_down_w_s[:n]),
                            tol_w=self.p.tol_w, settle_s=self.p.settle_s)
        out: BoolArray = moving | self._b["open"][:n]
        return out

    def _tol(self, p0: FloatArray, tgt: FloatArray) -> FloatArray:
        return fit.tolerance(p0, tgt, self.p.tol_w, self.p.tol_frac)

    def _usable(self, p0: FloatArray, tgt: FloatArray) -> BoolArray:
        p = self.p
        return fit.usable(p0, tgt, IDLE_W, p.min_step_w, p.min_cross_w, self._tol(p0, tgt))

    def _retarget(self, r: IntArray, sp: FloatArray) -> None:
        """Latest target wins for episodes that saw no movement yet; drop those it no longer
        fits: too small, or crossing where the first did not (or the reverse): the plant then
        moves the effective time instead of keeping it."""
        f, b = self._f, self._b
        p0 = f["p0"][r]
        keep = self._usable(p0, sp) & (zero.crossing(p0, sp, IDLE_W) == b["cross"][r])
        f["tgt"][r] = sp
        b["open"][r[~keep]] = False

    def _settled(self, r: IntArray, old_cmd: FloatArray, now_s: float) -> BoolArray:
        """Fresh sample, previous command surely applied with the power at it (identify_fit)."""
        f, p = self._f, self.p
        out: BoolArray = self._fresh(r, now_s) & fit.settled(
            now_s - f["cmd_s"][r], last_w=f["last_p"][r], old_cmd_w=old_cmd,
            cmd_p_w=f["cmd_p"][r], bound_s=self._bound_s(r), settle_s=p.settle_s,
            tol_w=p.tol_w, tol_frac=p.tol_frac)
        return out

    def _bound_s(self, r: IntArray | slice) -> FloatArray:
        """Longest a command to rows `r` may take to show: the margin on their longest dead
        time in force (from idle, while flowing, or across zero) plus the transport delay."""
        fl = self.fleet
        dead_s = np.maximum(fl.t_a_s[r], fl.t_c_s[r] + fl.t_zero_s[r])
        out: FloatArray = DEAD_TIME_MARGIN * dead_s + self.p.transport_delay_s
        return out

    def _fresh(self, r: IntArray, now_s: float) -> BoolArray:
        lp = self._f["last_p"][r]
        out: BoolArray = np.isfinite(lp) & (now_s - self._f["last_t"][r] <= self.p.settle_s)
        return out

    def _open(self, r: IntArray, sp: FloatArray, p0: FloatArray, now_s: float) -> None:
        f, b = self._f, self._b
        f["t0"][r] = now_s
        f["p0"][r] = p0
        f["p_seen"][r] = f["last_p"][r]  # != p0 after a command in transit (identify_zero)
        b["cross"][r] = cross = zero.crossing(p0, sp, IDLE_W)
        f["ref"][r] = np.where(cross, 0.0, p0)
        f["tgt"][r] = sp
        for k in ("t_mv", "y_mv", "t_un", *_SUMS):
            f[k][r] = _FLOATS[k]
        b["flowing"][r] = np.abs(p0) >= IDLE_W
        b["reached"][r] = b["left"][r] = False
        b["open"][r] = True

    def _close(self, r: IntArray) -> None:
        """End the episodes of rows `r`; turn what they saw into estimates."""
        if r.size == 0:
            return
        f, b, p, fl = self._f, self._b, self.p, self.fleet
        b["open"][r] = False
        if np.any(r == self.site.row):
            self.site.stop()
        ref, tgt, cross, flowing = f["ref"][r], f["tgt"][r], b["cross"][r], b["flowing"][r]
        tol = self._tol(ref, tgt)
        line = fit.fit_line([f[k][r] for k in _SUMS], b["reached"][r], tol)
        up = np.abs(tgt) > np.abs(ref)
        rate = np.where(up, fl.ramp_up_w_s[r], fl.ramp_down_w_s[r])
        dead, dead_ok = fit.dead_time(f["t_un"][r], f["t_mv"][r], f["y_mv"][r], line, tol, rate,
                                      p.max_bracket_s)
        dead = dead - p.transport_delay_s
        total = zero.crossing_total_s(dead, f["p0"][r], fl.ramp_down_w_s[r])
        dead_ok &= ~cross | np.isfinite(total)
        fl.dyn_changes[r] += dead_ok
        slope, ramp_ok = line[0], line[2] & (np.abs(tgt - ref) >= p.min_step_w)
        for name, sel, vals in (("t_a_s", dead_ok & ~flowing, dead),
                                ("t_c_s", dead_ok & flowing & ~cross, dead),
                                ("t_zero_s", dead_ok & cross, total),
                                ("ramp_up_w_s", ramp_ok & up, slope),
                                ("ramp_down_w_s", ramp_ok & ~up, slope)):
            self._push(name, r[sel], vals[sel])
        z = r[b["id_t_zero_s"][r]]  # t_zero follows the t_c in force (identify_zero)
        fl.t_zero_s[z] = zero.t_zero_s(f["zero_total"][z], fl.t_c_s[z], DEAD_TIME_BOUNDS_S)

    def _push(self, name: str, r: IntArray, values: FloatArray) -> None:
        """Add one estimate per row; replace the fleet column where the rule holds (t_zero:
        keep the crossings' median t_c + t_zero in `zero_total`, for _close to write)."""
        if r.size == 0:
            return
        ramp, zero = name.startswith("ramp"), name == "t_zero_s"
        lo, hi = RAMP_BOUNDS_W_S if ramp else DEAD_TIME_BOUNDS_S
        # a crossing's total is t_c + t_zero: each within the dead-time bounds
        vals, cnt = self._est.push(name, r, np.clip(values, lo, 2.0 * hi if zero else hi))
        med, ok = fit.robust_median(vals, cnt, min_changes=self.p.min_changes,
                                    rel_tol=self.p.rel_tol,
                                    abs_tol=0.0 if ramp else self.p.abs_tol_s,
                                    offset=self.fleet.t_c_s[r] if zero else 0.0)
        rows = r[ok]
        if zero:
            self._f["zero_total"][rows] = med[ok]
        else:
            getattr(self.fleet, name)[rows] = np.clip(med[ok], lo, hi)
        self._b["id_" + name][rows] = True
        bits = self.fleet.dyn_identified_bits
        bits[rows] = np.bitwise_or(bits[rows].astype(np.int64), 1 << PARAMS.index(name))

    def forget(self, row: int) -> None:
        """Drop what `row` learnt (another vehicle on its EVSE): estimates, identified flags,
        its open episode and telemetry; its dynamics columns are the caller's (a new prior)."""
        if not 0 <= row < self.fleet.n:
            return
        self._grow(self.fleet.n)
        self._est.clear(row)
        for k in ("open", *("id_" + q for q in PARAMS)):
            self._b[k][row] = False
        self._f["zero_total"][row] = np.nan
        if self.site.row == row:
            self.site.stop()
        self.fleet.dyn_changes[row] = 0.0
        self.fleet.dyn_identified_bits[row] = 0.0

    # -- telemetry ------------------------------------------------------------------------------
    def n_changes(self, row: int) -> int:
        """Episodes of `row` that gave at least a dead-time estimate."""
        if row >= self._n:
            return 0
        return sum(self._est.count(k, row) for k in ("t_a_s", "t_c_s", "t_zero_s"))

    def identified(self, row: int) -> tuple[str, ...]:
        """Names of the fleet columns of `row` replaced by identified values."""
        if row >= self._n:
            return ()
        return tuple(k for k in PARAMS if self._b["id_" + k][row])


def dynamics_payload(fleet: FleetState, row: int) -> dict[str, object]:
    """The `dynamics` object of the per-EVSE telemetry: values in force and their source."""
    bits = int(fleet.dyn_identified_bits[row])
    ids = [k for i, k in enumerate(PARAMS) if bits >> i & 1]
    return {
        "t_a_s": float(fleet.t_a_s[row]), "t_c_s": float(fleet.t_c_s[row]),
        "t_zero_s": float(fleet.t_zero_s[row]),
        "ramp_up_kw_s": float(fleet.ramp_up_w_s[row]) / 1000.0,
        "ramp_down_kw_s": float(fleet.ramp_down_w_s[row]) / 1000.0,
        "source": "identified" if ids else "prior", "identified": ids,
        "n_changes": int(fleet.dyn_changes[row]),
    }


"""FEEDBACK of the compensated dispatch: integral action on the measured gap, and meter freshness.

Pure numpy: no I/O, no clock reads (`now_s` is an argument). Owned by
dispatch_comp.CompensatedDispatch, which decides when the model has settled; this module must
not predict, plan or command rows (no dynamics here). Sign: + = charge/import.

When the model says the fleet has settled, the gap between the dispatched sum and the measured
sum is integrated (anti-windup: frozen while saturated in that direction and while anything is
in transit, clamped to `integrator_max_frac` of the fleet's capacity) and added to the response.
The measured sum is the site meter's power (SPEC §3.3 `p_w`, up to 50 Hz) minus the site
baseline when the controller passes one (observe_meters), and the integrator freezes while that
is missing, stale or older than the last move; per-EVSE MeterValues (every few seconds on real
chargers) then only set the baseline and reset each row of the replica once, when a new report
arrives. Fast time passes the plant's summed power the same way, with every row measured at
each tick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from controller.control.fleet import FleetState

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class FeedbackParams(Protocol):
    """The tuning the feedback reads (dispatch_comp.CompParams documents each figure)."""

    @property
    def ki_per_s(self) -> float: ...
    @property
    def integrator_max_frac(self) -> float: ...
    @property
    def site_stale_s(self) -> float: ...
    @property
    def site_base_tau_s(self) -> float: ...


class Feedback:
    """Integrator on (dispatched sum - measured sum) and the freshness of the measurements."""

    def __init__(self, params: FeedbackParams) -> None:
        self.params = params
        self.integrator_w = 0.0
        self._site: tuple[float, float] | None = None  # (site power W, measured at s)
        self._site_seen = False  # a site power has been observed: feedback uses the meter
        self._site_base_w: float | None = None  # site power not drawn by the usable rows
        self._transit_s = -np.inf  # last tick at which the model had a row in transit
        self._measured_at: FloatArray | None = None  # per row: MeterValues time (None: now)
        self._snapped_at: FloatArray = np.zeros(0)  # per row: report the replica last took

    def grow(self, n: int) -> None:
        """New rows (the fleet grew to `n`): none of their reports taken yet."""
        self._snapped_at = np.concatenate([self._snapped_at,
                                           np.full(n - self._snapped_at.size, -np.inf)])

    def observe_meters(self, site_power_w: float | None, site_power_at_s: float | None,
                       measured_at_s: FloatArray | None) -> None:
        """Measurement freshness (controller.MeterObserver; called before each tick).

        Site power (W, + import) and its time (None: none): once one has been seen, the
        feedback acts on it (minus the site baseline) and freezes while it is missing or
        older than `site_stale_s`. `measured_at_s` per row: the replica takes a MeterValues
        report once, when it is new, instead of being reset to a stale one every tick.
        """
        self._measured_at = None if measured_at_s is None else np.asarray(measured_at_s,
                                                                          dtype=np.float64)
        if (site_power_w is None or site_power_at_s is None or not np.isfinite(site_power_w)
                or not np.isfinite(site_power_at_s)):
            self._site = None
            return
        self._site = (float(site_power_w), float(site_power_at_s))
        self._site_seen = True

    def fresh(self, have_meas: BoolArray) -> BoolArray:
        """Rows whose MeterValues the replica has not taken yet (all measured ones in fast time)."""
        at = self._measured_at
        if at is None or at.size != have_meas.size:
            return have_meas
        fresh = have_meas & (at > self._snapped_at)
        self._snapped_at = np.where(fresh, at, self._snapped_at)
        return fresh

    def integrate(self, fleet: FleetState, usable: BoolArray, have_meas: BoolArray,
                  cmd: FloatArray, ceil: FloatArray, *, in_transit: bool, sat: bool,
                  need: float, dt: float, now_s: float) -> None:
        """Integral action on (last dispatched sum `cmd` - measured sum), with anti-windup.

        Args:
            fleet: the fleet (its `measured_w`).
            usable: rows the dispatch commands.
            have_meas: rows with a measured power.
            cmd: the commands of the last tick (W).
            ceil: each row's charge limit (W), for the integrator's clamp.
            in_transit: the model has a row away from its command or a command in flight.
            sat: the plan was saturated toward `need` (W).
            need: shortfall of the predicted sum against the target (W).
            dt: time since the last tick (s).
            now_s: this tick's time (s).
        """
        p = self.params
        if not usable.any() or dt <= 0:
            return
        if self._transit_s == -np.inf:
            self._transit_s = now_s  # MeterValues from before the first tick prove nothing
        if in_transit:
            self._transit_s = now_s
            return
        measured_w = self._measured_sum(fleet, usable, have_meas, now_s, dt)
        if measured_w is None:
            return  # nothing fresh to compare with: the integrator holds (anti-windup)
        gap = float(cmd[usable].sum()) - measured_w
        if sat and np.sign(gap) == np.sign(need):
            return  # the fleet cannot go further that way: integrating would only wind up
        i_max = p.integrator_max_frac * float(ceil[usable].sum())
        self.integrator_w = float(np.clip(self.integrator_w + p.ki_per_s * dt * gap,
                                          -i_max, i_max))

    def _measured_sum(self, fleet: FleetState, usable: BoolArray,
                      have_meas: BoolArray, now_s: float, dt: float) -> float | None:
        """Measured power of the usable rows (W) for the feedback; None: none to trust now.

        Site meter (fresh, measured after the last move): site power - site baseline. Without
        one: the sum of the MeterValues, if every usable row reported after the last move.
        """
        p = self.params
        at = self._measured_at
        reported = (at is None or at.size != usable.size
                    or bool(np.all(at[usable] >= self._transit_s)))
        meas_w = (float(fleet.measured_w[usable].sum())
                  if reported and bool(have_meas[usable].all()) else None)
        if not self._site_seen:
            return meas_w
        site = self._site
        if site is None or now_s - site[1] > p.site_stale_s or site[1] < self._transit_s:
            return None  # stale, or measured while rows were still moving
        site_w = site[0]
        if meas_w is not None:  # every row reported since the last move: the rest of the site
            base_w = site_w - meas_w
            if self._site_base_w is None:
                self._site_base_w = base_w
            else:
                k = min(1.0, dt / max(p.site_base_tau_s, 1e-9))
                self._site_base_w += k * (base_w - self._site_base_w)
        return None if self._site_base_w is None else site_w - self._site_base_w

"""Profile follower: one plant row driven by the charging profile in force, on a timer.

The edge between sim_chargers/chargeprofile.py (PURE: which limit is in force when) and the
VehiclePlant: it commands the row with the limit in force, the station's baseline when there is
none or once the profile has lapsed (SPEC §2.4 safe fallback), keeps the row out of discharge when
the station may not discharge, and re-arms one asyncio timer for the next period change or lapse,
so a profile still lapses while the CSMS is away. It does not speak OCPP and owns no connection:
sim_chargers/station.py accepts and clears the profiles.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sim_chargers.chargeprofile import ActiveProfile
from sim_chargers.plant import VehiclePlant

log = logging.getLogger(__name__)


class ProfileFollower:
    """Row `row` of `plant` following `profile` (None: the baseline).

    Attributes:
        profile: the profile in force; None before one is accepted, after a clear or a lapse.
        setpoint_w: the last value commanded to the plant.
    """

    def __init__(self, plant: VehiclePlant, row: int, *, baseline_w: float, discharge: bool,
                 name: str, clock: Callable[[], float]) -> None:
        """Command the baseline at once unless it is 0 W (the plant's initial setpoint).

        Args:
            plant: the shared plant.
            row: this EVSE's row in it.
            baseline_w: setpoint with no profile in force.
            discharge: negative limits are followed (else clamped to 0 W).
            name: the station id, for log lines.
            clock: monotonic clock (s), the one the profile's times use.
        """
        self.plant = plant
        self.row = row
        self.profile: ActiveProfile | None = None
        self.setpoint_w = baseline_w
        self._baseline_w = baseline_w
        self._discharge = discharge
        self._name = name
        self._clock = clock
        self._timer: asyncio.TimerHandle | None = None
        if self.setpoint_w != 0.0:
            plant.command([row], [self.setpoint_w], clock())

    def follow(self, profile: ActiveProfile | None, now_s: float) -> None:
        """Put `profile` in force (None: back to the baseline) and apply it at `now_s`."""
        self.profile = profile
        self.apply(now_s)

    def apply(self, now_s: float) -> None:
        """Command the plant with the limit in force (baseline if none); re-arm the timer."""
        prof = self.profile
        limit = prof.limit_at(now_s) if prof is not None else None
        if prof is not None and now_s >= prof.expires_s:
            self.profile = prof = None  # lapsed: SPEC §2.4 fallback to baseline
        target = self._baseline_w if limit is None else limit
        if not self._discharge:
            target = max(target, 0.0)
        if target != self.setpoint_w:
            self.plant.command([self.row], [target], now_s)
            self.setpoint_w = target
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        nxt = prof.next_change_s(now_s) if prof is not None else None
        if nxt is not None:
            delay = max(0.0, nxt - self._clock()) + 1e-3  # never fire before the change
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        try:
            self.apply(self._clock())
        except Exception:
            log.exception("%s: applying the profile failed", self._name)

    def close(self) -> None:
        """Cancel the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

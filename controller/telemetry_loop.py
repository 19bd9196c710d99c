"""The daemon's telemetry task: fleet snapshot, ageing, fleet alarm checks, per-EVSE payloads.

Every `mqtt.fleet_period_s` it steps the battery ageing tracker, publishes the fleet snapshot,
runs the telemetry path's alarm checks, and publishes the per-EVSE payload of the rows whose
state changed (all rows every `mqtt.evse_period_s`). It runs off the control path: it must
never be called from the control tick, make a control decision, or let its own failure stop
the daemon. Time comes from the injected clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from controller.snapshots import evse_payload

if TYPE_CHECKING:
    from controller.adapters.telemetry import Telemetry
    from controller.ageing_tracker import AgeingTracker
    from controller.control.fleet import FleetState
    from controller.settings_types import MqttConfig

log = logging.getLogger(__name__)


class TelemetryLoop:
    """Periodic publishing of the fleet and its EVSEs (one per daemon)."""

    def __init__(self, telemetry: Telemetry, *, fleet: FleetState,
                 ageing: AgeingTracker, mqtt: MqttConfig,
                 snapshot: Callable[[], dict[str, object]], checks: Callable[[], None],
                 clock: Callable[[], float]) -> None:
        self.telemetry = telemetry
        self.fleet = fleet
        self.ageing = ageing
        self.mqtt = mqtt
        self._snapshot = snapshot
        self._checks = checks
        self._clock = clock
        self._dirty = np.zeros(0, dtype=bool)  # rows whose per-EVSE telemetry changed

    def mark_dirty(self, rows: np.ndarray) -> None:
        """These rows' per-EVSE payloads changed: publish them on the next pass."""
        if self._dirty.size < self.fleet.n:
            grown = np.ones(self.fleet.n, dtype=bool)
            grown[: self._dirty.size] = self._dirty
            self._dirty = grown
        self._dirty[rows] = True

    def update_ageing(self) -> np.ndarray:
        """Step the ageing tracker to now; loss % per fleet row (NaN: never in service)."""
        try:
            self.ageing.update(self.fleet, self._clock())
        except Exception:  # telemetry must never stop the daemon
            log.exception("ageing update failed")
        return self.ageing.loss_pct()

    async def run(self) -> None:
        """Publish every `fleet_period_s` until cancelled."""
        m = self.mqtt
        last_all = -1e9
        while True:
            await asyncio.sleep(m.fleet_period_s)
            ageing_pct = self.update_ageing()
            self.telemetry.publish("fleet", self._snapshot())
            try:
                self._checks()
            except Exception:  # telemetry must never stop the daemon
                log.exception("energy reserve / readiness check failed")
            now = self._clock()
            n = self.fleet.n
            self.mark_dirty(np.zeros(0, dtype=np.intp))  # size the mask to the fleet
            if now - last_all >= m.evse_period_s:
                rows = np.arange(n)
                last_all = now
            else:
                rows = np.flatnonzero(self._dirty[:n])
            self._dirty[:n] = False
            self._publish_evses(rows, ageing_pct)

    def _publish_evses(self, rows: np.ndarray, ageing_pct: np.ndarray) -> None:
        for r in rows.tolist():  # telemetry, off the control path; coalesced per topic
            sid, evse = self.fleet.keys[r]
            pct = float(ageing_pct[r]) if r < ageing_pct.size else None
            self.telemetry.publish_latest(f"evse/{sid}/{evse}",
                                          evse_payload(self.fleet, r, ageing_loss_pct=pct))

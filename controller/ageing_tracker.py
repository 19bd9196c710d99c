"""Per-EVSE battery ageing in the daemon, accumulated from the MeterValues SoC and power.

The telemetry loop (never the control tick) calls `AgeingTracker.update(fleet, now_s)` about
once a second; the tracker steps `control.ageing.AgeingState` (seed eqs. 5-6, Table 3) over the
fleet's `soc_frac` and `measured_w` columns and answers the loss per EVSE (% of nominal capacity)
and the fleet's mean, max and cost for the telemetry payloads.

Pure: no I/O, no asyncio, no clock reads (`now_s` is an argument).

Accounting rules (our choices):
- A row ages only while it is *in service*: station online, transaction active, finite SoC.
  Outside service we do not know the SoC, nor that the same vehicle is still there.
- Each stay in service starts a fresh SoC reference, so a new vehicle plugged in at another SoC
  is not counted as a swing. Losses of finished stays are carried per EVSE: the figure is "the
  ageing the vehicles on this EVSE accrued while we controlled them".
- After a transaction ends, the fleet keeps the departed vehicle's last SoC until the next one
  reports; so a stay that follows a transaction end starts only once the SoC differs from that
  stale value (or was cleared to NaN). A reconnect within a transaction resumes at once.
- Rows admitted together share one vectorised `AgeingState` (a segment). When more than
  `max_segments` are live, all are folded into the carried losses and restarted as one segment:
  that forces a SoC turning point on every row, which can only overstate the cycle loss (Table 3's
  cycle curves are concave), and keeps each update to a bounded number of numpy passes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from controller.control.ageing import AgeingError, AgeingState, params_for
from controller.control.fleet import FleetState
from controller.control.vehicles import NEUTRAL, lookup

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]

# Live segments before they are merged (module docstring). Each costs one AgeingState.step
# (~15 numpy calls) per update; 8 keeps an update well under a millisecond at 1000 EVSEs.
MAX_SEGMENTS = 8


@dataclass(frozen=True, slots=True)
class Battery:
    """What the ageing model needs to know about the vehicle on an EVSE."""

    chemistry: str
    capacity_wh: float


@dataclass(frozen=True, slots=True)
class AgeingSummary:
    """Fleet aggregate over the EVSEs that have been in service at least once."""

    loss_pct_mean: float | None  # None: no EVSE has been in service yet
    loss_pct_max: float | None
    cost: float  # in the currency of the battery price
    evses: int


def battery_for(vehicle: str | None, default_chemistry: str) -> Battery:
    """The battery of a station's configured vehicle model, else the neutral prior.

    Raises:
        AgeingError: `default_chemistry` is not a known chemistry.
        UnknownVehicleError: `vehicle` is not in the library (settings check this earlier).
    """
    params_for(default_chemistry)  # fail early on a bad default
    if vehicle is None:  # unknown vehicle: mean V2G battery (NEUTRAL), configured chemistry
        return Battery(default_chemistry, NEUTRAL.battery_kwh * 1000.0)
    model = lookup(vehicle)
    return Battery(model.chemistry, model.battery_kwh * 1000.0)


def batteries_from(stations: Iterable[tuple[str, str | None]], default_chemistry: str,
                   ) -> dict[str, Battery]:
    """`{station_id: Battery}` from (station id, configured vehicle or None) pairs."""
    return {sid: battery_for(vehicle, default_chemistry) for sid, vehicle in stations}


class _Segment:
    """Rows admitted together: one AgeingState over them, rows leave by `alive[i] = False`."""

    def __init__(self, rows: IntArray, chemistries: list[str], capacity_wh: FloatArray,
                 soc_frac: FloatArray) -> None:
        self.rows = rows
        self.alive = np.ones(rows.size, dtype=bool)
        self.capacity_wh = capacity_wh
        self.state = AgeingState(chemistries)
        self.last_soc = soc_frac.copy()
        self.state.step(0.0, self.last_soc, 0.0, capacity_wh)  # sets the SoC reference

    def step(self, dt_s: float, soc_frac: FloatArray, power_w: FloatArray) -> None:
        soc = np.where(self.alive, soc_frac[self.rows], self.last_soc)
        pw = np.where(self.alive, power_w[self.rows], 0.0)
        self.state.step(dt_s, soc, pw, self.capacity_wh)
        self.last_soc = soc


class AgeingTracker:
    """Accumulated ageing per fleet row (EVSE), stepped from the telemetry loop.

    Args:
        batteries: battery per station id (`batteries_from`); stations not listed get `default`.
        default: battery of an EVSE whose station is not in `batteries`.
        price_per_kwh: battery price per kWh of nominal capacity (config `ageing`), >= 0; the
            cost values the lost kWh at that price (`AgeingState.cost` without end of life).
        max_segments: see the module docstring.

    Raises:
        AgeingError: a negative or non-finite price, or max_segments < 1.
    """

    def __init__(self, batteries: Mapping[str, Battery], *, default: Battery,
                 price_per_kwh: float, max_segments: int = MAX_SEGMENTS) -> None:
        if not (math.isfinite(price_per_kwh) and price_per_kwh >= 0):
            raise AgeingError("price_per_kwh must be finite and >= 0")
        if max_segments < 1:
            raise AgeingError("max_segments must be >= 1")
        self._batteries = dict(batteries)
        self._default = default
        self.price_per_kwh = price_per_kwh
        self.max_segments = max_segments
        self._chem: list[str] = []
        self._cap_wh = np.zeros(0)
        self._carried_frac = np.zeros(0)  # losses of finished stays in service
        self._seen = np.zeros(0, dtype=bool)  # in service at least once
        self._live = np.zeros(0, dtype=bool)  # in a live segment now
        self._awaiting = np.zeros(0, dtype=bool)  # transaction ended: wait for a fresh SoC
        self._stale_soc = np.zeros(0)  # the departed vehicle's last SoC
        self._segments: list[_Segment] = []
        self._last_s = math.nan

    @property
    def n(self) -> int:
        """Rows known to the tracker (follows the fleet)."""
        return len(self._chem)

    def update(self, fleet: FleetState, now_s: float) -> None:
        """Advance every in-service row to `now_s` with the fleet's latest SoC and power."""
        n = fleet.n
        self._grow(fleet)
        dt_s = 0.0 if math.isnan(self._last_s) else max(0.0, now_s - self._last_s)
        self._last_s = now_s
        soc = fleet.soc_frac[:n]
        power = np.nan_to_num(fleet.measured_w[:n], nan=0.0, posinf=0.0, neginf=0.0)
        tx = fleet.tx_active[:n]
        waiting = self._awaiting[:n]
        waiting &= ~(np.isnan(soc) | (soc != self._stale_soc[:n]))  # a fresh report ends the wait
        in_service = fleet.online[:n] & tx & np.isfinite(soc) & ~waiting
        leaving = self._live[:n] & ~in_service
        ended = leaving & ~tx  # the vehicle may have left: its SoC goes stale
        self._stale_soc[:n] = np.where(ended, soc, self._stale_soc[:n])
        waiting |= ended
        self._retire(leaving)
        for seg in self._segments:
            seg.step(dt_s, soc, power)
        new = np.flatnonzero(in_service & ~self._live[:n])
        if new.size:
            self._admit(new, soc)
        if len(self._segments) > self.max_segments:
            self._rebase(soc)

    def _grow(self, fleet: FleetState) -> None:
        old = self.n
        if fleet.n <= old:
            return
        added = [self._batteries.get(sid, self._default) for sid, _ in fleet.keys[old:fleet.n]]
        self._chem += [b.chemistry for b in added]
        self._cap_wh = np.concatenate((self._cap_wh, [b.capacity_wh for b in added]))
        grow = fleet.n - old
        self._carried_frac = np.concatenate((self._carried_frac, np.zeros(grow)))
        self._seen = np.concatenate((self._seen, np.zeros(grow, dtype=bool)))
        self._live = np.concatenate((self._live, np.zeros(grow, dtype=bool)))
        self._awaiting = np.concatenate((self._awaiting, np.zeros(grow, dtype=bool)))
        self._stale_soc = np.concatenate((self._stale_soc, np.full(grow, np.nan)))

    def _admit(self, rows: IntArray, soc: FloatArray) -> None:
        chem = [self._chem[r] for r in rows.tolist()]  # once per admission, not per update
        self._segments.append(_Segment(rows, chem, self._cap_wh[rows], soc[rows]))
        self._seen[rows] = True
        self._live[rows] = True

    def _retire(self, leaving: BoolArray) -> None:
        """Fold the rows in `leaving` (mask over rows) into the carried losses."""
        if not leaving.any():
            return
        for seg in self._segments:
            go = seg.alive & leaving[seg.rows]
            self._carried_frac[seg.rows[go]] += seg.state.loss_frac[go]
            seg.alive &= ~go
        self._live[: leaving.size] &= ~leaving
        self._segments = [s for s in self._segments if s.alive.any()]

    def _rebase(self, soc: FloatArray) -> None:
        live = self._live.copy()
        self._retire(live)
        self._admit(np.flatnonzero(live), soc)

    def loss_frac(self) -> FloatArray:
        """Capacity lost per row, fraction of nominal; NaN for rows never in service."""
        out = self._carried_frac.copy()
        for seg in self._segments:
            out[seg.rows[seg.alive]] += seg.state.loss_frac[seg.alive]
        out[~self._seen] = np.nan
        return out

    def loss_pct(self) -> FloatArray:
        """Capacity lost per row, % of nominal (telemetry `ageing_loss_pct`); NaN never seen."""
        out: FloatArray = self.loss_frac() * 100.0
        return out

    def cost(self) -> FloatArray:
        """Ageing cost per row: lost kWh x battery price; NaN for rows never in service."""
        out: FloatArray = self.loss_frac() * (self._cap_wh / 1000.0) * self.price_per_kwh
        return out

    def summary(self) -> AgeingSummary:
        """Mean and max loss (%) and total cost over the rows ever in service."""
        seen = self._seen
        if not seen.any():
            return AgeingSummary(None, None, 0.0, 0)
        pct = self.loss_pct()[seen]
        return AgeingSummary(float(pct.mean()), float(pct.max()),
                             float(self.cost()[seen].sum()), int(seen.sum()))

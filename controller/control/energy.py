"""Energy management: SoC windows, sustain reserves, headroom and the SoC-restoring sides.

Pure numpy over the fleet's columns: no I/O, no clock reads, no Python loop over rows (issue 4
item 4). Sign: + = charge/import; "down" = export (answers "low" products), "up" = import.

- WINDOW. Each row keeps its SoC inside [soc_min, soc_max] (retailer default 20-80 %,
  `[energy]` in the daemon config, per station `soc_min`/`soc_max`); the fleet columns
  `soc_min_frac`/`soc_max_frac` override the default where finite.
- RESERVE. A row's usable export energy is (soc - soc_min) x capacity, its import energy
  (soc_max - soc) x capacity. A contract of Pc with sustain T (services.sustain_s: DC 15 min,
  DM 30, DR 60, FCR 15) needs Pc x T in its direction. A row may take a direction only at the
  power it could hold for the longest sustain contracted that way (`power_limits`): rows near a
  bound taper to 0 W in that direction (within ~5 % of the bound for an 11 kW charger, 60 kWh
  and 15 min) and stop taking it.
- RESTORE. The compensated dispatch's standing baseline (half the rows charging, half
  discharging, cancelling at the site) is assigned by SoC: the low-SoC rows of each dynamics
  class take the charging half (`split_sides`), and when a charging row has drifted more than
  2 x `band_frac` above a discharging one (each measured from its restore target) the pair
  swaps sides between events (`flip_pair`). So the baseline itself pulls every vehicle toward
  the fleet's mean deviation from target, without a net site baseline. The mean itself moves
  only with the response energy and losses: a cancelling baseline cannot shift it.
- AGEING. Calendar ageing grows with SoC (seed eq. 6, Table 3), so the restore target sits
  `restore_bias_frac` (5 % of the window) below its middle: 47 % for 20-80 %. The export
  reserve left at 47 % (27 % of capacity) still exceeds any contract's per-vehicle need by far.
- HEADROOM. Per contract: how much of Pc the fleet can hold now and for how long
  (`headroom`); `reserve_low` names the contracts whose hold time is below `alarm_ratio` (1.2)
  x their sustain time, before they can no longer be held.

Conversion losses are not in the energy figures (94.7-99 %, seed): `alarm_ratio` covers them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from controller.control.fleet import FleetState
    from controller.control.services import ContractedService

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
S_PER_H = 3600.0


@dataclass(frozen=True)
class EnergyParams:
    """Energy-management settings (fractions of capacity, s)."""

    soc_min_frac: float = 0.2  # retailer default window, issue 4 item 4
    soc_max_frac: float = 0.8
    # restore target below the window's middle by this share of the window (seed eq. 6: lower
    # SoC ages less); 0.05 -> 47 % for 20-80 %
    restore_bias_frac: float = 0.05
    # a row swaps sides once it is this far past the target on the wrong side (hysteresis:
    # with ~5 kW offsets on 44-87 kWh, a row swaps every 20-60 min)
    band_frac: float = 0.03
    alarm_ratio: float = 1.2  # alarm when hold time < this x sustain time (issue 4 item 4)
    # sustain assumed before contracts are known: DC's 15 min, the shortest (SPEC §2.1)
    default_sustain_s: float = 15 * 60.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.soc_min_frac < self.soc_max_frac <= 1.0:
            raise ValueError(f"energy window: need 0 <= soc_min < soc_max <= 1, got "
                             f"{self.soc_min_frac}..{self.soc_max_frac}")


def window(fleet: FleetState, params: EnergyParams) -> tuple[FloatArray, FloatArray]:
    """(soc_min, soc_max) per row: the fleet's columns where finite, else the default.

    A departure (control.departure) raises the minimum to its floor and the maximum to its
    target where they lie beyond the configured window.
    """
    lo = np.where(np.isfinite(fleet.soc_min_frac), fleet.soc_min_frac, params.soc_min_frac)
    hi = np.where(np.isfinite(fleet.soc_max_frac), fleet.soc_max_frac, params.soc_max_frac)
    lo = np.fmax(lo, fleet.soc_floor_frac)  # fmax: NaN (no floor) keeps lo
    departs = np.isfinite(fleet.departure_at_s)
    hi = np.where(departs, np.fmax(hi, fleet.target_soc_frac), hi)
    return lo, np.maximum(hi, lo)


def restore_target(lo: FloatArray, hi: FloatArray, params: EnergyParams) -> FloatArray:
    """SoC the standing baseline steers each row toward (below the middle: AGEING)."""
    out: FloatArray = lo + (hi - lo) * (0.5 - params.restore_bias_frac)
    return out


def usable_wh(soc: FloatArray, lo: FloatArray, hi: FloatArray,
              capacity_wh: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(export Wh, import Wh) per row inside its window; 0 where SoC or capacity is unknown."""
    cap = np.where(np.isfinite(capacity_wh), capacity_wh, 0.0)
    s = np.where(np.isfinite(soc), soc, lo)  # unknown SoC: assume nothing to export ...
    down = np.clip(s - lo, 0.0, None) * cap
    up = np.where(np.isfinite(soc), np.clip(hi - s, 0.0, None), 0.0) * cap  # ... nor import
    return down, up


def sustain_s(contracts: Sequence[ContractedService],
              default_s: float) -> tuple[float, float]:
    """(down, up): longest sustain contracted in each direction (default_s when none)."""
    down = [c.definition.sustain_s for c in contracts if c.definition.direction != "high"]
    up = [c.definition.sustain_s for c in contracts if c.definition.direction != "low"]
    return max(down, default=default_s), max(up, default=default_s)


def power_limits(soc: FloatArray, lo: FloatArray, hi: FloatArray,  # noqa: PLR0917
                 capacity_wh: FloatArray, max_discharge_w: FloatArray,
                 max_charge_w: FloatArray, sustain_down_s: float,
                 sustain_up_s: float) -> tuple[FloatArray, FloatArray]:
    """(discharge W, charge W) each row could hold for the sustain time (RESERVE).

    Rows with unknown SoC or capacity keep their rating (nothing to base a limit on).
    """
    down_wh, up_wh = usable_wh(soc, lo, hi, capacity_wh)
    known = np.isfinite(soc) & np.isfinite(capacity_wh)
    dis = np.where(known, np.minimum(max_discharge_w, down_wh * S_PER_H / sustain_down_s),
                   max_discharge_w)
    chg = np.where(known, np.minimum(max_charge_w, up_wh * S_PER_H / sustain_up_s),
                   max_charge_w)
    return dis, chg


def split_sides(class_keys: Sequence[FloatArray], soc_key: FloatArray,
                free: BoolArray) -> FloatArray:
    """+1 (charge) / -1 (discharge) per row: within each dynamics class, low SoC charges.

    Rows are grouped by `class_keys` (equal keys = one class) and sorted by `soc_key` inside
    it; the lower half of each class's free rows charges, the upper half discharges, the
    middle row of an odd class alternates between classes. Rows not free get +1.
    """
    n = free.shape[0]
    if n == 0:
        return np.zeros(0)
    order = np.lexsort((soc_key, *class_keys))
    keys = np.stack([np.asarray(k, dtype=np.float64)[order] for k in class_keys]) \
        if class_keys else np.zeros((1, n))
    new_cls = np.concatenate([[True], np.any(keys[:, 1:] != keys[:, :-1], axis=0)])
    cls = np.cumsum(new_cls) - 1
    f_sorted = free[order].astype(np.int64)
    csum = np.cumsum(f_sorted)
    start = (csum - f_sorted)[new_cls]  # free rows before each class
    rank = csum - 1 - start[cls]
    count = np.bincount(cls, weights=f_sorted).astype(np.int64)[cls]
    twice = 2 * rank + 1
    middle = np.where(cls % 2 == 0, 1.0, -1.0)
    s_sorted = np.where(twice < count, 1.0, np.where(twice > count, -1.0, middle))
    side = np.empty(n)
    side[order] = np.where(f_sorted > 0, s_sorted, 1.0)
    return side


def flip_pair(soc: FloatArray, side: FloatArray, free: BoolArray,  # noqa: PLR0917
              target: FloatArray, band: float,
              cls: npt.NDArray[np.intp] | None = None) -> tuple[int, int] | None:
    """(charging row, discharging row) to swap sides, or None (RESTORE).

    The charging row furthest above its target and the discharging row furthest below it;
    a swap is due when the first is more than 2 x `band` above the second (relative to their
    targets): each then moves toward the other, and the sides never chase a fleet mean that
    sits off target (a cancelling baseline cannot move the mean).
    With `cls` (dynamics class per row) the pair comes from one class when any class has a
    due pair (both cross zero with the same delays, so the site sees no transient), else
    from anywhere (a class of one row must swap too).
    """
    dev = soc - target
    known = free & np.isfinite(dev)
    up = np.where(known & (side > 0), dev, -np.inf)
    dn = np.where(known & (side < 0), dev, np.inf)
    if cls is not None and cls.size:
        k = int(cls.max()) + 1
        best_up, best_dn = np.full(k, -np.inf), np.full(k, np.inf)
        np.maximum.at(best_up, cls, up)
        np.minimum.at(best_dn, cls, dn)
        with np.errstate(invalid="ignore"):
            gap = best_up - best_dn
        due = np.isfinite(gap) & (gap > 2 * band)
        if due.any():
            c = int(np.argmax(np.where(due, gap, -np.inf)))
            return (int(np.argmax(np.where(cls == c, up, -np.inf))),
                    int(np.argmin(np.where(cls == c, dn, np.inf))))
    if not (np.isfinite(up).any() and np.isfinite(dn).any()):
        return None
    i, j = int(np.argmax(up)), int(np.argmin(dn))
    if up[i] - dn[j] <= 2 * band:
        return None
    return i, j


@dataclass(frozen=True, slots=True)
class ContractHeadroom:
    """How much of one contract the fleet can hold now, and for how long (W, s)."""

    name: str
    contract_w: float
    sustain_s: float
    holdable_w: float  # <= contract_w: power the fleet can hold for sustain_s
    hold_s: float  # how long the fleet can hold contract_w (inf: no energy limit known)

    @property
    def holdable(self) -> bool:
        return self.holdable_w >= self.contract_w * (1 - 1e-9) and self.hold_s >= self.sustain_s

    def low(self, ratio: float) -> bool:
        """True when the contract cannot be held for `ratio` x its sustain time."""
        short_w = self.holdable_w < self.contract_w * (1 - 1e-9)
        return short_w or self.hold_s < ratio * self.sustain_s

    def to_dict(self) -> dict[str, object]:
        return {"contract_w": self.contract_w, "holdable_w": round(self.holdable_w, 1),
                "holdable_frac": round(self.holdable_w / self.contract_w, 4)
                if self.contract_w > 0 else None,
                "hold_s": round(self.hold_s, 1) if np.isfinite(self.hold_s) else None,
                "sustain_s": self.sustain_s, "holdable": self.holdable}


def headroom(fleet: FleetState, eligible: BoolArray, contracts: Sequence[ContractedService],
             params: EnergyParams) -> list[ContractHeadroom]:
    """Headroom of each contract (HEADROOM); contracts sharing a direction share its energy.

    Power in a direction is what the eligible rows' ratings can move from the site baseline
    (crossing zero included); energy is their usable energy that way. `holdable_w` is limited
    by both (energy / sustain time), `hold_s` is the energy over Pc (0 when the ratings cannot
    reach Pc). A contract answering both directions (FCR) reports the weaker one.
    """
    lo, hi = window(fleet, params)
    rows = np.asarray(eligible, dtype=bool)
    dis = np.where(fleet.can_discharge, fleet.max_discharge_w, 0.0)
    e_down, e_up = usable_wh(fleet.soc_frac, lo, hi, fleet.capacity_wh)
    base = float(np.where(rows, fleet.baseline_w, 0.0).sum())
    power = {"low": float(dis[rows].sum()) + base,
             "high": float(fleet.max_charge_w[rows].sum()) - base}
    known = bool(np.all(np.isfinite(fleet.soc_frac[rows]) & np.isfinite(fleet.capacity_wh[rows])))
    energy = {"low": float(e_down[rows].sum()), "high": float(e_up[rows].sum())}
    out = []
    for c in contracts:
        dirs = ("low", "high") if c.definition.direction == "both" else (c.definition.direction,)
        held, hold = [], []
        for d in dirs:
            others = [o for o in contracts if o is not c
                      and o.definition.direction in (d, "both")]
            e_wh = max(0.0, energy[d] - sum(o.contract_w * o.definition.sustain_s
                                            for o in others) / S_PER_H)
            p_w = max(0.0, power[d] - sum(o.contract_w for o in others))
            t_s = e_wh * S_PER_H / c.contract_w if known else float("inf")
            by_energy = e_wh * S_PER_H / c.definition.sustain_s if known else float("inf")
            held.append(min(c.contract_w, p_w, by_energy))
            hold.append(t_s if p_w >= c.contract_w else 0.0)
        out.append(ContractHeadroom(c.definition.name, c.contract_w, c.definition.sustain_s,
                                    min(held), min(hold)))
    return out


def reserve_low(rooms: Sequence[ContractHeadroom], ratio: float) -> list[ContractHeadroom]:
    """Contracts that cannot be held for `ratio` x their sustain time (the alarm's trigger)."""
    return [r for r in rooms if r.low(ratio)]

"""Battery ageing per vehicle: the seed's chemistry-dependent calendar and cycle models.

Pure numpy over struct-of-arrays state, one vectorised pass per step; no I/O, no clock reads
(the step length `dt_s` is passed in). Used by `evaluate` and the daemon's telemetry.

Model (Bayram & Shi, IEEE OJVT 2024, Section III-D, from Sayfutdinov et al. 2020, ref. [51];
20 °C and C-rate <= 1 assumed constant by the source):

    eq. 5, cycle ageing per cycle:    L_cycle(DoD)  = A_j·DoD² + B_j·DoD
    eq. 6, calendar ageing per day:   L_cal(SoC)    = X_j·SoC² + Y_j·SoC + Z_j

with DoD and SoC as fractions 0..1 and L as a *fraction* of nominal capacity (the seed's worked
example multiplies eq. 6 by 100 % to get a percentage). Parameters: seed Table 3 (`TABLE_3`).

Accumulation (our choices, stated because the seed gives only the per-day / per-cycle rates):
- Calendar: eq. 6 at the step's SoC, times dt / 1 day; it accrues all the time, in use or not.
- Cycle: half-cycles by SoC reversal counting. Each time a vehicle's SoC changes direction, the
  swing since the previous turning point closes a half-cycle of depth DoD = |swing| costing
  0.5·L_cycle(DoD); the swing in progress is counted the same way when read. All Table 3 A_j are
  negative (L_cycle concave), so this is conservative against rainflow pairing of nested cycles,
  and for the small swings of frequency response it tends to B_j·Σ|ΔSoC|/2 (throughput).
- Calendar and cycle losses add (as in [51]); the seed's eq. 4 square-root/t^0.75 forms belong to
  a different model (ref. [52]) and are not used.

The seed's worked example (Section III-E) prints "NMC, 50 % SoC, 40 days -> 0.1132 %"; eq. 6 with
the Table 3 NMC numbers it quotes gives 0.12809 % at 50 % SoC. 0.1132 % is exactly Z_NMC x 40 d
x 100 %, i.e. the printed arithmetic drops the SoC terms. We implement eq. 6 as written; the unit
test pins both facts.

Errors (one tree):
    ValueError
     └── AgeingError        unknown chemistry, bad shapes or non-finite inputs
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

SECONDS_PER_DAY = 86_400.0


class AgeingError(ValueError):
    """Unknown chemistry, inconsistent array shapes or non-finite inputs."""


@dataclass(frozen=True, slots=True)
class AgeingParams:
    """Seed Table 3 row: calendar (X, Y, Z; per day vs SoC) and cycle (A, B; per cycle vs DoD)."""

    chemistry: str
    x: float
    y: float
    z: float
    a: float
    b: float


# Seed Table 3 (from ref. [51]). Columns X Y Z (calendar) and A B (cycle), rows j = 1..4.
# The OCR of the seed prints NMC's A as "-4.05E05": the sign pattern of the column and the
# magnitudes of its neighbours make it -4.05E-05.
TABLE_3: dict[str, AgeingParams] = {
    "LFP": AgeingParams("LFP", 6.02e-06, 1.35e-05, 1.85e-05, -4.72e-05, 9.62e-05),
    "LMO": AgeingParams("LMO", 6.81e-05, 4.02e-05, 1.63e-05, -1.21e-04, 4.01e-04),
    "NMC": AgeingParams("NMC", 8.07e-06, 3.41e-06, 2.83e-05, -4.05e-05, 1.01e-04),
    "LTO": AgeingParams("LTO", 3.03e-06, 2.81e-05, 5.02e-06, -1.57e-05, 4.40e-05),
}
# Chemistries Table 3 lacks, mapped to the nearest family it has. NCA (Tesla Model 3 LR 2020) is a
# layered nickel-rich oxide like NMC; an approximation until NCA-specific parameters are sourced.
PROXIES: dict[str, str] = {"NCA": "NMC"}
DEFAULT_CHEMISTRY = "NMC"  # seed §II-D: 76 % of 50 EV models (ref. [33])


def params_for(chemistry: str) -> AgeingParams:
    """Table 3 parameters for a chemistry name (case-insensitive; NCA via PROXIES).

    Raises:
        AgeingError: the chemistry is neither in Table 3 nor in PROXIES.
    """
    key = chemistry.strip().upper()
    key = PROXIES.get(key, key)
    if key not in TABLE_3:
        known = ", ".join([*TABLE_3, *PROXIES])
        raise AgeingError(f"unknown battery chemistry {chemistry!r}; known: {known}")
    return TABLE_3[key]


def calendar_loss_frac_per_day(p: AgeingParams, soc_frac: float | FloatArray) -> FloatArray:
    """Seed eq. 6: capacity fraction lost per day idling at `soc_frac` (0..1)."""
    s = np.asarray(soc_frac, dtype=np.float64)
    out: FloatArray = (p.x * s + p.y) * s + p.z
    return out


def cycle_loss_frac(p: AgeingParams, dod_frac: float | FloatArray) -> FloatArray:
    """Seed eq. 5: capacity fraction lost by one full cycle of depth `dod_frac` (0..1)."""
    d = np.asarray(dod_frac, dtype=np.float64)
    out: FloatArray = (p.a * d + p.b) * d
    return out


def calendar_loss_pct(chemistry: str, soc_frac: float, days: float) -> float:
    """Seed eq. 6 accumulated over `days` at constant SoC, in % of nominal capacity."""
    return float(calendar_loss_frac_per_day(params_for(chemistry), soc_frac)) * days * 100.0


class AgeingState:
    """Accumulated calendar and cycle ageing of N vehicles (struct of arrays).

    Args:
        chemistries: one chemistry name per vehicle (see `params_for`).
        min_reversal_frac: a SoC move against the current direction smaller than this is not a
            turning point (measurement noise). 0 counts every reversal, which is right for the
            exact SoC of a simulation: frequency response is made of tiny swings.
    """

    def __init__(self, chemistries: Sequence[str], *, min_reversal_frac: float = 0.0) -> None:
        if not (math.isfinite(min_reversal_frac) and min_reversal_frac >= 0):
            raise AgeingError("min_reversal_frac must be finite and >= 0")
        rows = [params_for(c) for c in chemistries]
        self.n = len(rows)
        self._x, self._y, self._z, self._a, self._b = (
            np.array([getattr(r, k) for r in rows], dtype=np.float64) for k in "xyzab")
        self._hyst = min_reversal_frac
        self.calendar_frac = np.zeros(self.n)
        self._closed_cycle_frac = np.zeros(self.n)
        self._ref = np.full(self.n, np.nan)   # SoC at the last turning point
        self._ext = np.full(self.n, np.nan)   # furthest SoC since then
        self._dir = np.zeros(self.n)          # +1 rising, -1 falling, 0 not yet known
        self.throughput_wh = np.zeros(self.n)  # |energy| moved through the battery
        self.max_c_rate = np.zeros(self.n)    # the model assumes <= 1 (seed, ref. [51])
        self.capacity_wh = np.full(self.n, np.nan)  # last capacity seen (for `cost`)
        self.elapsed_s = 0.0

    def _check(self, name: str, val: float | FloatArray) -> FloatArray:
        arr = np.broadcast_to(np.asarray(val, dtype=np.float64), (self.n,))
        if not np.all(np.isfinite(arr)):
            raise AgeingError(f"{name}: every value must be finite")
        return arr

    def step(self, dt_s: float, soc_frac: float | FloatArray, power_w: float | FloatArray,
             capacity_wh: float | FloatArray) -> None:
        """Advance all vehicles by `dt_s` seconds spent at `soc_frac` moving `power_w`.

        Args:
            dt_s: step length (s, >= 0).
            soc_frac: SoC at the end of the step, 0..1 (one value or one per vehicle).
            power_w: battery power over the step, either sign (throughput and C-rate only).
            capacity_wh: nominal capacity (C-rate and `cost`), > 0.

        Raises:
            AgeingError: non-finite input or a shape that is not one-per-vehicle.
        """
        if not (math.isfinite(dt_s) and dt_s >= 0):
            raise AgeingError(f"dt_s must be finite and >= 0, got {dt_s!r}")
        soc = np.clip(self._check("soc_frac", soc_frac), 0.0, 1.0)
        p_w = np.abs(self._check("power_w", power_w))
        cap = self._check("capacity_wh", capacity_wh)
        if np.any(cap <= 0):
            raise AgeingError("capacity_wh must be > 0")
        self.calendar_frac += ((self._x * soc + self._y) * soc + self._z) * (dt_s / SECONDS_PER_DAY)
        self.throughput_wh += p_w * (dt_s / 3600.0)
        self.max_c_rate = np.maximum(self.max_c_rate, p_w / cap)
        self.capacity_wh = cap.copy()
        self.elapsed_s += dt_s
        self._count_reversals(soc)

    def _count_reversals(self, soc: FloatArray) -> None:
        first = np.isnan(self._ref)
        self._ref = np.where(first, soc, self._ref)
        ext = np.where(first, soc, self._ext)
        move = soc - ext
        forward = ((self._dir == 0) & (move != 0)) | (move * self._dir > 0)
        reverse = (self._dir != 0) & (move * self._dir < 0) & (np.abs(move) > self._hyst)
        depth = np.abs(ext - self._ref)
        self._closed_cycle_frac += np.where(reverse, 0.5 * (self._a * depth + self._b) * depth, 0.0)
        self._ref = np.where(reverse, ext, self._ref)
        self._dir = np.where(forward & (self._dir == 0), np.sign(move),
                             np.where(reverse, -self._dir, self._dir))
        self._ext = np.where(forward | reverse, soc, ext)

    @property
    def cycle_frac(self) -> FloatArray:
        """Cycle ageing so far (fraction), closed half-cycles plus the swing in progress."""
        depth = np.where(np.isnan(self._ref), 0.0, np.abs(self._ext - self._ref))
        out: FloatArray = self._closed_cycle_frac + 0.5 * (self._a * depth + self._b) * depth
        return out

    @property
    def loss_frac(self) -> FloatArray:
        """Total capacity lost per vehicle (fraction of nominal)."""
        out: FloatArray = self.calendar_frac + self.cycle_frac
        return out

    @property
    def loss_pct(self) -> FloatArray:
        """Total capacity lost per vehicle, % of nominal (telemetry)."""
        out: FloatArray = self.loss_frac * 100.0
        return out

    @property
    def equivalent_full_cycles(self) -> FloatArray:
        """Throughput / (2 x capacity): one full cycle moves the capacity out and back in."""
        out: FloatArray = self.throughput_wh / (2.0 * self.capacity_wh)
        return out

    def cost(self, price_per_kwh: float, *, end_of_life_loss_frac: float | None = None
             ) -> FloatArray:
        """Ageing cost per vehicle in the currency of `price_per_kwh` (€/kWh, £/kWh, ...).

        Args:
            price_per_kwh: battery price per kWh of nominal capacity (config), >= 0.
            end_of_life_loss_frac: None values the lost kWh at the battery price; a fraction
                (e.g. 0.2 for the usual 80 % end of life) instead charges that share of a
                replacement pack per unit of loss: cost = loss / eol x capacity x price.

        Raises:
            AgeingError: a negative or non-finite price, or eol outside (0, 1].
        """
        if not (math.isfinite(price_per_kwh) and price_per_kwh >= 0):
            raise AgeingError("price_per_kwh must be finite and >= 0")
        scale = 1.0
        if end_of_life_loss_frac is not None:
            if not 0 < end_of_life_loss_frac <= 1:
                raise AgeingError("end_of_life_loss_frac must be within (0, 1]")
            scale = 1.0 / end_of_life_loss_frac
        cap_kwh = np.nan_to_num(self.capacity_wh / 1000.0)
        out: FloatArray = self.loss_frac * scale * cap_kwh * price_per_kwh
        return out


def accumulate(chemistries: Sequence[str], t_s: FloatArray, soc_frac: FloatArray,
               power_w: FloatArray, capacity_wh: float | FloatArray) -> AgeingState:
    """Ageing of N vehicles over a recorded run: `soc_frac`, `power_w` shaped (T, N).

    Sample k covers [t_s[k-1], t_s[k]]; the first sample only sets the starting SoC.

    Raises:
        AgeingError: shapes disagree, t_s is not increasing, or inputs are not finite.
    """
    t = np.asarray(t_s, dtype=np.float64)
    soc = np.asarray(soc_frac, dtype=np.float64)
    pw = np.asarray(power_w, dtype=np.float64)
    state = AgeingState(chemistries)
    if soc.shape != pw.shape or soc.ndim != 2 or soc.shape != (t.size, state.n):
        raise AgeingError(f"soc_frac and power_w must be shaped (len(t_s), {state.n})")
    dt = np.diff(t)
    if np.any(~np.isfinite(dt)) or np.any(dt < 0):
        raise AgeingError("t_s must be finite and non-decreasing")
    if t.size:
        state.step(0.0, soc[0], pw[0], capacity_wh)
    for k in range(1, t.size):  # over time; each step is vectorised over the vehicles
        state.step(float(dt[k - 1]), soc[k], pw[k], capacity_wh)
    return state

"""Ageing and the run record of a fast-time run: `RunRecorder` watches the closed loop tick by tick.

Per vehicle it integrates throughput and steps the seed's ageing model (control.ageing) once per
simulated second; with `keep_series` it also keeps a <= 10 Hz series of frequency, expected and
delivered power and SoC, and builds the `--record` document `v2ghub report` reads. Per tick: a few
numpy calls over the vehicles, no Python loop over them.

Not here: writing the record to a file (evaluate.py's CLI edge), the loop itself (closed_loop.py).
No I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from controller.control.ageing import AgeingState
from controller.tools.closed_loop import TIME_EPS_S, EvaluateError
from sim_chargers.plant import FloatArray

# Battery price for `ageing_cost` when none is given, per kWh of nominal capacity: BloombergNEF's
# December 2024 battery price survey gives $97/kWh for BEV packs ($115/kWh over all uses); rounded.
# The cost comes out in the price's currency.
BATTERY_PRICE_PER_KWH = 100.0
# Ageing is stepped once per simulated second, not per tick. Calendar ageing is a per-day rate, and
# a 10 kW charger moves a 40 kWh battery's SoC by < 0.007 % a second, so the decimation only
# misses SoC reversals shorter than a second (half-cycles < 1e-4 deep); throughput is still
# integrated every tick.
AGEING_STEP_S = 1.0
RECORD_PERIOD_S = 0.1  # the run record (--record) keeps samples at most at 10 Hz (issue 3 item 7)
RECORD_FORMAT = "v2ghub-run-record"  # `format` of the --record document; `version` 1
_RECORD_DECIMALS = {"t_s": 3, "f_hz": 5, "expected_w": 1, "delivered_w": 1, "soc_min": 6,
                    "soc_max": 6, "soc_mean": 6}


class RunSummary(Protocol):
    """What the record needs of a result (evaluate.EvalResult)."""

    def to_dict(self) -> dict[str, Any]: ...


class RunRecorder:
    """Watches the closed loop tick by tick: per-vehicle ageing and, optionally, a run record.

    `evaluate` starts it, calls `observe` on every tick (from `ClosedLoop`) and `finish` at the
    end; then `ageing` holds the per-vehicle state and, with `keep_series`, `to_record(result)`
    is the `--record` document `v2ghub report` reads. Per tick: a few numpy calls over the
    vehicles, no Python loop over them.
    """

    def __init__(self, *, keep_series: bool = False, ageing_step_s: float = AGEING_STEP_S,
                 record_period_s: float = RECORD_PERIOD_S) -> None:
        self.keep_series = keep_series
        self.ageing_step_s = ageing_step_s
        self.record_period_s = record_period_s
        self.ageing = AgeingState([])
        self.price_per_kwh = BATTERY_PRICE_PER_KWH
        self.models: tuple[str, ...] = ()
        self.capacity_wh = np.zeros(0)
        self.full_delivery_s = math.nan
        self.series: dict[str, FloatArray] = {}
        self._energy_wh = np.zeros(0)
        self._soc_last = np.zeros(0)
        self._t_prev = math.nan
        self._t_aged = 0.0
        self._t_kept = -math.inf
        self._k = 0
        self._kept: list[int] = []
        self._soc_stats: list[tuple[float, float, float]] = []

    def start(self, models: Sequence[str], chemistries: Sequence[str], capacity_wh: FloatArray,
              soc_frac: FloatArray, price_per_kwh: float) -> None:
        """Vehicles at t = 0 (one entry each); sets every SoC reference."""
        if not (math.isfinite(price_per_kwh) and price_per_kwh >= 0):
            raise EvaluateError(f"battery_price_per_kwh: must be >= 0, got {price_per_kwh!r}")
        self.models, self.price_per_kwh = tuple(models), price_per_kwh
        self.capacity_wh = np.asarray(capacity_wh, dtype=np.float64)
        self.ageing = AgeingState(chemistries)
        self.ageing.step(0.0, soc_frac, 0.0, self.capacity_wh)
        self._energy_wh = np.zeros(self.ageing.n)
        self._soc_last = soc_frac

    def observe(self, now_s: float, power_w: FloatArray, soc_frac: FloatArray) -> None:
        """One tick: the plant's power (W) and SoC (0..1) per vehicle at `now_s`."""
        if not math.isnan(self._t_prev):
            self._energy_wh += np.abs(power_w) * ((now_s - self._t_prev) / 3600.0)
        self._t_prev, self._soc_last = now_s, soc_frac
        if now_s - self._t_aged >= self.ageing_step_s - TIME_EPS_S:
            self._age(now_s, soc_frac)
        if self.keep_series and now_s - self._t_kept >= self.record_period_s - TIME_EPS_S:
            self._t_kept = now_s
            self._kept.append(self._k)
            self._soc_stats.append((float(soc_frac.min(initial=1.0)),
                                    float(soc_frac.max(initial=0.0)), float(soc_frac.mean())))
        self._k += 1

    def _age(self, now_s: float, soc_frac: FloatArray) -> None:
        dt_s = now_s - self._t_aged
        mean_power_w = self._energy_wh * (3600.0 / dt_s) if dt_s > 0 else 0.0
        self.ageing.step(dt_s, soc_frac, mean_power_w, self.capacity_wh)
        self._energy_wh[:] = 0.0
        self._t_aged = now_s

    def finish(self, t_s: FloatArray, f_hz: FloatArray, expected_w: FloatArray,
               delivered_w: FloatArray, full_delivery_s: float) -> None:
        """Age the last partial step; keep the recorded ticks' samples (with `keep_series`)."""
        if self._t_prev > self._t_aged:
            self._age(self._t_prev, self._soc_last)
        self.full_delivery_s = full_delivery_s
        if self.keep_series:
            idx = np.asarray(self._kept, dtype=np.intp)
            stats = np.asarray(self._soc_stats, dtype=np.float64).reshape(-1, 3)
            self.series = {"t_s": t_s[idx], "f_hz": f_hz[idx], "expected_w": expected_w[idx],
                           "delivered_w": delivered_w[idx], "soc_min": stats[:, 0],
                           "soc_max": stats[:, 1], "soc_mean": stats[:, 2]}

    @property
    def loss_pct_mean(self) -> float:
        """Capacity lost so far, % of nominal, mean over the vehicles."""
        pct = self.ageing.loss_pct
        return float(pct.mean()) if pct.size else 0.0

    @property
    def loss_pct_max(self) -> float:
        """Capacity lost so far, % of nominal, worst vehicle."""
        return float(self.ageing.loss_pct.max(initial=0.0))

    @property
    def cost(self) -> float:
        """Fleet ageing cost so far: lost kWh x battery price."""
        return float(self.ageing.cost(self.price_per_kwh).sum())

    def to_record(self, result: RunSummary) -> dict[str, Any]:
        """The `--record` document: summary, <= 10 Hz series, per-vehicle final ageing."""
        if not self.keep_series:
            raise EvaluateError("to_record: the recorder was made without keep_series")
        return {
            "format": RECORD_FORMAT, "version": 1, "source": "evaluate",
            "summary": {**result.to_dict(), "required_full_delivery_s": self.full_delivery_s},
            "record": {k: np.round(v, _RECORD_DECIMALS[k]).tolist()
                       for k, v in self.series.items()},
            "vehicles": {
                "model": list(self.models),
                "capacity_kwh": (self.capacity_wh / 1000.0).tolist(),
                "ageing_loss_pct": self.ageing.loss_pct.tolist(),
                "ageing_cost": self.ageing.cost(self.price_per_kwh).tolist(),
                "throughput_kwh": (self.ageing.throughput_wh / 1000.0).tolist(),
            },
        }

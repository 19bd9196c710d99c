"""Tests for controller/tools/run_record.py: per-vehicle ageing and the <= 10 Hz run record."""

from __future__ import annotations

import numpy as np
import pytest

from controller.control.services import contracts_from
from controller.tools.closed_loop import EvaluateError
from controller.tools.evaluate import evaluate
from controller.tools.run_record import RECORD_FORMAT, RunRecorder
from tests.unit.tools.eval_inputs import ariya_fleet, run_dr, step_trace


def test_ageing_is_accumulated_per_vehicle_and_priced() -> None:
    rec = RunRecorder()
    res = run_dr(100.0, recorder=rec, battery_price_per_kwh=50.0)
    pct = rec.ageing.loss_pct
    assert pct.shape == (30,)
    assert 0.0 < res.ageing_loss_pct_mean <= res.ageing_loss_pct_max
    assert res.ageing_loss_pct_max == pytest.approx(float(pct.max()))
    assert res.ageing_cost == pytest.approx(float((pct / 100 * 87.0 * 50.0).sum()))
    assert res.battery_price_per_kwh == 50.0
    # 45 s at 0.8 SoC ages less than the exporting run adds: cycle ageing is counted
    idle = evaluate(ariya_fleet(), step_trace(50.0), contracts_from([("DR-L", 100.0)]))
    assert res.ageing_loss_pct_mean > idle.ageing_loss_pct_mean > 0.0


def test_record_is_at_most_10_hz_and_carries_per_vehicle_ageing() -> None:
    rec = RunRecorder(keep_series=True)
    res = run_dr(100.0, recorder=rec)  # 20 Hz trace: 20 Hz ticks
    doc = rec.to_record(res)
    series = doc["record"]
    t = np.asarray(series["t_s"])
    assert np.diff(t).min() >= 0.1 - 1e-9
    assert t[-1] == pytest.approx(res.duration_s, abs=0.1)
    assert {len(v) for v in series.values()} == {t.size}
    assert min(series["soc_min"]) == pytest.approx(res.soc_min, abs=1e-4)
    assert len(doc["vehicles"]["ageing_loss_pct"]) == 30
    assert doc["summary"]["compliance_pct"] == res.compliance_pct


def _observed(rec: RunRecorder, power_w: float, seconds: float, tick_s: float = 0.05) -> None:
    """Two vehicles at SoC 0.5, `power_w` each, ticked for `seconds`; then finished."""
    rec.start(["A", "B"], ["NMC", "LFP"], np.full(2, 40_000.0), np.full(2, 0.5), 100.0)
    t = np.arange(round(seconds / tick_s) + 1) * tick_s
    for now_s in t.tolist():
        rec.observe(now_s, np.full(2, power_w), np.full(2, 0.5))
    zeros = np.zeros(t.size)
    rec.finish(t, zeros + 50.0, zeros, zeros, 1.0)


def test_throughput_is_integrated_every_tick_and_aged_in_whole_seconds() -> None:
    rec = RunRecorder()
    _observed(rec, -10_000.0, 2.5)  # 10 kW export for 2.5 s: the last half second is aged too
    assert rec.ageing.throughput_wh.tolist() == pytest.approx([10_000.0 * 2.5 / 3600] * 2)
    assert rec.ageing.elapsed_s == pytest.approx(2.5)
    assert rec.loss_pct_max >= rec.loss_pct_mean > 0.0
    assert rec.cost == pytest.approx(float(rec.ageing.cost(100.0).sum()))


def test_a_recorder_without_series_makes_no_record_and_a_bad_price_is_refused() -> None:
    rec = RunRecorder()
    _observed(rec, 0.0, 1.0)
    with pytest.raises(EvaluateError, match="keep_series"):
        rec.to_record(run_dr(10.0))
    kept = RunRecorder(keep_series=True)
    _observed(kept, 0.0, 1.0)
    assert kept.to_record(run_dr(10.0))["format"] == RECORD_FORMAT
    with pytest.raises(EvaluateError, match="battery_price_per_kwh"):
        RunRecorder().start(["A"], ["NMC"], np.full(1, 40_000.0), np.full(1, 0.5), -1.0)

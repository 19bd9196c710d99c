"""Compliance tube (SPEC §3.5): the scores against hand-worked cases and a brute-force oracle."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.control.metrics import event_timings, score, tube

PC_W = 100_000.0


def brute_tube(t, e, pc, t_full):
    # the window's start carries the same 1 us slack as the implementation (float round-off)
    lo = np.array([e[(t >= ti - t_full - 1e-6) & (t <= ti)].min() for ti in t]) - 0.03 * pc
    hi = np.array([e[(t >= ti - t_full - 1e-6) & (t <= ti)].max() for ti in t]) + 0.03 * pc
    return lo, hi


def test_perfect_delivery_is_fully_compliant():
    t = np.arange(0, 10, 0.1)
    e = np.where(t > 2, -PC_W, 0.0)
    c = score(t, e, e, PC_W, full_delivery_s=1.0)
    assert c.compliance_pct == 100.0
    assert c.max_shortfall_pct == 0.0
    assert c.energy_shortfall_kwh == 0.0
    assert c.start_delay_s == 0.0


def test_delivery_late_by_more_than_full_delivery_time_is_penalised():
    t = np.arange(0, 10, 0.1)
    e = np.where(t >= 2, -PC_W, 0.0)
    d = np.where(t >= 4, -PC_W, 0.0)  # 2 s late for a 1 s service
    c = score(t, e, d, PC_W, full_delivery_s=1.0)
    # non-compliant from t=3.0 (window no longer contains 0) up to t=3.9: 10 of 100 samples
    assert c.compliance_pct == pytest.approx(90.0)
    assert c.max_shortfall_pct == pytest.approx(97.0)
    assert c.start_delay_s == pytest.approx(2.0)
    assert c.full_delivery_s == pytest.approx(2.0)
    assert c.energy_shortfall_kwh == pytest.approx(0.97 * PC_W * 1.0 / 3.6e6)


def test_delivery_within_the_full_delivery_window_is_compliant():
    t = np.arange(0, 10, 0.1)
    e = np.where(t >= 2, -PC_W, 0.0)
    d = np.where(t >= 2.8, -PC_W, 0.0)
    assert score(t, e, d, PC_W, full_delivery_s=1.0).compliance_pct == 100.0


def test_over_delivery_beyond_tolerance_is_not_compliant():
    t = np.arange(0, 5, 0.5)
    e = np.full(t.size, -0.5 * PC_W)
    d = np.full(t.size, -0.6 * PC_W)
    assert score(t, e, d, PC_W, full_delivery_s=1.0).compliance_pct == 0.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1.0, 1.0), min_size=1, max_size=60), st.floats(0.05, 3.0))
def test_tube_matches_brute_force(shares, t_full):
    e = np.array(shares) * PC_W
    t = np.cumsum(np.full(e.size, 0.1))
    lo, hi = tube(t, e, PC_W, t_full)
    blo, bhi = brute_tube(t, e, PC_W, t_full)
    np.testing.assert_allclose(lo, blo)
    np.testing.assert_allclose(hi, bhi)


def test_mismatched_arrays_are_rejected():
    with pytest.raises(ValueError, match="equal"):
        score(np.arange(3.0), np.zeros(2), np.zeros(3), PC_W, 1.0)


def test_event_timings_split_runs_by_sign_and_measure_each_event():
    t = np.arange(0, 20, 0.5)
    e = np.where((t >= 2) & (t < 6), -PC_W, 0.0) + np.where((t >= 10) & (t < 14), PC_W, 0.0)
    d = (np.where((t >= 3) & (t < 6.5), -PC_W, 0.0)
         + np.where((t >= 10.5) & (t < 14), 0.5 * PC_W, 0.0)
         + np.where((t >= 12) & (t < 14), 0.5 * PC_W, 0.0))
    ev = event_timings(t, e, d, PC_W)
    assert [(x.onset_s, x.end_s, x.sign) for x in ev] == [(2.0, 5.5, -1), (10.0, 13.5, 1)]
    assert [x.start_delay_s for x in ev] == [1.0, 0.5]
    assert [x.full_delivery_s for x in ev] == [1.0, 2.0]


def test_event_never_reached_within_the_event_reports_none():
    t = np.arange(0, 10, 1.0)
    e = np.where((t >= 2) & (t < 4), -PC_W, 0.0)
    d = np.where(t >= 5, -PC_W, 0.0)  # far too late: after the event
    (ev,) = event_timings(t, e, d, PC_W)
    assert ev.start_delay_s is None
    assert ev.full_delivery_s is None


def test_no_event_when_expected_stays_within_tolerance():
    t = np.arange(0, 5, 1.0)
    assert event_timings(t, np.full(5, 0.02 * PC_W), np.zeros(5), PC_W) == []


def test_first_event_timing_agrees_with_score_for_a_single_step():
    t = np.arange(0, 10, 0.1)
    e = np.where(t >= 2, -PC_W, 0.0)
    d = np.where(t >= 2.6, -0.5 * PC_W, 0.0) + np.where(t >= 3.1, -0.5 * PC_W, 0.0)
    c = score(t, e, d, PC_W, 1.0)
    (ev,) = event_timings(t, e, d, PC_W)
    assert ev.start_delay_s == pytest.approx(c.start_delay_s)
    assert ev.full_delivery_s == pytest.approx(c.full_delivery_s)

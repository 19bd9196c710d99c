"""Compliance tube (SPEC §3.5): the scores against hand-worked cases and a brute-force oracle."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.control.metrics import score, tube

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

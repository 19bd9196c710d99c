"""Tests for controller/control/ageing.py: seed eqs. 5-6, Table 3, accumulation and cost."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.control.ageing import (
    TABLE_3,
    AgeingError,
    AgeingState,
    accumulate,
    calendar_loss_frac_per_day,
    calendar_loss_pct,
    cycle_loss_frac,
    params_for,
)

NMC = TABLE_3["NMC"]
DAY_S = 86_400.0


def test_table_3_parameters_are_the_seeds() -> None:
    rows = {k: (p.x, p.y, p.z, p.a, p.b) for k, p in TABLE_3.items()}
    assert rows == {
        "LFP": (6.02e-06, 1.35e-05, 1.85e-05, -4.72e-05, 9.62e-05),
        "LMO": (6.81e-05, 4.02e-05, 1.63e-05, -1.21e-04, 4.01e-04),
        "NMC": (8.07e-06, 3.41e-06, 2.83e-05, -4.05e-05, 1.01e-04),
        "LTO": (3.03e-06, 2.81e-05, 5.02e-06, -1.57e-05, 4.40e-05),
    }


def test_seed_worked_example_nmc_40_days_prints_0_1132_pct_the_eq6_constant_term() -> None:
    # Seed Section III-E prints 0.1132 % for NMC, 50 % SoC, 40 days. That figure is exactly
    # Z_NMC x 40 d x 100 %: eq. 6 with the SoC terms dropped (eq. 6 at SoC 0).
    assert NMC.z * 40 * 100 == pytest.approx(0.1132, rel=1e-12)
    assert calendar_loss_pct("NMC", 0.0, 40.0) == pytest.approx(0.1132, rel=1e-12)


def test_eq6_at_half_soc_for_40_days_is_0_12809_pct_not_the_printed_0_1132() -> None:
    # The seed's own expression (8.07e-6 x 0.5^2 + 3.41e-6 x 0.5 + 2.83e-5) x 40 x 100 %.
    expected = (8.07e-6 * 0.5**2 + 3.41e-6 * 0.5 + 2.83e-5) * 40 * 100
    assert calendar_loss_pct("NMC", 0.5, 40.0) == pytest.approx(expected, rel=1e-12)
    assert calendar_loss_pct("NMC", 0.5, 40.0) == pytest.approx(0.12809, rel=1e-9)


def test_stepwise_calendar_ageing_matches_the_closed_form() -> None:
    st_ = AgeingState(["NMC"])
    for _ in range(40 * 24):  # 40 days in 1 h steps at 50 % SoC, idle
        st_.step(3600.0, 0.5, 0.0, 87_000.0)
    assert st_.loss_pct[0] == pytest.approx(calendar_loss_pct("NMC", 0.5, 40.0), rel=1e-9)
    assert st_.cycle_frac[0] == 0.0


def test_one_full_cycle_costs_eq5_at_dod_1() -> None:
    soc = np.concatenate([np.linspace(1, 0, 11), np.linspace(0, 1, 11)[1:]])
    st_ = AgeingState(["NMC"])
    for s in soc:
        st_.step(0.0, s, 0.0, 60_000.0)
    assert st_.cycle_frac[0] == pytest.approx(NMC.a + NMC.b, rel=1e-12)
    assert cycle_loss_frac(NMC, 1.0) == pytest.approx(NMC.a + NMC.b)


def test_small_swings_tend_to_half_b_times_soc_throughput() -> None:
    st_ = AgeingState(["LFP"])
    swing = 0.002
    soc = 0.6 + swing * (np.arange(2001) % 2)  # 2000 half-cycles of 0.2 % SoC
    for s in soc:
        st_.step(1.0, s, 5000.0, 62_000.0)
    lfp = TABLE_3["LFP"]
    assert st_.cycle_frac[0] == pytest.approx(2000 * 0.5 * (lfp.a * swing + lfp.b) * swing)
    assert st_.cycle_frac[0] == pytest.approx(0.5 * lfp.b * 2000 * swing, rel=1e-2)


def test_reversals_smaller_than_the_threshold_are_ignored() -> None:
    st_ = AgeingState(["NMC"], min_reversal_frac=0.01)
    for s in (0.5, 0.6, 0.595, 0.7, 0.4):  # the 0.5 % dip is noise
        st_.step(0.0, s, 0.0, 1.0)
    # half-cycles: 0.5 -> 0.7 (closed) and 0.7 -> 0.4 (in progress)
    assert st_.cycle_frac[0] == pytest.approx(
        0.5 * (cycle_loss_frac(NMC, 0.2) + cycle_loss_frac(NMC, 0.3)))


def test_vehicles_are_accumulated_independently_per_chemistry() -> None:
    st_ = AgeingState(["NMC", "LMO", "NCA"])
    st_.step(DAY_S, np.array([0.5, 0.5, 0.5]), 0.0, np.array([58e3, 40e3, 78.1e3]))
    day = [float(calendar_loss_frac_per_day(params_for(c), 0.5)) for c in ("NMC", "LMO", "NMC")]
    np.testing.assert_allclose(st_.calendar_frac, day)


def test_unknown_chemistry_and_non_finite_inputs_are_refused() -> None:
    with pytest.raises(AgeingError, match="unknown battery chemistry"):
        AgeingState(["NiMH"])
    st_ = AgeingState(["NMC", "LFP"])
    with pytest.raises(AgeingError, match="soc_frac"):
        st_.step(1.0, np.array([0.5, np.nan]), 0.0, 1e3)
    with pytest.raises(AgeingError, match="capacity_wh"):
        st_.step(1.0, 0.5, 0.0, 0.0)
    with pytest.raises(AgeingError, match="dt_s"):
        st_.step(-1.0, 0.5, 0.0, 1e3)


def test_cost_values_lost_kwh_at_the_battery_price_or_pro_rata_to_end_of_life() -> None:
    st_ = AgeingState(["NMC"])
    st_.step(100 * DAY_S, 0.0, 0.0, 87_000.0)  # 100 x 2.83e-5 = 0.283 % of 87 kWh
    lost_kwh = 100 * NMC.z * 87.0
    assert st_.cost(150.0)[0] == pytest.approx(lost_kwh * 150.0)
    assert st_.cost(150.0, end_of_life_loss_frac=0.2)[0] == pytest.approx(lost_kwh * 150 / 0.2)
    with pytest.raises(AgeingError):
        st_.cost(-1.0)


def test_throughput_c_rate_and_equivalent_full_cycles() -> None:
    st_ = AgeingState(["NMC"])
    st_.step(3600.0, 0.9, -10_000.0, 50_000.0)  # 10 kWh out of 50 kWh, 0.2 C
    st_.step(3600.0, 1.0, 10_000.0, 50_000.0)
    assert st_.throughput_wh[0] == pytest.approx(20_000.0)
    assert st_.equivalent_full_cycles[0] == pytest.approx(0.2)
    assert st_.max_c_rate[0] == pytest.approx(0.2)


def test_accumulate_over_a_recorded_run_equals_stepping() -> None:
    t = np.arange(0.0, 600.0, 10.0)
    rng = np.random.default_rng(1)
    soc = np.clip(0.7 + np.cumsum(rng.normal(0, 0.001, (t.size, 2)), axis=0), 0, 1)
    pw = rng.normal(0, 5000, (t.size, 2))
    got = accumulate(["NMC", "LTO"], t, soc, pw, 60_000.0)
    ref = AgeingState(["NMC", "LTO"])
    ref.step(0.0, soc[0], pw[0], 60_000.0)
    for k in range(1, t.size):
        ref.step(10.0, soc[k], pw[k], 60_000.0)
    np.testing.assert_allclose(got.loss_frac, ref.loss_frac)
    with pytest.raises(AgeingError, match="shaped"):
        accumulate(["NMC"], t, soc, pw, 60_000.0)


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60),
       st.sampled_from(sorted(TABLE_3)))
def test_loss_never_decreases_and_stays_finite(socs: list[float], chem: str) -> None:
    st_ = AgeingState([chem])
    last = 0.0
    for s in socs:
        st_.step(60.0, s, 1000.0, 50_000.0)
        now = float(st_.loss_frac[0])
        assert np.isfinite(now)
        assert now >= last - 1e-18
        last = now


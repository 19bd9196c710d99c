"""Tests for controller/control/dispatch.py: proportional, saturating, limit-respecting split."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from controller.control.dispatch import headroom_w, split_proportional, split_with_headroom


def arr(*xs: float) -> np.ndarray:
    return np.array(xs, dtype=np.float64)


def bools(*xs: bool) -> np.ndarray:
    return np.array(xs, dtype=bool)


def test_discharge_is_split_in_proportion_to_headroom() -> None:
    # headroom down: 10 kW and 20 kW (baseline 0, discharge 10 / 20 kW)
    target = split_proportional(-15_000.0, arr(0, 0), arr(10_000, 20_000), arr(10_000, 20_000),
                                bools(True, True), bools(True, True))
    assert target == pytest.approx([-5_000, -10_000])
    assert target.dtype == np.float64


def test_charge_is_split_in_proportion_to_headroom_above_baseline() -> None:
    # up headroom: 10-2=8 kW and 4-0=4 kW
    target = split_proportional(6_000.0, arr(2_000, 0), arr(10_000, 4_000), arr(0, 0),
                                bools(False, False), bools(True, True))
    assert target == pytest.approx([6_000, 2_000])


def test_request_beyond_headroom_saturates_every_row_at_its_limit() -> None:
    split = split_with_headroom(-1e9, arr(1_000, 0), arr(10_000, 7_000), arr(10_000, 7_000),
                                bools(True, True), bools(True, True))
    assert split.target_w == pytest.approx([-10_000, -7_000])
    assert split.down_w == pytest.approx(11_000 + 7_000)


def test_station_that_may_not_discharge_floors_at_zero() -> None:
    # row 0 charges at 6 kW and may not discharge: it can give up 6 kW, no more
    target = split_proportional(-1e9, arr(6_000, 0), arr(10_000, 10_000), arr(10_000, 10_000),
                                bools(False, True), bools(True, True))
    assert target == pytest.approx([0.0, -10_000])


def test_ineligible_rows_keep_baseline_and_do_not_count_as_headroom() -> None:
    target = split_proportional(-4_000.0, arr(3_000, 1_500), arr(10_000, 10_000),
                                arr(10_000, 10_000), bools(True, True), bools(False, True))
    assert target[0] == 3_000
    assert target[1] == pytest.approx(1_500 - 4_000)


def test_zero_response_leaves_baseline_clipped_into_limits() -> None:
    target = split_proportional(0.0, arr(12_000, -5_000), arr(10_000, 10_000), arr(0, 0),
                                bools(False, False), bools(True, True))
    assert target == pytest.approx([10_000, 0])


def test_headroom_reports_down_and_up_of_eligible_rows() -> None:
    down, up = headroom_w(arr(2_000, 0, 0), arr(10_000, 5_000, 9_999), arr(10_000, 5_000, 9_999),
                          bools(True, False, True), bools(True, True, False))
    assert down == pytest.approx(12_000)  # row 0: 2 kW + 10 kW; row 1: 0 (no discharge)
    assert up == pytest.approx(8_000 + 5_000)


def test_empty_fleet_gives_empty_targets() -> None:
    split = split_with_headroom(-1_000.0, arr(), arr(), arr(), bools(), bools())
    assert split.target_w.shape == (0,)
    assert (split.down_w, split.up_w) == (0.0, 0.0)


def test_non_finite_response_is_treated_as_zero() -> None:
    target = split_proportional(float("nan"), arr(1_000), arr(10_000), arr(10_000), bools(True),
                                bools(True))
    assert target == pytest.approx([1_000])


power = st.floats(-50_000, 50_000, allow_nan=False)
limit = st.floats(0, 50_000, allow_nan=False)


@st.composite
def fleets(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    n = draw(st.integers(0, 40))
    f = lambda el: draw(hnp.arrays(np.float64, n, elements=el))  # noqa: E731
    b = lambda: draw(hnp.arrays(np.bool_, n))  # noqa: E731
    return f(power), f(limit), f(limit), b(), b()


@given(fleets(), st.floats(-2e6, 2e6, allow_nan=False))
def test_any_inputs_give_finite_targets_within_each_rows_limits(
        fleet: tuple[np.ndarray, ...], response_w: float) -> None:
    base, ceil, dis, can, elig = fleet
    target = split_proportional(response_w, base, ceil, dis, can, elig)
    assert target.shape == base.shape
    assert np.all(np.isfinite(target))
    floor = np.where(can, -dis, 0.0)
    assert np.all(target[elig] >= floor[elig] - 1e-6)
    assert np.all(target[elig] <= ceil[elig] + 1e-6)
    assert np.array_equal(target[~elig], base[~elig])


@given(fleets(), st.floats(-1.0, 1.0))
def test_sum_equals_request_when_within_headroom(fleet: tuple[np.ndarray, ...],
                                                 frac: float) -> None:
    base, ceil, dis, can, elig = fleet
    down, up = headroom_w(base, ceil, dis, can, elig)
    response = frac * (down if frac < 0 else up)
    split = split_with_headroom(response, base, ceil, dis, can, elig)
    clipped = np.where(elig, np.clip(base, np.where(can, -dis, 0.0), ceil), base)
    assert float(np.sum(split.target_w - clipped)) == pytest.approx(response, abs=1e-6 * max(
        1.0, down + up))


@given(fleets(), st.floats(1.0, 1e7))
def test_request_beyond_headroom_delivers_exactly_the_headroom(fleet: tuple[np.ndarray, ...],
                                                               extra: float) -> None:
    base, ceil, dis, can, elig = fleet
    down, _ = headroom_w(base, ceil, dis, can, elig)
    split = split_with_headroom(-(down + extra), base, ceil, dis, can, elig)
    clipped = np.where(elig, np.clip(base, np.where(can, -dis, 0.0), ceil), base)
    assert float(np.sum(clipped - split.target_w)) == pytest.approx(down, abs=1e-6 * max(1, down))

"""Tests for controller/control/departure.py: floor and baseline toward a departure SoC."""

from __future__ import annotations

import math

import numpy as np
import pytest

from controller.control import departure, energy
from controller.control.departure import DepartureParams
from controller.control.fleet import FleetState

KW = 1000.0
P = DepartureParams(margin_s=900.0, efficiency=0.947)


def fleet_of(n: int, *, soc: float = 0.5, capacity_kwh: float = 60.0,
             charge_kw: float = 11.0) -> FleetState:
    f = FleetState()
    for i in range(n):
        f.row("CP", i + 1, max_power_w=charge_kw * KW, can_discharge=True)
    f.soc_frac[:] = soc
    f.capacity_wh[:] = capacity_kwh * KW
    return f


def test_rows_without_a_departure_keep_no_floor_and_a_zero_baseline() -> None:
    f = fleet_of(2)
    f.baseline_w[:] = 123.0
    departure.update(f, 0.0, P)
    assert np.isnan(f.soc_floor_frac).all()
    assert (f.baseline_w == 0.0).all()
    f.departure_at_s[0] = 3600.0  # a time without a target is not a departure
    departure.update(f, 0.0, P)
    assert np.isnan(f.soc_floor_frac[0])
    assert f.baseline_w[0] == 0.0


def test_the_baseline_reaches_the_target_by_departure_minus_the_margin() -> None:
    # 60 kWh from 50 to 80 %: 18 kWh into the battery in 2 h (2 h 15 min - 15 min margin)
    f = fleet_of(1)
    f.departure_at_s[0], f.target_soc_frac[0] = 8100.0, 0.8
    departure.update(f, 0.0, P)
    assert f.baseline_w[0] == pytest.approx(18 * KW / 0.947 / 2.0)
    # the floor: what full rate can still put back by then, 11 kW x 0.947 x 2 h = 20.8 kWh
    assert f.soc_floor_frac[0] == pytest.approx(max(0.0, 0.8 - 11 * 0.947 * 2 / 60))


def test_the_floor_rises_to_the_target_and_the_baseline_to_full_rate_as_time_runs_out() -> None:
    f = fleet_of(1, soc=0.7)
    f.departure_at_s[0], f.target_soc_frac[0] = 3600.0, 0.8
    floors, bases = [], []
    for now in (0.0, 1800.0, 2400.0, 2700.0, 3000.0, 3600.0, 4000.0):
        departure.update(f, now, P)
        floors.append(float(f.soc_floor_frac[0]))
        bases.append(float(f.baseline_w[0]))
    assert floors == sorted(floors)
    assert floors[-1] == pytest.approx(0.8)  # past departure - margin: the target itself
    assert bases == sorted(bases)
    assert bases[-3:] == [11 * KW] * 3  # time is up: full rate while short of the target
    f.soc_frac[0] = 0.8
    departure.update(f, 4000.0, P)
    assert f.baseline_w[0] == 0.0  # reached: nothing more to charge


def test_unknown_soc_charges_at_full_rate_only_when_time_is_up() -> None:
    f = fleet_of(1, soc=math.nan)
    f.departure_at_s[0], f.target_soc_frac[0] = 3600.0, 0.8
    departure.update(f, 0.0, P)
    assert f.baseline_w[0] == 0.0
    assert np.isfinite(f.soc_floor_frac[0])  # capacity and rate are known: a floor exists
    departure.update(f, 2800.0, P)
    assert f.baseline_w[0] == 11 * KW


def test_the_floor_and_target_widen_the_energy_window_so_service_cannot_spend_the_trip() -> None:
    f = fleet_of(2, soc=0.6)
    f.departure_at_s[0], f.target_soc_frac[0] = 1800.0, 0.9  # above the 80 % ceiling
    departure.update(f, 0.0, P)
    lo, hi = energy.window(f, energy.EnergyParams())
    assert lo[0] == pytest.approx(f.soc_floor_frac[0])
    assert lo[0] > 0.2
    assert hi[0] == 0.9
    assert (lo[1], hi[1]) == (0.2, 0.8)  # no departure: the configured window
    dis, _ = energy.power_limits(f.soc_frac, lo, hi, f.capacity_wh, f.max_discharge_w,
                                 f.max_charge_w, 900.0, 900.0)
    assert dis[0] < dis[1]  # less to give when the floor is near

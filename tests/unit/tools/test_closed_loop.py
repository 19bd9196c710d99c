"""Tests for controller/tools/closed_loop.py: the loop's inputs (plant variation, controller
priors, time base) and its OCPP delivery delay."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from controller.control.controller import Controller, ControlParams, make_dispatch
from controller.control.services import contracts_from
from controller.control.vehicles import lookup
from controller.tools.closed_loop import (
    EFFICIENCY_RANGE,
    ClosedLoop,
    EvaluateError,
    fleet_state,
    tick_period_s,
    vary,
)
from sim_chargers.plant import FloatArray, PlantParams, VehiclePlant
from sim_chargers.traces import Trace
from tests.unit.tools.eval_inputs import ariya_fleet, step_trace


def test_efficiency_given_by_the_fleet_is_kept_and_others_are_drawn_in_the_seed_range() -> None:
    spec = ariya_fleet(count=4)
    given = vary(spec.params, 0.0, 0).efficiency
    assert given.tolist() == pytest.approx([sum(EFFICIENCY_RANGE) / 2] * 4)
    drawn = vary(spec.params, 0.2, 7).efficiency
    assert np.all((drawn >= 0.947) & (drawn <= 0.99))
    assert len(set(drawn.tolist())) == 4
    half = dataclasses.replace(spec.params, efficiency=np.full(4, 0.9))
    assert vary(half, 0.2, 7).efficiency.tolist() == [0.9] * 4


def test_tick_follows_the_trace_rate_within_limits() -> None:
    assert tick_period_s(step_trace(49.8, rate_hz=20.0), 0.1) == 0.05
    assert tick_period_s(step_trace(49.8, rate_hz=2.0), 0.1) == 0.1
    assert tick_period_s(Trace(np.array([0.0, 0.001]), np.array([50.0, 50.0])), 0.1) == 0.02


def test_variation_scales_dynamics_within_the_spread_and_refuses_a_spread_of_one() -> None:
    spec = ariya_fleet(count=50, t_a_s=2.0)
    varied = vary(spec.params, 0.2, 3)
    ratio = varied.t_a_s / spec.params.t_a_s
    assert np.all((ratio >= 0.8) & (ratio <= 1.2))
    assert np.ptp(ratio) > 0.2  # 50 independent draws spread over the range
    assert np.array_equal(varied.max_charge_w, spec.params.max_charge_w)  # limits are not varied
    with pytest.raises(EvaluateError, match="variation_frac"):
        vary(spec.params, 1.0, 3)


def test_fleet_state_rows_are_online_in_a_transaction_with_library_priors() -> None:
    spec = ariya_fleet(count=3, soc=0.6, t_a_s=5.0)  # the file's 5 s never reaches the priors
    fleet = fleet_state(spec)
    assert fleet.n == 3
    assert fleet.online[:3].all()
    assert fleet.tx_active[:3].all()
    assert fleet.soc_frac[:3].tolist() == pytest.approx([0.6] * 3)
    assert fleet.t_a_s[:3].tolist() == pytest.approx([lookup("Nissan Ariya").t_a_s] * 3)


class _RecordingPlant:
    """A plant that never responds and remembers when each setpoint reached it."""

    def __init__(self, params: PlantParams) -> None:
        self.params = params
        self.power_w: FloatArray = np.zeros(params.n)
        self.soc_frac: FloatArray = np.full(params.n, 0.5)
        self.delivered_at_s: list[float] = []

    def command(self, rows: object, setpoint_w: FloatArray, now_s: float) -> None:
        self.delivered_at_s.append(now_s)

    def step(self, now_s: float) -> FloatArray:
        return self.power_w


def _delivery_times(ocpp_delay_s: float) -> list[float]:
    spec = ariya_fleet(count=4)
    plant = _RecordingPlant(spec.params)
    ctl = Controller(contracts_from([("DR-L", 20.0)]), ControlParams(tick_period_s=0.05),
                     dispatch=make_dispatch("naive", [lookup(m.name) for m in spec.models]))
    loop = ClosedLoop(plant, fleet_state(spec), ctl, ocpp_delay_s=ocpp_delay_s)
    t = np.arange(200) * 0.05
    loop.run(t, np.where(t >= 2.0, 49.8, 50.0))
    return plant.delivered_at_s


def test_setpoints_reach_the_plant_after_the_ocpp_delay() -> None:
    # the first 0 W command at t = 0 and the answer to the step at 2 s, each 0.1 s later
    assert _delivery_times(0.0) == pytest.approx([0.0, 2.0])
    assert _delivery_times(0.1) == pytest.approx([0.1, 2.1])


def test_loop_reports_the_plant_power_and_its_soc_extremes() -> None:
    spec = ariya_fleet(count=2, soc=0.5)
    plant = VehiclePlant(vary(spec.params, 0.0, 0), spec.soc_frac)
    ctl = Controller(contracts_from([("DR-L", 20.0)]), ControlParams(tick_period_s=0.1),
                     dispatch=make_dispatch("naive", [lookup(m.name) for m in spec.models]))
    loop = ClosedLoop(plant, fleet_state(spec), ctl, ocpp_delay_s=0.1)
    t = np.arange(300) * 0.1
    power_w = loop.run(t, np.where(t >= 2.0, 49.8, 50.0))
    assert power_w.shape == t.shape
    assert power_w[-1] == pytest.approx(-20000.0, rel=0.05)  # DR-L saturated: export Pc
    assert loop.soc_lo < 0.5 <= loop.soc_hi
    assert loop.losses_kwh() > 0.0

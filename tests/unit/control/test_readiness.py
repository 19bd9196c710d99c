"""Tests for controller/control/readiness.py: the standing offset sized to the contract."""

from __future__ import annotations

import numpy as np
import pytest

from controller.control.controller import Controller, ControlParams
from controller.control.dispatch_comp import CompensatedDispatch, CompParams
from controller.control.dynamics import Dynamics
from controller.control.readiness import Need, need_from, size_offset, swing_w
from controller.control.services import contracts_from
from controller.control.vehicles import lookup
from controller.tools.closed_loop import ClosedLoop, fleet_state, vary
from sim_chargers.fleetfile import FleetSpec, parse_fleet
from sim_chargers.plant import VehiclePlant

KW = 1000.0
TESLA, ARIYA, ID3 = lookup("Tesla M3"), lookup("Nissan Ariya"), lookup("VW ID3")
SIZING = {"keep_w": 1000.0, "min_w": 2000.0, "max_frac": 0.75, "delay_s": 0.1,
          "headroom_frac": 0.1, "fallback_w": 5000.0}


def rows_of(model_name: str, n: int, charger_kw: float = 11.0) -> tuple[Dynamics, np.ndarray]:
    """n rows of one model, alternating charging (+1) and discharging (-1) halves."""
    dyn = Dynamics.from_models([lookup(model_name)] * n, [charger_kw * KW] * n,
                               [charger_kw * KW] * n)
    return dyn, np.where(np.arange(n) % 2 == 0, 1.0, -1.0)


DC_150 = Need(((1.0, 150 * KW),), ((1.0, 150 * KW),))


def test_need_adds_powers_due_by_each_deadline_per_direction() -> None:
    assert need_from(contracts_from([("DC", 150.0)])) == DC_150
    # DR's 50 kW is due by 10 s, not within DC's second
    assert need_from(contracts_from([("DC-L", 100.0), ("DR-L", 50.0)])) == Need(
        ((1.0, 100 * KW), (10.0, 150 * KW)), ())
    assert need_from(contracts_from([("FCR", 40.0)])) == Need(((30.0, 40 * KW),),
                                                              ((30.0, 40 * KW),))


def test_a_later_deadline_does_not_make_the_first_second_carry_its_power() -> None:
    # 60 Tesla M3: the fast half covers DC-L 150 kW in 1 s; a DR-L 100 kW on top is due by
    # 10 s, when the slow half has ramped too. Asking it all within 1 s would be insufficient.
    dyn, side = rows_of("Tesla M3", 60)
    rows = np.ones(60, dtype=bool)
    stacked = need_from(contracts_from([("DC-L", 150.0), ("DR-L", 100.0)]))
    all_at_once = Need(((1.0, 250 * KW),), ())
    assert size_offset(stacked, side, dyn, rows, **SIZING).sufficient
    assert not size_offset(all_at_once, side, dyn, rows, **SIZING).sufficient


def test_swing_counts_fast_moves_toward_zero_and_slow_ones_away() -> None:
    # Tesla, 1 s deadline, 0.1 s delay, t_c 0.02 s: tau = 0.88 s. Toward zero at 552 kW/s is
    # limited by the offset (o - keep); away from zero at 0.73 kW/s gives 0.642 kW.
    dyn, side = rows_of("Tesla M3", 2)
    down, up = swing_w(np.array([5 * KW]), side, dyn, np.ones(2, dtype=bool), keep_w=1 * KW,
                       max_frac=0.75, delay_s=0.1, deadline_s=1.0)
    away = 0.73 * KW * 0.88
    assert down[0] == pytest.approx(4 * KW + away)  # charger falls to keep, discharger rises
    assert up[0] == pytest.approx(away + 4 * KW)
    # the offset is capped per row at max_frac of its limit, as the dispatch caps it
    capped, _ = swing_w(np.array([20 * KW]), side, dyn, np.ones(2, dtype=bool), keep_w=1 * KW,
                        max_frac=0.75, delay_s=0.1, deadline_s=1.0)
    assert capped[0] == pytest.approx((0.75 * 11 - 1) * KW + min(0.25 * 11 * KW, away))


def test_slow_rising_rows_get_an_offset_that_covers_the_contract_on_the_fast_side() -> None:
    # 60 Tesla M3 (30 per side), DC 150 kW: the fast part is the half moving toward zero, so
    # 30 x (o - keep) + 30 x 0.64 kW >= 1.1 x 150 kW -> o >= ~5.9 kW
    dyn, side = rows_of("Tesla M3", 60)
    r = size_offset(DC_150, side, dyn, np.ones(60, dtype=bool), **SIZING)
    assert r.sufficient
    need_o = 1 * KW + (1.1 * 150 * KW - 30 * 0.73 * KW * 0.88) / 30
    assert need_o <= r.offset_w <= need_o + (0.75 * 11 * KW - 2 * KW) / 31 + 1e-6


def test_fast_rows_need_only_the_smallest_offset() -> None:
    dyn, side = rows_of("Nissan Ariya", 60)
    r = size_offset(DC_150, side, dyn, np.ones(60, dtype=bool), **SIZING)
    assert (r.offset_w, r.sufficient) == (2000.0, True)


def test_rows_too_slow_for_the_deadline_get_the_fallback_and_say_so() -> None:
    # ID3: t_c 0.78 s (x 1.2 pessimistic in the dispatch) + 0.1 s leaves nothing inside 1 s
    dyn, side = rows_of("VW ID3", 60)
    slow = Dynamics(dyn.t_a_s, dyn.t_c_s * 1.2, dyn.t_zero_s, dyn.ramp_up_w_s,
                    dyn.ramp_down_w_s, dyn.max_charge_w, dyn.max_discharge_w, dyn.quantum_w)
    r = size_offset(DC_150, side, slow, np.ones(60, dtype=bool), **SIZING)
    assert (r.offset_w, r.sufficient) == (5000.0, False)
    none = size_offset(DC_150, side, dyn, np.zeros(60, dtype=bool), **SIZING)
    assert not none.sufficient


def tesla_fleet() -> FleetSpec:
    return parse_fleet({"group": [{"model": "Tesla M3", "count": 60, "charger_kw": 11,
                                   "soc": 0.5}]})


def run_step(params: CompParams) -> tuple[np.ndarray, np.ndarray, CompensatedDispatch]:
    """60 Tesla M3, DC 150 kW: 30 s at 50 Hz (offsets build), then a step to 49.5 Hz."""
    spec = tesla_fleet()
    disp = CompensatedDispatch([lookup(m.name) for m in spec.models], params)
    ctl = Controller(contracts_from([("DC", 150.0)]), ControlParams(), dispatch=disp)
    loop = ClosedLoop(VehiclePlant(vary(spec.params, 0.2, 0), spec.soc_frac), fleet_state(spec),
                      ctl, ocpp_delay_s=0.1)
    t = np.arange(400) / 10.0
    return t, loop.run(t, np.where(t < 30.0, 50.0, 49.5)), disp


def test_a_sized_offset_lets_slow_rising_vehicles_meet_the_deadline_a_fixed_one_does_not() -> None:
    t, sized, disp = run_step(CompParams())
    _, fixed, _ = run_step(CompParams(size_ready=False))  # the former fixed 5 kW
    at_deadline = (t >= 31.0) & (t < 33.0)  # 1 s after the step, the full 150 kW is due
    tol_w = 0.03 * 150 * KW
    assert disp.readiness.sufficient
    assert disp.readiness.offset_w > 5 * KW
    assert np.all(sized[at_deadline] <= -150 * KW + tol_w)
    assert np.any(fixed[at_deadline] > -150 * KW + tol_w)


def test_the_halves_are_balanced_as_the_dispatch_balances_them() -> None:
    # one free row cannot hold an offset (nothing to cancel it): no swing from readiness, so
    # a contract it could only meet from a standing offset is not sufficient
    dyn, side = rows_of("Tesla M3", 1)
    down, _up = swing_w(np.array([5 * KW]), side, dyn, np.ones(1, dtype=bool), keep_w=1 * KW,
                       max_frac=0.75, delay_s=0.1, deadline_s=1.0)
    assert down[0] == 0.0  # its charging offset is scaled to nothing: nothing to give up
    # three rows, two charging: each of those holds half the discharging row's offset
    dyn3, _ = rows_of("Tesla M3", 3)
    side3 = np.array([1.0, 1.0, -1.0])
    down3, _ = swing_w(np.array([5 * KW]), side3, dyn3, np.ones(3, dtype=bool), keep_w=1 * KW,
                       max_frac=0.75, delay_s=0.1, deadline_s=1.0)
    assert down3[0] == pytest.approx(2 * (2.5 - 1) * KW + 0.73 * KW * 0.88)

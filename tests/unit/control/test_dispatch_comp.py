"""Tests for controller/control/dispatch_comp.py: the dynamics-aware dispatch, closed loop.

The closed loop is the evaluate harness (daemon Controller + simulated plant, fast time) so the
dispatch is always tested against a plant whose dynamics differ from its priors (+-20 %).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.control.controller import Controller, ControlParams, make_dispatch
from controller.control.dispatch_comp import CompensatedDispatch, CompParams
from controller.control.fleet import FleetState
from controller.control.metrics import tube
from controller.control.services import contracts_from, expected_w
from controller.control.vehicles import lookup
from controller.tools.evaluate import ClosedLoop, fleet_state, vary
from sim_chargers.fleetfile import FleetSpec, parse_fleet
from sim_chargers.plant import VehiclePlant

KW = 1000.0
MODELS = ["VW ID3", "Nissan Ariya", "Nissan LEAF e+", "Skoda Enyaq iV 60", "Tesla M3 LRDM",
          "Renault Zoe 40"]


def fleet_of(models: list[str], count: int) -> FleetSpec:
    return parse_fleet({"group": [{"model": m, "count": count, "charger_kw": 11, "soc": 0.5}
                                  for m in models]})


def closed_loop(spec: FleetSpec, service_kw: float, t_s: np.ndarray, f_hz: np.ndarray,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray, ClosedLoop, CompensatedDispatch]:
    """Run the loop; (delivered W, expected W, loop, dispatcher)."""
    contracts = contracts_from([("DC", service_kw)])
    disp = make_dispatch("compensated", [lookup(m.name) for m in spec.models])
    assert isinstance(disp, CompensatedDispatch)
    ctl = Controller(contracts, ControlParams(), dispatch=disp)
    plant = VehiclePlant(vary(spec.params, 0.2, seed), spec.soc_frac)
    loop = ClosedLoop(plant, fleet_state(spec), ctl, ocpp_delay_s=0.1)
    return loop.run(t_s, f_hz), expected_w(contracts, t_s, f_hz), loop, disp


def steps(*segments: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """10 Hz trace from (duration_s, f_hz) segments."""
    f = np.concatenate([np.full(round(d * 10), hz) for d, hz in segments])
    return np.arange(f.size) / 10.0, f


def test_make_dispatch_gives_each_controller_its_own_compensated_dispatch() -> None:
    a, b = make_dispatch("compensated"), make_dispatch("compensated")
    assert isinstance(a, CompensatedDispatch)
    assert a is not b


def test_readiness_offsets_cancel_at_the_site_and_keep_every_row_flowing() -> None:
    spec = fleet_of(MODELS, 4)
    t, f = steps((25.0, 50.0))
    delivered, _, loop, disp = closed_loop(spec, 150.0, t, f)
    p = loop.plant.power_w
    params = disp.params
    assert abs(delivered[-1]) < 1.0 * KW  # site baseline stays ~0
    assert np.all(np.abs(p) >= params.keep_w - 1.0)  # nobody idle: t_c applies, not t_a
    for k in range(len(MODELS)):  # every model has a charging and a discharging half
        group = p[4 * k: 4 * k + 4]
        assert (group > 0).sum() == 2
        assert (group < 0).sum() == 2
    assert np.abs(p).max() <= params.ready_w + params.min_step_w


def test_saturated_fleet_does_not_overshoot_when_the_request_drops() -> None:
    # 12 vehicles (132 kW) for 150 kW of DC: saturated at 49.5 Hz (rows beyond their own side
    # cross zero), then the request drops to 0. Coming back across zero costs t_c + t_zero
    # (Zoe: 3.8 s x up to 1.2), so the fleet is back in the tube 6 s later, never beyond it
    spec = fleet_of(["Nissan Ariya", "Renault Zoe 40"], 6)
    t, f = steps((20.0, 50.0), (20.0, 49.5), (20.0, 50.0))
    delivered, expected, _, disp = closed_loop(spec, 150.0, t, f)
    assert delivered[(t > 30) & (t < 40)].max() < -125 * KW  # really saturated
    tol_w = 0.03 * 150 * KW
    assert np.all(delivered[t >= 40.0] < tol_w)  # never overshoots into import
    assert np.all(np.diff(delivered[(t >= 40.0) & (t < 43.0)]) > -tol_w)  # no bounce back
    after = t >= 46.0
    lo, hi = tube(t, expected, 150 * KW, 1.0)
    assert np.all((delivered[after] >= lo[after]) & (delivered[after] <= hi[after]))
    i_max = disp.params.integrator_max_frac * 12 * 11 * KW
    assert abs(disp.integrator_w) <= i_max


def test_fast_rows_carry_the_start_and_slow_rows_take_over() -> None:
    spec = fleet_of(["Tesla M3 LRDM", "VW ID3"], 6)  # Tesla: drops at 552 kW/s; ID3: t_c 0.78 s
    t, f = steps((20.0, 50.0), (20.0, 49.5))
    _, _, loop, _ = closed_loop(spec, 50.0, t, f)
    # rows 0-5 Tesla, 6-11 ID3; at the end the ID3s have moved a fair share of the response
    p = loop.plant.power_w
    ready = CompParams().ready_w
    id3_moved = np.abs(p[6:] - np.sign(p[6:]) * ready).sum()
    assert id3_moved > 10 * KW


def test_ineligible_rows_keep_their_baseline() -> None:
    fleet = FleetState()
    for i in range(4):
        fleet.row(f"CP{i}", 1, max_power_w=11 * KW, can_discharge=True)
    fleet.online[:] = True
    fleet.tx_active[:] = [True, True, True, False]
    fleet.baseline_w[:] = [0.0, 0.0, 0.0, 2 * KW]
    disp = CompensatedDispatch()
    for k in range(30):
        split = disp(-10 * KW, fleet, fleet.online & fleet.tx_active, k * 0.1)
    assert split.target_w[3] == 2 * KW


@settings(max_examples=60, deadline=None)
@given(
    responses=st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(np.nan), st.just(np.inf)),
                       min_size=1, max_size=25),
    limits=st.lists(st.tuples(st.floats(0.0, 22e3), st.floats(0.0, 22e3), st.booleans(),
                              st.booleans(), st.floats(-30e3, 30e3),
                              st.one_of(st.just(np.nan), st.floats(-30e3, 30e3))),
                    min_size=1, max_size=8),
)
def test_setpoints_are_always_finite_and_within_limits(
        responses: list[float],
        limits: list[tuple[float, float, bool, bool, float, float]]) -> None:
    fleet = FleetState()
    for i, (chg, dis, can, _, _, _) in enumerate(limits):
        fleet.row(f"CP{i}", 1, max_power_w=chg, can_discharge=can)
        fleet.max_discharge_w[i] = dis if can else 0.0
    fleet.online[:] = True
    fleet.tx_active[:] = [lim[3] for lim in limits]
    fleet.baseline_w[:] = [lim[4] for lim in limits]
    disp = CompensatedDispatch()
    eligible = fleet.online & fleet.tx_active
    for k, r in enumerate(responses):
        fleet.measured_w[:] = [lim[5] for lim in limits]
        split = disp(r, fleet, eligible, k * 0.1)
        tgt = split.target_w
        floor = np.where(fleet.can_discharge, -fleet.max_discharge_w, 0.0)
        el = eligible
        assert np.all(np.isfinite(tgt[el]))
        assert np.all(tgt[el] >= floor[el] - 1e-6)
        assert np.all(tgt[el] <= fleet.max_charge_w[el] + 1e-6)
        assert np.array_equal(tgt[~el], fleet.baseline_w[~el])
        assert np.isfinite(split.down_w)
        assert np.isfinite(split.up_w)
        fleet.mark_sent(np.flatnonzero(el), tgt[el], k * 0.1)

"""Tests for controller/control/dispatch_comp.py: the dynamics-aware dispatch, closed loop.

The closed loop is the evaluate harness (daemon Controller + simulated plant, fast time) so the
dispatch is always tested against a plant whose dynamics differ from its priors (+-20 %).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.control.controller import Controller, ControlParams, make_dispatch
from controller.control.dispatch_comp import CompensatedDispatch, CompParams
from controller.control.energy import EnergyParams
from controller.control.fleet import FleetState
from controller.control.metrics import tube
from controller.control.services import contracts_from, expected_w
from controller.control.vehicles import lookup
from controller.tools.closed_loop import ClosedLoop, fleet_state, vary
from sim_chargers import tracelib
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
    assert np.abs(p).max() <= disp.readiness.offset_w + params.min_step_w


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


# -- energy management (control.energy, issue 4 item 4) ---------------------------------------
def test_a_row_at_its_soc_floor_never_discharges_even_when_saturated() -> None:
    fleet = FleetState()
    for i in range(4):
        fleet.row(f"CP{i}", 1, max_power_w=11 * KW, can_discharge=True)
    fleet.online[:] = True
    fleet.tx_active[:] = True
    fleet.set_prior(np.arange(4), lookup("Nissan Ariya"))
    fleet.soc_frac[:] = [0.2, 0.5, 0.5, 0.5]
    disp = CompensatedDispatch()
    eligible = fleet.online & fleet.tx_active
    for k in range(50):
        split = disp(-1000 * KW, fleet, eligible, k * 0.1)  # far beyond the fleet: saturated
        fleet.mark_sent(np.arange(4), split.target_w, k * 0.1)
        assert split.target_w[0] >= 0.0
    assert np.all(split.target_w[1:] <= -10 * KW)  # the others export at their ratings
    assert split.down_w == pytest.approx(33 * KW, rel=0.01)  # row 0 offers no export


def mixed_socs(socs: tuple[float, ...], models: list[str]) -> FleetSpec:
    return parse_fleet({"group": [{"model": m, "count": 1, "charger_kw": 11, "soc": s}
                                  for m in models for s in socs]})


def test_standing_baseline_moves_low_and_high_soc_vehicles_inward() -> None:
    # one vehicle of each model at 0.25 and one at 0.75: the low ones take the charging half
    spec = mixed_socs((0.25, 0.75), MODELS)
    tr = tracelib.generate("gb-normal", seconds=600, seed=1, rate_hz=10.0)
    delivered, expected, loop, _ = closed_loop(spec, 30.0, tr.t_s, tr.f_hz)
    soc0, soc = spec.soc_frac, loop.plant.soc_frac
    low, high = soc0 < 0.5, soc0 > 0.5
    assert np.all(soc[low] > soc0[low] + 0.005)  # every low vehicle charged
    assert np.all(soc[high] < soc0[high] - 0.005)  # every high vehicle discharged
    assert loop.soc_lo >= 0.2
    assert loop.soc_hi <= 0.8
    lo, hi = tube(tr.t_s, expected, 30 * KW, 1.0)
    assert np.mean((delivered >= lo) & (delivered <= hi)) >= 0.99


def test_drifted_pairs_swap_sides_between_events_and_the_site_stays_at_baseline() -> None:
    # a 0.3 % band makes the standing baseline swap pairs within minutes; without swaps the
    # +-5 kW halves would be 3.7 % apart after 10 min (Zoe: 44 kWh)
    spec = fleet_of(["Nissan Ariya", "Renault Zoe 40"], 4)
    disp = CompensatedDispatch([lookup(m.name) for m in spec.models],
                               energy_params=EnergyParams(band_frac=0.003))
    ctl = Controller(contracts_from([("DC", 80.0)]), ControlParams(), dispatch=disp)
    plant = VehiclePlant(vary(spec.params, 0.2, 0), spec.soc_frac)
    loop = ClosedLoop(plant, fleet_state(spec), ctl, ocpp_delay_s=0.1)
    t, f = steps((600.0, 50.0))
    delivered = loop.run(t, f)
    p, soc = loop.plant.power_w, loop.plant.soc_frac
    first_sides = np.array([1, 1, -1, -1] * 2)  # equal SoC: the first half of each class charges
    assert np.any(np.sign(p) != first_sides)  # pairs swapped
    assert np.ptp(soc) < 0.012  # 2 x band apart at most, plus a swap's lag
    settled = t > 30.0
    # a swapping pair crosses zero together (+-wake_w, same class): inside the 3 % tube
    assert np.max(np.abs(delivered[settled])) < 0.03 * 80 * KW


# -- feedback on the site meter (SPEC §3.3 p_w) ---------------------------------------------------
def ariya_rows(n: int = 4) -> FleetState:
    fleet = FleetState()
    for i in range(n):
        fleet.row(f"CP{i}", 1, max_power_w=11 * KW, can_discharge=True)
    fleet.online[:] = True
    fleet.tx_active[:] = True
    fleet.soc_frac[:] = 0.5
    fleet.set_prior(np.arange(n), lookup("Nissan Ariya"))
    return fleet


class InstantSite:
    """10 Hz ticks at 50 Hz on rows that draw their last setpoint at once. MeterValues report
    that (or, `meter_values=False`, stay as they were: stale); the site meter sees the rows plus
    `other_load_w`, `site_age_s` old (or nothing, `site=False`)."""

    def __init__(self, ctl: Controller, fleet: FleetState) -> None:
        self.ctl, self.fleet, self.t_s = ctl, fleet, 0.0
        self.measured_at_s = np.full(fleet.n, -np.inf)

    def run(self, seconds: float, *, other_load_w: float = 0.0, meter_values: bool = True,
            site: bool = True, site_age_s: float = 0.0) -> None:
        fleet, end_s = self.fleet, self.t_s + seconds
        while self.t_s < end_s - 1e-9:
            t = self.t_s
            drawn_w = np.nan_to_num(fleet.setpoint_w)
            if meter_values:
                fleet.measured_w[:] = drawn_w
                self.measured_at_s[:] = t
            site_w = float(drawn_w.sum()) + other_load_w if site else None
            res = self.ctl.tick(fleet, t, 50.0, site_power_w=site_w,
                                site_power_at_s=t - site_age_s,
                                measured_at_s=self.measured_at_s.copy())
            fleet.mark_sent(res.send_rows, res.target_w[res.send_rows], t)
            self.t_s = round(t + 0.1, 6)


def settled_comp(other_load_w: float = 0.0, *, site: bool = True
                 ) -> tuple[InstantSite, CompensatedDispatch]:
    disp = make_dispatch("compensated")
    assert isinstance(disp, CompensatedDispatch)
    ctl = Controller(contracts_from([("DC-L", 20.0)]), ControlParams(), dispatch=disp)
    loop = InstantSite(ctl, ariya_rows())
    loop.run(30.0, other_load_w=other_load_w, site=site)  # readiness offsets built
    return loop, disp


def test_feedback_acts_on_the_site_meter_while_meter_values_are_stale() -> None:
    loop, disp = settled_comp()
    i0 = disp.integrator_w
    # the fleet now draws 1 kW less than commanded: only the site meter sees it
    loop.run(2.0, other_load_w=-1 * KW, meter_values=False)
    assert disp.integrator_w - i0 > 0.3 * KW  # integrates the gap up (more import)


def test_without_a_site_meter_stale_meter_values_show_no_gap() -> None:
    loop, disp = settled_comp(site=False)
    i0 = disp.integrator_w
    loop.run(2.0, meter_values=False, site=False)
    assert disp.integrator_w == i0


@pytest.mark.parametrize(("site", "site_age_s"), [(True, 1.0), (False, 0.0)])
def test_feedback_freezes_when_the_site_sample_is_stale_or_missing(site: bool,
                                                                   site_age_s: float) -> None:
    loop, disp = settled_comp()
    i0 = disp.integrator_w
    # older than the stale limit (0.5 s, SPEC §3.3), or gone after having been seen
    assert site_age_s > disp.params.site_stale_s or not site
    loop.run(2.0, other_load_w=-1 * KW, meter_values=False, site=site, site_age_s=site_age_s)
    assert disp.integrator_w == i0


def test_site_baseline_keeps_load_the_fleet_does_not_draw_out_of_the_feedback() -> None:
    # a 30 kW building load on the site meter: the baseline absorbs it (site - MeterValues
    # once every row reported after the last move), so the integrator does not chase it
    loop, disp = settled_comp(other_load_w=30 * KW)
    loop.run(10.0, other_load_w=30 * KW)
    assert abs(disp.integrator_w) < 50.0
    assert abs(float(np.nan_to_num(loop.fleet.setpoint_w).sum())) < 0.5 * KW


def test_a_stale_meter_value_does_not_reset_the_model_twice() -> None:
    # MeterValues every few seconds (SPEC: the simulator's 5 s): the replica takes a report
    # once; on later ticks it runs on the model, not on the old report
    loop, disp = settled_comp()
    rows = np.arange(loop.fleet.n)
    loop.fleet.measured_w[:] = 0.0  # one (wrong) report arrives now, then nothing new
    loop.measured_at_s[:] = loop.t_s
    loop.run(0.1, meter_values=False)
    assert np.allclose(disp._st.p_w[rows], 0.0, atol=disp.params.settled_w)  # taken once ...
    loop.run(5.0, meter_values=False)
    assert np.all(np.abs(disp._st.p_w[rows]) > disp.params.keep_w - 1.0)  # ... then the model


def test_fast_time_feedback_is_the_same_with_the_plant_power_as_the_site_power() -> None:
    # evaluate hands the plant's summed power over as the site power: with exact MeterValues
    # every tick, the site path and the MeterValues path must agree
    spec = fleet_of(MODELS, 2)
    t, f = steps((15.0, 50.0), (15.0, 49.6), (10.0, 50.0))
    with_site, _, _, _ = closed_loop(spec, 60.0, t, f)

    class NoSiteMeter(ClosedLoop):
        def _control(self, now_s: float, freq_hz: float,
                     site_power_w: float | None = None) -> None:
            super()._control(now_s, freq_hz, None)

    contracts = contracts_from([("DC", 60.0)])
    ctl = Controller(contracts, ControlParams(),
                     dispatch=make_dispatch("compensated", [lookup(m.name) for m in spec.models]))
    plant = VehiclePlant(vary(spec.params, 0.2, 0), spec.soc_frac)
    without = NoSiteMeter(plant, fleet_state(spec), ctl, ocpp_delay_s=0.1).run(t, f)
    np.testing.assert_allclose(with_site, without, atol=1e-6)


@pytest.mark.parametrize("baseline_w", [600.0, 3000.0])
def test_a_row_charging_for_its_departure_keeps_charging_whatever_side_the_split_chose(
        baseline_w: float) -> None:
    # the review's case: a departure baseline appears on a row the SoC split had put on the
    # discharging half (row 1 of an equal-SoC pair); its offset must not turn it into export,
    # and the others must not be re-split (no zero crossings: every other row keeps its side)
    loop, _disp = settled_comp()
    fleet = loop.fleet
    sides_before = np.sign(fleet.setpoint_w).copy()
    row = int(np.flatnonzero(sides_before < 0)[0])
    fleet.baseline_w[row] = baseline_w
    loop.run(20.0)
    assert fleet.setpoint_w[row] > 0.9 * baseline_w  # charging (feedback trims it a little)
    others = np.arange(fleet.n) != row
    assert np.array_equal(np.sign(fleet.setpoint_w[others]), sides_before[others])
    # the site sees the departure charging; the standing offsets still cancel around it
    assert float(fleet.setpoint_w.sum()) == pytest.approx(baseline_w, abs=0.03 * 20 * KW)


def test_a_row_out_of_service_restarts_from_idle_for_the_next_vehicle() -> None:
    # the last car flowed at its standing offset; the next car on that EVSE is idle (t_a, not
    # t_c): nothing of the old flow, offset or pending command may carry over in the replica
    loop, disp = settled_comp()
    fleet = loop.fleet
    assert abs(disp._st.p_w[0]) > disp.params.keep_w - 1.0
    fleet.tx_active[0] = False
    fleet.measured_w[0] = np.nan  # as fleet_sync leaves a row between vehicles
    loop.run(0.3, meter_values=False)
    st = disp._st
    assert (st.p_w[0], st.target_w[0], disp._offset[0]) == (0.0, 0.0, 0.0)
    assert not np.isfinite(st.pending_at_s[0])

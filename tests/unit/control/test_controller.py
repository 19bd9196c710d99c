"""Tests for controller/control/controller.py, table-driven over ticks with a fake clock.

Each table is a list of Steps (OpenEMS TestCase style): input (now_s, freq_hz) -> expected
output. The harness plays the caller: after every tick it marks the sent rows as offered.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.control.controller import (
    DISPATCH_NAMES,
    Controller,
    ControlParams,
    make_dispatch,
    proportional_dispatch,
)
from controller.control.dispatch import Split
from controller.control.fleet import FleetState
from controller.control.services import DEFAULT_DEFINITIONS, ContractedService, contracts_from
from controller.settings import ControlConfig, parse_settings

KW = 1000.0


@dataclass(frozen=True)
class Step:
    now_s: float
    freq_hz: float | None
    target_kw: tuple[float, ...] | None = None  # expected per row
    send: tuple[int, ...] | None = None  # expected send_rows
    response_kw: float | None = None
    fallback: bool = False


def make_fleet(*rows: tuple[bool, bool, bool]) -> FleetState:
    """Rows of (can_discharge, online, tx_active), all 10 kW EVSEs at 0 W baseline."""
    fleet = FleetState(capacity=2)
    for i, (can, online, tx) in enumerate(rows):
        r = fleet.row(f"CP{i:03d}", 1, max_power_w=10 * KW, can_discharge=can)
        fleet.online[r] = online
        fleet.tx_active[r] = tx
    return fleet


def run(ctl: Controller, fleet: FleetState, steps: list[Step]) -> None:
    for i, step in enumerate(steps):
        res = ctl.tick(fleet, step.now_s, step.freq_hz)
        where = f"step {i} at {step.now_s} s"
        assert res.fallback is step.fallback, where
        if step.target_kw is not None:
            assert res.target_w / KW == pytest.approx(step.target_kw, abs=1e-6), where
        if step.send is not None:
            assert res.send_rows.tolist() == list(step.send), where
        if step.response_kw is not None:
            assert res.response_w / KW == pytest.approx(step.response_kw, abs=1e-6), where
        fleet.mark_sent(res.send_rows, res.target_w[res.send_rows], step.now_s)


def three_rows() -> FleetState:
    return make_fleet((True, True, True), (True, True, True), (False, True, True))


def dc_l(kw: float = 20.0, **params: float) -> Controller:
    return Controller(contracts_from([("DC-L", kw)]), ControlParams(**params))


def test_dc_low_dip_sends_negative_targets_to_discharging_rows() -> None:
    run(dc_l(), three_rows(), [
        Step(0.0, 50.0, target_kw=(0, 0, 0), send=(0, 1, 2), response_kw=0),  # first offer
        Step(0.1, 50.0, target_kw=(0, 0, 0), send=()),
        Step(0.2, 49.5, target_kw=(-10, -10, 0), send=(0, 1), response_kw=-20),
        Step(0.3, 49.8, target_kw=(-0.5, -0.5, 0), send=(0, 1), response_kw=-1),
        Step(0.4, 50.2, target_kw=(0, 0, 0), send=(0, 1), response_kw=0),  # DC-L ignores highs
    ])


def test_moves_smaller_than_min_step_are_not_sent() -> None:
    run(dc_l(min_step_w=100.0), three_rows(), [
        Step(0.0, 49.8, target_kw=(-0.5, -0.5, 0), send=(0, 1, 2)),
        Step(0.1, 49.81, send=()),  # -473 W per row: 27 W from the last offer
        Step(0.2, 49.805, send=()),  # still within 100 W of -500 W
        Step(0.3, 49.79, send=(0, 1)),  # -817 W per row: 317 W moved
    ])


def test_unchanged_setpoints_are_resent_every_refresh_period() -> None:
    run(dc_l(refresh_s=10.0), three_rows(), [
        Step(0.0, 49.5, send=(0, 1, 2)),
        Step(5.0, 49.5, send=()),
        Step(9.9, 49.5, send=()),
        Step(10.0, 49.5, send=(0, 1, 2)),
        Step(19.9, 49.5, send=()),
        Step(20.0, 49.5, send=(0, 1, 2)),
    ])


def test_bad_meter_ramps_response_linearly_to_baseline_over_fallback_ramp() -> None:
    run(dc_l(fallback_ramp_s=2.0, min_step_w=0.0), three_rows(), [
        Step(0.0, 49.5, response_kw=-20, target_kw=(-10, -10, 0)),
        Step(1.0, None, response_kw=-20, target_kw=(-10, -10, 0), fallback=True),
        Step(1.5, None, response_kw=-15, target_kw=(-7.5, -7.5, 0), fallback=True),
        Step(2.0, None, response_kw=-10, fallback=True),
        Step(2.5, None, response_kw=-5, fallback=True),
        Step(3.0, None, response_kw=0, target_kw=(0, 0, 0), fallback=True),
        Step(9.0, None, response_kw=0, fallback=True),
        Step(9.1, 49.8, response_kw=-1, fallback=False),  # good data again
    ])


def test_fallback_restarts_from_current_response_after_brief_recovery() -> None:
    run(dc_l(fallback_ramp_s=2.0), three_rows(), [
        Step(0.0, 49.5, response_kw=-20),
        Step(1.0, None, response_kw=-20, fallback=True),
        Step(2.0, None, response_kw=-10, fallback=True),
        Step(2.1, 49.65, response_kw=-10.5),  # DC-L 52.5 % of 20 kW
        Step(2.2, None, response_kw=-10.5, fallback=True),
        Step(3.2, None, response_kw=-5.25, fallback=True),
    ])


def test_zero_fallback_ramp_drops_to_baseline_at_once() -> None:
    run(dc_l(fallback_ramp_s=0.0), three_rows(), [
        Step(0.0, 49.5, response_kw=-20),
        Step(0.1, None, response_kw=0, target_kw=(0, 0, 0), fallback=True),
    ])


def test_non_finite_frequency_is_treated_as_bad_meter() -> None:
    ctl = dc_l()
    res = ctl.tick(three_rows(), 0.0, math.nan)
    assert res.fallback
    assert res.request_w == res.response_w == 0.0


def test_offline_or_idle_rows_are_never_sent_and_keep_baseline() -> None:
    fleet = make_fleet((True, True, True), (True, False, True), (True, True, False))
    fleet.baseline_w[:] = [0.0, 2 * KW, 3 * KW]
    run(dc_l(), fleet, [
        Step(0.0, 49.5, target_kw=(-10, 2, 3), send=(0,)),
        Step(20.0, 49.5, target_kw=(-10, 2, 3), send=(0,)),  # refresh, still only row 0
    ])


def test_shortfall_and_available_headroom_are_reported() -> None:
    fleet = make_fleet((True, True, True), (True, False, True), (False, True, True))
    fleet.baseline_w[:] = [1 * KW, 0.0, 4 * KW]
    res = dc_l(kw=30.0).tick(fleet, 0.0, 49.5)
    # eligible: row 0 (1 kW -> -10 kW: 11 kW down, 9 up), row 2 (4 kW -> 0: 4 down, 6 up)
    assert res.available_w == pytest.approx((15 * KW, 15 * KW))
    assert (res.available_down_w, res.available_up_w) == res.available_w
    assert res.request_w == pytest.approx(-30 * KW)
    assert res.shortfall_w == pytest.approx(-15 * KW)  # signed like the request
    assert res.request_w - res.shortfall_w == pytest.approx(-15 * KW)  # deliverable
    assert res.target_w / KW == pytest.approx([-10, 0, 0])  # row 1 offline keeps its 0 W


@pytest.mark.parametrize(("freq_hz", "shortfall_kw"), [
    (50.0, 0.0),  # nothing asked
    (49.8, 0.0),  # -1 kW fits
    (50.5, 10.0),  # DC-H 30 kW asked, 20 kW of charge headroom
])
def test_shortfall_is_zero_when_deliverable_and_signed_otherwise(freq_hz: float,
                                                                 shortfall_kw: float) -> None:
    ctl = Controller(contracts_from([("DC", 30.0)]), ControlParams())
    res = ctl.tick(two_rows_and_one_offline(), 0.0, freq_hz)
    assert res.shortfall_w / KW == pytest.approx(shortfall_kw)


def two_rows_and_one_offline() -> FleetState:
    return make_fleet((True, True, True), (True, True, True), (False, False, True))


def test_params_mirror_control_config() -> None:
    cfg = ControlConfig(tick_period_s=0.05, min_step_w=50.0, refresh_s=5.0, fallback_ramp_s=1.5)
    assert ControlParams.from_config(cfg) == ControlParams(0.05, 50.0, 5.0, 1.5)
    assert ControlParams.from_config(ControlConfig()) == ControlParams()


def test_send_rows_are_integer_indices() -> None:
    res = dc_l().tick(three_rows(), 0.0, 50.0)
    assert res.send_rows.dtype.kind == "i"


@given(st.lists(st.tuples(st.floats(0.001, 1.0), st.one_of(st.none(), st.floats(44, 56))),
                min_size=1, max_size=40),
       st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans(),
                          st.floats(-10_000, 10_000)), min_size=1, max_size=8))
def test_any_tick_sequence_gives_finite_targets_within_limits_and_no_jump_on_bad_data(
        steps: list[tuple[float, float | None]],
        rows: list[tuple[bool, bool, bool, float]]) -> None:
    fleet = make_fleet(*[(c, o, t) for c, o, t, _ in rows])
    fleet.baseline_w[:] = [b for *_, b in rows]
    ctl = Controller(contracts_from([("FCR", 20.0), ("DC", 30.0)]),
                     ControlParams(fallback_ramp_s=2.0))
    now, prev = 0.0, 0.0
    for dt, freq in steps:
        now += dt
        res = ctl.tick(fleet, now, freq)
        elig = fleet.online & fleet.tx_active
        floor = np.where(fleet.can_discharge, -fleet.max_discharge_w, 0.0)
        assert np.all(np.isfinite(res.target_w))
        assert np.all(res.target_w[elig] >= floor[elig] - 1e-6)
        assert np.all(res.target_w[elig] <= fleet.max_charge_w[elig] + 1e-6)
        assert set(res.send_rows.tolist()) <= set(np.flatnonzero(elig).tolist())
        if freq is None:
            assert abs(res.response_w) <= abs(prev) + 1e-9  # decays, never grows
        prev = res.response_w
        fleet.mark_sent(res.send_rows, res.target_w[res.send_rows], now)


# -- SFFR (stateful service) and the dispatch seam ------------------------------------------------
def sffr_ctl(kw: float = 20.0) -> Controller:
    defn = replace(DEFAULT_DEFINITIONS["SFFR"], sustain_s=1.0, reset_after_s=0.2)
    return Controller([ContractedService(defn, kw * KW)], ControlParams())


def test_sffr_contract_is_held_by_the_controller_then_reset() -> None:
    run(sffr_ctl(), three_rows(), [
        Step(0.0, 50.0, response_kw=0),
        Step(0.1, 49.7, target_kw=(-10, -10, 0), response_kw=-20),  # triggered
        Step(0.2, 50.0, response_kw=-20),  # recovered, still held
        Step(1.0, 50.0, response_kw=-20),
        Step(1.1, 50.0, target_kw=(0, 0, 0), response_kw=0),  # hold over, recovered 0.9 s
    ])


def test_sffr_hold_time_runs_on_through_meter_fallback() -> None:
    run(sffr_ctl(), three_rows(), [
        Step(0.0, 49.6, response_kw=-20),
        Step(0.5, None, fallback=True, response_kw=-20),  # fallback ramp starts from -20
        Step(3.0, None, fallback=True, response_kw=0),
        Step(3.1, 50.0, response_kw=-20),  # still held: recovery run only starts now
        Step(3.2, 50.0, response_kw=-20),
        Step(3.4, 50.0, response_kw=0),
    ])


def test_controller_uses_the_dispatch_strategy_it_is_given() -> None:
    calls: list[float] = []

    def all_on_first_row(response_w: float, fleet: FleetState, eligible: np.ndarray,
                         now_s: float) -> Split:
        calls.append(now_s)
        target = fleet.baseline_w.copy()
        target[0] = max(response_w, -fleet.max_discharge_w[0])
        return Split(target, float(fleet.max_discharge_w[0]), float(fleet.max_charge_w[0]))

    ctl = Controller(contracts_from([("DC-L", 20.0)]), ControlParams(), dispatch=all_on_first_row)
    res = ctl.tick(three_rows(), 0.5, 49.5)
    assert calls == [0.5]
    assert res.target_w / KW == pytest.approx([-10, 0, 0])
    assert res.shortfall_w / KW == pytest.approx(-10)


def test_naive_dispatch_is_the_proportional_split() -> None:
    fleet = three_rows()
    ctl = Controller(contracts_from([("DC-L", 20.0)]), ControlParams(),
                     dispatch=make_dispatch("naive"))
    assert ctl.tick(fleet, 0.0, 49.5).target_w / KW == pytest.approx([-10, -10, 0])
    assert make_dispatch("naive") is proportional_dispatch
    assert "compensated" in DISPATCH_NAMES
    assert make_dispatch("compensated") is not proportional_dispatch


def test_unknown_dispatch_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown dispatch"):
        make_dispatch("clever")


def test_daemon_config_accepts_an_sffr_contract() -> None:
    minimal = Path(__file__).resolve().parents[3] / "config" / "v2ghub.minimal.toml"
    doc = tomllib.loads(minimal.read_text(encoding="utf-8"))
    doc["service"] = [{"name": "SFFR", "contract_kw": 100}]
    settings = parse_settings(doc)
    assert [s.name for s in settings.services] == ["SFFR"]


def test_tick_hands_the_meter_times_to_a_dispatch_that_observes_them() -> None:
    seen: list[tuple[float | None, float | None, list[float] | None]] = []

    class Observing:
        def observe_meters(self, site_power_w: float | None, site_power_at_s: float | None,
                           measured_at_s: np.ndarray | None) -> None:
            at = None if measured_at_s is None else measured_at_s.tolist()
            seen.append((site_power_w, site_power_at_s, at))

        def __call__(self, response_w: float, fleet: FleetState, eligible: np.ndarray,
                     now_s: float) -> Split:
            return proportional_dispatch(response_w, fleet, eligible, now_s)

    ctl = Controller(contracts_from([("DC-L", 20.0)]), ControlParams(), dispatch=Observing())
    fleet = three_rows()
    ctl.tick(fleet, 1.0, 50.0, site_power_w=-3 * KW, site_power_at_s=0.98,
             measured_at_s=np.array([0.5, -np.inf, 0.9]))
    ctl.tick(fleet, 1.1, 50.0, site_power_w=-3 * KW)  # measured now when no time is given
    ctl.tick(fleet, 1.2, 50.0)  # no site power: the observer hears None, not the last one
    assert seen == [(-3 * KW, 0.98, [0.5, -np.inf, 0.9]), (-3 * KW, 1.1, None),
                    (None, None, None)]


def test_a_dispatch_without_site_feedback_ignores_the_site_power() -> None:
    ctl = Controller(contracts_from([("DC-L", 20.0)]), ControlParams())
    with_site = ctl.tick(three_rows(), 0.0, 49.5, site_power_w=5 * KW, site_power_at_s=0.0)
    assert with_site.target_w / KW == pytest.approx([-10, -10, 0])

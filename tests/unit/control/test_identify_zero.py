"""Identification of the zero-crossing delay t_zero (control.identify + control.identify_fit).

The world is the simulator's plant on a fake clock (sim_chargers.plant: a charge <-> discharge
command waits t_c + t_zero, then ramps down to 0 and on to the other side); the identifier sees
every sample, as in `evaluate`.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.control import identify_zero as zero
from controller.control.dynamics import IDLE_W, Dynamics, dead_time_s
from controller.control.fleet import FleetState
from controller.control.identify import (
    DEAD_TIME_BOUNDS_S,
    PARAMS,
    RAMP_BOUNDS_W_S,
    Identifier,
    IdentParams,
    dynamics_payload,
)
from sim_chargers.plant import PlantParams, VehiclePlant

TRUE = {"t_a_s": 2.0, "t_c_s": 0.3, "t_zero_s": 1.2, "ramp_up_w_s": 4000.0,
        "ramp_down_w_s": 6000.0}
PRIOR_T_ZERO_S = 3.6  # vehicles.VehicleModel.t_zero_cross_s defaults to t_a: a prior, 3x off
KW = 1000.0

Command = tuple[float, float]  # (time s, setpoint W)


def _fleet(**prior: float) -> FleetState:
    fleet = FleetState(4)
    fleet.row("CP1", 1, max_power_w=11 * KW, can_discharge=True)
    for k, v in {**TRUE, "t_zero_s": PRIOR_T_ZERO_S, **prior}.items():
        getattr(fleet, k)[:] = v
    return fleet


def _run(fleet: FleetState, cmds: list[Command], *, dt_s: float = 0.1,
         params: IdentParams | None = None, delay_s: float = 0.0) -> Identifier:
    """Offers at their times, reaching the plant `delay_s` later (give the identifier that
    transport delay in `params`); a sample every dt_s."""
    ident = Identifier(fleet, params)
    plant = VehiclePlant(PlantParams.uniform(1, max_charge_w=11 * KW, max_discharge_w=11 * KW,
                                             capacity_wh=6e4, **TRUE), [0.5])
    offered = delivered = 0
    for now in np.arange(-1.0, cmds[-1][0] + 20.0, dt_s).tolist():
        while offered < len(cmds) and cmds[offered][0] <= now:
            ident.commanded(np.array([0]), np.array([cmds[offered][1]]), cmds[offered][0])
            offered += 1
        while delivered < len(cmds) and cmds[delivered][0] + delay_s <= now:
            plant.command([0], [cmds[delivered][1]], cmds[delivered][0] + delay_s)
            delivered += 1
        ident.observe(0, now, float(plant.step(now)[0]))
    return ident


def _crossings(n: int, kw: float = 6.0) -> list[Command]:
    """Idle -> +kw, then n crossings +kw <-> -kw 20 s apart (both directions, odd phases)."""
    return [(0.37, kw * KW)] + [(20.0 * (c + 1) + 0.13 * c, (-1) ** (c + 1) * kw * KW)
                                for c in range(n)]


def _rel_t_zero(fleet: FleetState) -> float:
    return abs(float(fleet.t_zero_s[0]) / TRUE["t_zero_s"] - 1.0)


@pytest.mark.parametrize("dt_s", [0.1, 0.02])
def test_zero_crossing_delay_far_from_its_prior_is_identified_within_five_crossings(
        dt_s: float) -> None:
    fleet = _fleet()
    ident = _run(fleet, _crossings(5), dt_s=dt_s)  # 3 charge -> discharge, 2 back
    assert "t_zero_s" in ident.identified(0)
    assert _rel_t_zero(fleet) <= 0.15
    assert abs(float(fleet.t_zero_s[0]) - PRIOR_T_ZERO_S) > 2.0  # it really moved


def test_three_crossings_are_enough_and_two_are_not() -> None:
    # fails if crossings are skipped: the prior would stay at 3.6 s
    fleet = _fleet()
    ident = _run(fleet, _crossings(2))
    assert "t_zero_s" not in ident.identified(0)
    assert float(fleet.t_zero_s[0]) == PRIOR_T_ZERO_S
    fleet = _fleet()
    ident = _run(fleet, _crossings(3))
    assert "t_zero_s" in ident.identified(0)
    assert _rel_t_zero(fleet) <= 0.15


def test_telemetry_names_t_zero_and_counts_crossings() -> None:
    fleet = _fleet()
    ident = _run(fleet, _crossings(4))
    dyn = dynamics_payload(fleet, 0)
    assert dyn["identified"] == ["ramp_up_w_s", "t_zero_s"]  # the new side's rise: ramp up
    assert int(fleet.dyn_identified_bits[0]) >> PARAMS.index("t_zero_s") & 1
    assert dyn["n_changes"] == ident.n_changes(0) == 5  # the start from idle + 4 crossings
    assert abs(float(str(dyn["t_zero_s"])) - TRUE["t_zero_s"]) <= 0.18


def _cancelled(after_s: float, then_w: float) -> list[Command]:
    """Five crossings +6 kW -> -6 kW, each overridden by `then_w` `after_s` later; back to
    +6 kW through idle (a stop: t_c, a start: t_a), never across zero."""
    out: list[Command] = [(0.37, 6 * KW)]
    for c in range(5):
        t = 20.0 * (c + 1) + 0.13 * c
        out += [(t, -6 * KW), (t + after_s, then_w), (t + 8.0, 0.0), (t + 14.0, 6 * KW)]
    return out


@pytest.mark.parametrize(("after_s", "then_w"), [
    (0.8, 6 * KW),  # taken back inside the dead time (t_c + t_zero = 1.5 s): never moves
    (2.0, 6 * KW),  # taken back after it left +6 kW, before it reached 0 (1 s down)
    (2.0, -3 * KW),  # a new discharge target then: it has its own dead time in the plant
])
def test_crossings_overridden_before_the_power_shows_on_the_new_side_give_no_estimate(
        after_s: float, then_w: float) -> None:
    fleet = _fleet(t_c_s=0.6)
    ident = _run(fleet, _cancelled(after_s, then_w))
    assert "t_zero_s" not in ident.identified(0)
    assert float(fleet.t_zero_s[0]) == PRIOR_T_ZERO_S
    # nor do they pass for t_c changes: only the five stops measure t_c
    assert "t_c_s" in ident.identified(0)
    assert abs(float(fleet.t_c_s[0]) / TRUE["t_c_s"] - 1.0) <= 0.15


def test_crossings_do_not_pollute_start_and_change_delays() -> None:
    # per cycle: a start from idle (t_a), three crossings, a stop (t_c); had the crossings'
    # 1.5 s dead times gone into t_a or t_c, their medians would be far off
    cmds: list[Command] = []
    for c in range(3):
        t = 75.0 * c + 0.37 + 0.11 * c
        cmds += [(t + 15.0 * k, sp * KW) for k, sp in enumerate((6.0, -6.0, 6.0, -6.0, 0.0))]
    fleet = _fleet(t_a_s=3.0, t_c_s=0.6)  # both priors off: both must be measured
    ident = _run(fleet, cmds)
    assert {"t_a_s", "t_c_s", "t_zero_s"} <= set(ident.identified(0))
    for name in ("t_a_s", "t_c_s", "t_zero_s"):
        assert abs(float(getattr(fleet, name)[0]) / TRUE[name] - 1.0) <= 0.15, name


def test_a_waiting_change_turned_into_a_crossing_is_dropped() -> None:
    # 6 -> 2 kW, then 0.1 s later (inside t_c) -6 kW: the plant now waits t_c + t_zero from the
    # second command, not from the first; keeping t0 would read t_zero + 0.1 s as a t_c
    cmds: list[Command] = [(0.37, 6 * KW)]
    for c in range(5):
        t = 20.0 * (c + 1) + 0.13 * c
        cmds += [(t, 2 * KW if c % 2 == 0 else -2 * KW),
                 (t + 0.1, -6 * KW if c % 2 == 0 else 6 * KW)]
    fleet = _fleet()
    ident = _run(fleet, cmds)
    assert "t_c_s" not in ident.identified(0)
    assert float(fleet.t_c_s[0]) == TRUE["t_c_s"]
    assert ident.n_changes(0) == 1


def _swaps(last_step_w: float) -> list[Command]:
    """Five crossings between +-2 kW as the compensated dispatch swaps: the offset shrinks in
    steps, the last one `last_step_w` toward zero 0.08 s before the crossing (in transit)."""
    out: list[Command] = [(0.37, 2 * KW)]
    for c in range(5):
        t, side = 20.0 * (c + 1) + 0.13 * c, (-1.0) ** c
        out += [(t - 0.08, side * (2 * KW - last_step_w)), (t, -side * 2 * KW)]
    return out


def test_a_crossing_right_after_a_small_step_still_in_transit_is_used() -> None:
    fleet = _fleet()
    ident = _run(fleet, _swaps(100.0), dt_s=0.02, delay_s=0.1,
                 params=IdentParams(transport_delay_s=0.1))
    assert "t_zero_s" in ident.identified(0)
    assert _rel_t_zero(fleet) <= 0.15


def test_a_crossing_right_after_a_large_step_still_in_transit_is_not() -> None:
    # 600 W short of its last command: where the power leaves from is not known well enough
    fleet = _fleet()
    ident = _run(fleet, _swaps(600.0), dt_s=0.02, delay_s=0.1,
                 params=IdentParams(transport_delay_s=0.1))
    assert ident.n_changes(0) == 1  # the start from idle only
    assert float(fleet.t_zero_s[0]) == PRIOR_T_ZERO_S


def test_crossing_rule_is_the_dynamics_model_s() -> None:
    grid = np.array([-5000.0, -30.0, -1.0, -0.5, 0.0, 0.5, 1.0, 30.0, 5000.0])
    p0, tgt = (a.ravel() for a in np.meshgrid(grid, grid))
    n = p0.size
    dyn = Dynamics(np.full(n, 2.0), np.full(n, 0.3), np.full(n, 1.0), np.full(n, 1e3),
                   np.full(n, 1e3), np.full(n, 1e4), np.full(n, 1e4), np.zeros(n))
    model_zero = dead_time_s(dyn, p0, tgt) - np.where(np.abs(p0) >= IDLE_W, 0.3, 2.0) > 0.5
    np.testing.assert_array_equal(zero.crossing(p0, tgt, IDLE_W), model_zero)


def test_a_crossing_s_time_to_the_new_side_less_its_way_down_is_t_c_plus_t_zero() -> None:
    # +6 kW -> -6 kW: t_c 0.3 + t_zero 1.2, then 1 s down at 6 kW/s: at 0 W 2.5 s after
    got = zero.crossing_total_s(np.array([2.5, 2.5]), np.array([6000.0, 6000.0]),
                               np.array([6000.0, 0.0]))
    assert got[0] == pytest.approx(1.5)
    assert np.isnan(got[1])  # no usable ramp figure: no estimate


_cmd = st.one_of(st.floats(-11 * KW, 11 * KW), st.sampled_from([-6 * KW, 6 * KW, -500.0, 500.0]),
                 st.floats(allow_nan=True, allow_infinity=True, width=32))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0.05, 8.0), _cmd), min_size=1, max_size=25))
def test_any_command_sequence_on_the_plant_gives_finite_bounded_estimates(
        gaps: list[tuple[float, float]]) -> None:
    t, cmds = 0.0, []
    for gap_s, sp in gaps:
        t += gap_s
        cmds.append((t, sp if np.isfinite(sp) else np.nan))
    fleet = _fleet()
    ident = _run(fleet, cmds, dt_s=0.2, params=IdentParams(min_changes=1))
    for name in PARAMS:
        lo, hi = RAMP_BOUNDS_W_S if name.startswith("ramp") else DEAD_TIME_BOUNDS_S
        v = float(getattr(fleet, name)[0])
        assert np.isfinite(v)
        assert lo <= v <= hi
    assert ident.n_changes(0) >= 0

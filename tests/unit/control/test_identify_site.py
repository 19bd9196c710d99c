"""Site-meter identification around single changes (control.identify + control.identify_site).

The world is the simulator's plant on a fake clock: three vehicles behind one site meter that
reads the sum of their powers plus a constant base load at 20-50 Hz; MeterValues only every 10 s
(too sparse to identify anything by themselves).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.control.fleet import FleetState
from controller.control.identify import (
    DEAD_TIME_BOUNDS_S,
    RAMP_BOUNDS_W_S,
    Identifier,
    IdentParams,
)
from controller.control.identify_site import in_transit
from sim_chargers.plant import PlantParams, VehiclePlant

PRIOR = {"t_a_s": 2.0, "t_c_s": 0.02, "ramp_up_w_s": 8000.0, "ramp_down_w_s": 8000.0}
TRUE_T_C_S = 0.5  # row 0's truth; rows 1 and 2 are steady neighbours
TRUE_RAMP_W_S = 4000.0
BASE_LOAD_W = 25000.0
METER_VALUES_S = 10.0


def _fleet() -> FleetState:
    fleet = FleetState(4)
    for evse in (1, 2, 3):
        fleet.row("CP1", evse, max_power_w=11000.0, can_discharge=True)
    for k, v in PRIOR.items():
        getattr(fleet, k)[:] = v
    return fleet


def _plant() -> VehiclePlant:
    def col(row0: float, others: float) -> list[float]:
        return [row0, others, others]
    params = PlantParams(
        t_a_s=col(2.0, 2.0), t_c_s=col(TRUE_T_C_S, 0.3), t_zero_s=col(1.0, 1.0),
        ramp_up_w_s=col(TRUE_RAMP_W_S, 5000.0), ramp_down_w_s=col(TRUE_RAMP_W_S, 5000.0),
        max_charge_w=col(11000.0, 11000.0), max_discharge_w=col(11000.0, 11000.0),
        capacity_wh=col(6e4, 6e4), efficiency=col(1.0, 1.0))
    return VehiclePlant(params, [0.5, 0.5, 0.5])


Command = tuple[float, int, float]  # (time s, row, setpoint W)


def _steps(n: int, rows: tuple[int, ...] = (0,), offset_s: float = 0.0) -> list[Command]:
    """n changes 4 kW <-> 10 kW of `rows` from t = 60 s, 15 s apart, odd phases vs samples."""
    out: list[Command] = []
    for k in range(n):
        t = 60.37 + 15.0 * k + 0.113 * k
        for i, row in enumerate(rows):
            out.append((t + i * offset_s, row, 10000.0 if k % 2 == 0 else 4000.0))
    return out


def _run(changes: list[Command], *, site_dt_s: float | None = 0.05,
         nan_every: int = 0) -> tuple[FleetState, Identifier]:
    """Rows settle at 4 / 7 / -3 kW, then `changes`; the identifier sees what the daemon sees."""
    fleet = _fleet()
    ident = Identifier(fleet)
    plant = _plant()
    cmds = sorted([(0.2, 0, 4000.0), (0.2, 1, 7000.0), (0.2, 2, -3000.0), *changes])
    next_mv = np.array([3.3, 4.4, 5.5])
    dt_s = site_dt_s or 0.05
    k = 0
    for i, now in enumerate(np.arange(0.0, cmds[-1][0] + 20.0, dt_s).tolist()):
        while k < len(cmds) and cmds[k][0] <= now:
            t_cmd, row, sp = cmds[k]
            plant.command([row], [sp], t_cmd)
            ident.commanded(np.array([row]), np.array([sp]), t_cmd)
            k += 1
        p = plant.step(now)
        if site_dt_s is not None:
            bad = nan_every and i % nan_every == 0
            site_w = [math.nan, math.inf, -math.inf][i % 3] if bad else BASE_LOAD_W + p.sum()
            ident.observe_site(now, float(site_w))
        for row in np.flatnonzero(next_mv <= now).tolist():
            ident.observe(row, now, float(p[row]))
            next_mv[row] += METER_VALUES_S
    return fleet, ident


def _rel(value: float, truth: float) -> float:
    return abs(value / truth - 1.0)


@pytest.mark.parametrize("site_dt_s", [0.05, 0.02])
def test_site_meter_identifies_a_lone_change_within_five_changes(site_dt_s: float) -> None:
    fleet, ident = _run(_steps(5), site_dt_s=site_dt_s)
    assert {"t_c_s", "ramp_up_w_s"} <= set(ident.identified(0))
    assert _rel(float(fleet.t_c_s[0]), TRUE_T_C_S) <= 0.15
    assert _rel(float(fleet.ramp_up_w_s[0]), TRUE_RAMP_W_S) <= 0.15
    assert ident.identified(1) == ident.identified(2) == ()  # the steady neighbours


def test_site_meter_identifies_both_ramps_after_six_changes() -> None:
    fleet, ident = _run(_steps(6))
    assert {"t_c_s", "ramp_up_w_s", "ramp_down_w_s"} <= set(ident.identified(0))
    assert _rel(float(fleet.ramp_down_w_s[0]), TRUE_RAMP_W_S) <= 0.15


def test_meter_values_every_ten_seconds_alone_identify_nothing() -> None:
    fleet, ident = _run(_steps(6), site_dt_s=None)
    assert ident.identified(0) == ()
    assert ident.n_changes(0) == 0
    for name, prior in PRIOR.items():
        assert float(getattr(fleet, name)[0]) == prior


def test_two_rows_changing_at_once_get_no_site_estimate() -> None:
    fleet, ident = _run(_steps(6, rows=(0, 1)))
    for row in (0, 1):
        assert ident.n_changes(row) == 0
        assert ident.identified(row) == ()
        assert float(fleet.t_c_s[row]) == PRIOR["t_c_s"]


def test_a_second_row_starting_during_the_episode_stops_its_site_samples() -> None:
    # row 1 is commanded 0.2 s after row 0, inside row 0's 0.5 s dead time: every site sample
    # after that would mix both rows, and the ones before it show no movement yet
    _, ident = _run(_steps(6, rows=(0, 1), offset_s=0.2))
    for row in (0, 1):
        assert ident.n_changes(row) == 0
        assert ident.identified(row) == ()


def test_a_neighbour_still_ramping_from_a_small_command_blocks_site_tracking() -> None:
    # 800 W is below min_step_w: no episode of its own, but it moves the site meter while row
    # 0 waits out its dead time
    nudges: list[Command] = [(t - 0.3, 1, 7000.0 + (800.0 if k % 2 == 0 else 0.0))
                             for k, (t, _, _) in enumerate(_steps(6))]
    fleet, ident = _run(_steps(6) + nudges)
    assert ident.n_changes(0) == 0
    assert float(fleet.t_c_s[0]) == PRIOR["t_c_s"]


def test_another_open_episode_blocks_site_tracking_even_past_its_transit_window() -> None:
    ident = Identifier(_fleet())
    for row in (0, 1):
        ident.observe(row, -1.0, 4000.0)
    ident.commanded(np.array([1]), np.array([10000.0]), 0.0)  # opens an episode, never closed
    ident.observe(0, 11.9, 4000.0)
    ident.observe_site(11.95, 30000.0)
    ident.commanded(np.array([0]), np.array([10000.0]), 12.0)  # in_transit(row 1) is over
    assert ident.site.row == -1


def test_a_lone_change_is_tracked() -> None:  # the positive case of the test above
    ident = Identifier(_fleet())
    ident.observe(0, 11.9, 4000.0)
    ident.observe_site(11.95, 30000.0)
    ident.commanded(np.array([0]), np.array([10000.0]), 12.0)
    assert ident.site.row == 0
    assert ident.site.ref_w == 30000.0


def test_non_finite_site_samples_are_ignored() -> None:
    fleet, ident = _run(_steps(5), nan_every=4)  # a quarter of the samples NaN or +-inf
    assert {"t_c_s", "ramp_up_w_s"} <= set(ident.identified(0))
    assert _rel(float(fleet.t_c_s[0]), TRUE_T_C_S) <= 0.15
    assert _rel(float(fleet.ramp_up_w_s[0]), TRUE_RAMP_W_S) <= 0.15


def test_non_finite_or_out_of_order_site_samples_never_become_the_reference() -> None:
    ident = Identifier(_fleet())
    ident.observe_site(10.0, 30000.0)
    for now_s, site_w in ((math.nan, 1.0), (11.0, math.nan), (11.0, math.inf), (9.0, 1.0)):
        ident.observe_site(now_s, site_w)
    assert (ident.site.last_s, ident.site.last_w) == (10.0, 30000.0)


def test_in_transit_until_arrived_or_long_past() -> None:
    one = np.array([1.0])
    common = {"cmd_w": 5000.0 * one, "cmd_p": 0.0 * one, "dead_s": 0.5 * one,
              "ramp_w_s": 5000.0 * one, "tol_w": 50.0, "settle_s": 30.0}
    def ask(now_s: float, last_p: float, last_t: float) -> bool:
        return bool(in_transit(now_s, cmd_s=0.0 * one, last_p=last_p * one,
                               last_t=last_t * one, **common)[0])
    assert ask(5.0, 0.0, -1.0)  # young: 10 s floor + 2 x 1 s ramp
    assert not ask(12.5, 0.0, -1.0)  # past the window
    assert not ask(5.0, 5000.0, 3.0)  # a sample after the command shows it arrived
    assert ask(5.0, 5000.0, -1.0)  # ... a sample from before it does not


_event = st.tuples(st.sampled_from(["cmd0", "cmd1", "obs", "site"]), st.floats(0.0, 2.0),
                   st.floats(allow_nan=True, allow_infinity=True, width=32))


@settings(max_examples=200, deadline=None)
@given(st.lists(_event, max_size=150))
def test_any_sequence_with_site_samples_gives_finite_bounded_estimates(
        events: list[tuple[str, float, float]]) -> None:
    fleet = _fleet()
    ident = Identifier(fleet, IdentParams(min_changes=1))
    now = 0.0
    for kind, dt, value in events:
        now += dt
        if kind.startswith("cmd"):
            ident.commanded(np.array([int(kind[-1])]), np.array([value]), now)
        elif kind == "obs":
            ident.observe(0, now, value)
        else:
            ident.observe_site(now, value)
    for name, (lo, hi) in (("t_a_s", DEAD_TIME_BOUNDS_S), ("t_c_s", DEAD_TIME_BOUNDS_S),
                           ("ramp_up_w_s", RAMP_BOUNDS_W_S), ("ramp_down_w_s", RAMP_BOUNDS_W_S)):
        v = getattr(fleet, name)[:2]
        assert np.all(np.isfinite(v))
        assert np.all((lo <= v) & (v <= hi))

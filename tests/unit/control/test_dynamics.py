"""Tests for controller/control/dynamics.py: the controller's per-row model against the plant."""

from __future__ import annotations

import numpy as np
import pytest

from controller.control.dynamics import Dynamics, RowState, accept, advance, predict
from controller.control.fleet import FleetState
from controller.control.vehicles import NEUTRAL, lookup
from sim_chargers.plant import PlantParams, VehiclePlant

KW = 1000.0


def twin(n: int = 1, **kw: float) -> tuple[Dynamics, VehiclePlant]:
    """A plant and a model with the same figures (no mismatch)."""
    fig = {"t_a_s": 2.0, "t_c_s": 0.3, "t_zero_s": 1.0, "ramp_up_w_s": 5 * KW,
           "ramp_down_w_s": 20 * KW, "max_charge_w": 11 * KW, "max_discharge_w": 11 * KW, **kw}
    plant = VehiclePlant(PlantParams.uniform(n, capacity_wh=60e3, **fig), np.full(n, 0.5))
    full = {k: np.full(n, v) for k, v in fig.items()}
    return Dynamics(quantum_w=np.zeros(n), **full), plant


def model_after(dyn: Dynamics, commands: list[tuple[float, float]], now_s: float) -> RowState:
    """Replica fed the same commands as the plant, advanced to now_s."""
    st, t = RowState.idle(dyn.n), 0.0
    for at_s, sp in commands:
        st = accept(dyn, advance(dyn, st, t, at_s), np.full(dyn.n, sp), at_s)
        t = at_s
    return advance(dyn, st, t, now_s)


@pytest.mark.parametrize(("case", "commands"), [
    ("start from idle waits t_a", [(0.0, 6 * KW)]),
    ("change while flowing waits t_c", [(0.0, 6 * KW), (5.0, 2 * KW)]),
    ("zero crossing waits t_c + t_zero", [(0.0, 6 * KW), (5.0, -6 * KW)]),
    ("a command during the dead time inherits it", [(0.0, 6 * KW), (5.0, 2 * KW),
                                                    (5.1, 9 * KW)]),
    ("a refresh of the target in force changes nothing", [(0.0, 6 * KW), (5.0, 6 * KW)]),
])
def test_replica_matches_the_plant_tick_by_tick(case: str,
                                                commands: list[tuple[float, float]]) -> None:
    dyn, plant = twin()
    for k in range(240):
        now_s = k * 0.05
        for at_s, sp in commands:
            if abs(at_s - now_s) < 1e-9:
                plant.command([0], [sp], at_s)
        expected = plant.step(now_s)[0]
        got = model_after(dyn, [c for c in commands if c[0] <= now_s + 1e-9], now_s).p_w[0]
        assert got == pytest.approx(expected, abs=1e-6), (case, now_s)


@pytest.mark.parametrize("horizon_s", [0.1, 0.35, 0.9, 2.5, 4.0])
def test_prediction_of_a_new_command_is_what_the_plant_then_does(horizon_s: float) -> None:
    dyn, plant = twin(3)
    plant.command([0, 1, 2], [0.0, 5 * KW, -5 * KW], 0.0)
    st = model_after(dyn, [(0.0, 0.0)], 0.0)
    st = accept(dyn, st, np.array([0.0, 5 * KW, -5 * KW]), 0.0)
    st = advance(dyn, st, 0.0, 6.0)
    plant.step(6.0)
    cmd = np.array([3 * KW, 1 * KW, 4 * KW])  # from idle; down while flowing; across zero
    got = predict(dyn, st, 6.0, cmd, 6.1, 6.0 + horizon_s)
    plant.command([0, 1, 2], cmd, 6.1)
    assert got == pytest.approx(plant.step(6.0 + horizon_s), abs=1e-6)


def test_nan_command_means_keep_going() -> None:
    dyn, _ = twin(1)
    st = advance(dyn, accept(dyn, RowState.idle(1), np.array([4 * KW]), 0.0), 0.0, 5.0)
    assert predict(dyn, st, 5.0, np.array([np.nan]), 5.1, 6.0) == pytest.approx([4 * KW])


def test_uncertain_pending_command_makes_a_new_one_wait_a_full_dead_time() -> None:
    dyn, _ = twin(1, t_c_s=1.0, ramp_down_w_s=1e6)
    st = advance(dyn, accept(dyn, RowState.idle(1), np.array([6 * KW]), 0.0), 0.0, 10.0)
    st = accept(dyn, st, np.array([3 * KW]), 10.0, early_ratio=0.5)  # acts at 10.5 .. 11.0
    assert st.pending_from_s[0] == pytest.approx(10.5)
    sure = accept(dyn, st, np.array([1 * KW]), 10.4, early_ratio=0.5)  # surely still waiting
    assert sure.pending_at_s[0] == pytest.approx(11.0)
    maybe = accept(dyn, st, np.array([1 * KW]), 10.7, early_ratio=0.5)  # may have acted
    assert maybe.pending_at_s[0] == pytest.approx(11.7)
    assert maybe.target_w[0] == pytest.approx(3 * KW)  # the earlier one counts as in force


def test_priors_come_from_the_library_and_unknown_vehicles_get_neutral() -> None:
    ariya = lookup("Nissan Ariya")
    dyn = Dynamics.from_models([ariya, None], [11 * KW] * 2, [11 * KW] * 2)
    assert dyn.t_a_s.tolist() == [ariya.t_a_s, NEUTRAL.t_a_s]
    assert dyn.ramp_down_w_s.tolist() == [ariya.ramp_down_w_s, NEUTRAL.ramp_down_w_s]
    assert dyn.t_zero_s.tolist() == [ariya.t_zero_cross_s, NEUTRAL.t_zero_cross_s]


def test_fleet_rows_start_neutral_and_take_a_prior_per_row() -> None:
    fleet = FleetState()
    for i in range(3):
        fleet.row(f"CP{i}", 1, max_power_w=11 * KW, can_discharge=i != 2)
    fleet.set_prior([0, 1], [lookup("Tesla M3"), lookup("Renault Zoe")])
    dyn = Dynamics.from_fleet(fleet)
    assert dyn.t_c_s.tolist() == [0.02, 0.1, NEUTRAL.t_c_s]
    assert dyn.max_discharge_w.tolist() == [11 * KW, 11 * KW, 0.0]  # row 2 may not export
    with pytest.raises(ValueError, match="2 rows but 1 models"):
        fleet.set_prior([0, 1], [lookup("Tesla M3")])


def test_pessimistic_model_is_slower_everywhere() -> None:
    dyn = Dynamics.from_models([lookup("VW ID3")], [11 * KW], [11 * KW]).pessimistic(0.2)
    assert dyn.t_c_s[0] == pytest.approx(0.78 * 1.2)
    assert dyn.ramp_up_w_s[0] == pytest.approx(10.03 * KW * 0.8)


def test_clamp_respects_limits_and_quantisation() -> None:
    dyn = Dynamics.from_models([None, None], [11 * KW] * 2, [11 * KW, 0.0])
    dyn = Dynamics(**{**{f: getattr(dyn, f) for f in ("t_a_s", "t_c_s", "t_zero_s",
                                                      "ramp_up_w_s", "ramp_down_w_s",
                                                      "max_charge_w", "max_discharge_w")},
                      "quantum_w": np.array([230.0, 0.0])})
    out = dyn.clamp(np.array([1000.0, -500.0]))
    assert out.tolist() == pytest.approx([920.0, 0.0])
    assert dyn.clamp(np.array([20 * KW, 20 * KW])).tolist() == [11 * KW, 11 * KW]


def test_daemon_rows_take_the_configured_vehicle_as_prior() -> None:
    from controller.fleet_sync import FleetSync  # noqa: PLC0415 - the daemon side of the plumbing
    from controller.settings import StationConfig  # noqa: PLC0415

    fleet = FleetState()
    sync = FleetSync(fleet, {"A": StationConfig("A", vehicle="Tesla M3 LRDM"),
                             "B": StationConfig("B")}, refresh_s=10.0)
    a, b = sync.row("A", 1), sync.row("B", 1)
    assert sync.row("A", 1) == a
    assert fleet.ramp_down_w_s[a] == lookup("Tesla M3").ramp_down_w_s
    assert fleet.t_a_s[b] == NEUTRAL.t_a_s

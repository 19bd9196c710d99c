"""Vehicle plant: dead times, ramps, limits, SoC (fake times, table-driven)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim_chargers.plant import PlantParams, PlantParamsError, VehiclePlant

KW = 1000.0


def make(n: int = 1, soc: float = 0.5, **kw: float) -> VehiclePlant:
    base = {"t_a_s": 2.0, "t_c_s": 0.5, "t_zero_s": 1.0, "ramp_up_w_s": 1 * KW,
            "ramp_down_w_s": 4 * KW,
            "max_charge_w": 10 * KW, "max_discharge_w": 10 * KW, "capacity_wh": 50_000.0}
    base.update(kw)
    return VehiclePlant(PlantParams.uniform(n, **base), np.full(n, soc))


def run_to(plant: VehiclePlant, t_end: float, dt: float = 0.05) -> None:
    t = plant.time_s
    while t < t_end - 1e-12:
        t = min(t + dt, t_end)
        plant.step(t)


def test_start_from_idle_waits_t_a_then_ramps_up() -> None:
    plant = make()
    plant.command([0], [5 * KW], 0.0)
    run_to(plant, 1.99)
    assert plant.power_w[0] == 0.0
    run_to(plant, 3.0)  # 1 s of ramping at 1 kW/s
    assert plant.power_w[0] == pytest.approx(1 * KW)
    run_to(plant, 10.0)
    assert plant.power_w[0] == pytest.approx(5 * KW)


def test_change_while_flowing_waits_t_c_not_t_a() -> None:
    plant = make()
    plant.command([0], [5 * KW], 0.0)
    run_to(plant, 10.0)
    plant.command([0], [1 * KW], 10.0)
    run_to(plant, 10.49)
    assert plant.power_w[0] == pytest.approx(5 * KW)
    run_to(plant, 10.75)  # 0.25 s at 4 kW/s down
    assert plant.power_w[0] == pytest.approx(4 * KW)


def test_zero_crossing_adds_t_zero_then_ramps_down_to_zero_then_up() -> None:
    plant = make()
    plant.command([0], [2 * KW], 0.0)
    run_to(plant, 10.0)
    plant.command([0], [-3 * KW], 10.0)  # dead time t_c + t_zero = 1.5 s
    run_to(plant, 11.49)
    assert plant.power_w[0] == pytest.approx(2 * KW)
    run_to(plant, 12.0)  # 0.5 s down at 4 kW/s reaches 0 after 0.5 s exactly
    assert plant.power_w[0] == pytest.approx(0.0, abs=1e-6)
    run_to(plant, 13.0)  # then 1 s up at 1 kW/s in discharge
    assert plant.power_w[0] == pytest.approx(-1 * KW)


def test_ramp_up_and_ramp_down_use_their_own_rates_in_discharge_too() -> None:
    plant = make()
    plant.command([0], [-4 * KW], 0.0)
    run_to(plant, 3.0)
    assert plant.power_w[0] == pytest.approx(-1 * KW)  # |p| rising: ramp_up
    run_to(plant, 20.0)
    plant.command([0], [0.0], 20.0)
    run_to(plant, 21.0)  # 0.5 s dead time + 0.5 s at 4 kW/s
    assert plant.power_w[0] == pytest.approx(-2 * KW)


def test_step_size_does_not_change_the_trajectory() -> None:
    a, b = make(), make()
    for p in (a, b):
        p.command([0], [5 * KW], 0.0)
    run_to(a, 4.3, dt=0.05)
    run_to(b, 4.3, dt=1.0)
    assert a.power_w[0] == pytest.approx(b.power_w[0])


def test_setpoint_is_clamped_to_charger_limits() -> None:
    plant = make(n=2, ramp_up_w_s=100 * KW, max_discharge_w=3 * KW)
    plant.command([0, 1], [50 * KW, -50 * KW], 0.0)
    run_to(plant, 10.0)
    assert plant.power_w.tolist() == pytest.approx([10 * KW, -3 * KW])


def test_latest_command_wins_and_keeps_the_pending_effective_time() -> None:
    plant = make()
    plant.command([0], [5 * KW], 0.0)  # effective at 2.0
    plant.command([0], [3 * KW], 1.5)  # replaces the target, still effective at 2.0
    assert plant.setpoint_w[0] == 3 * KW
    run_to(plant, 3.0)
    assert plant.power_w[0] == pytest.approx(1 * KW)
    run_to(plant, 10.0)
    assert plant.power_w[0] == pytest.approx(3 * KW)


def test_latest_command_needing_zero_crossing_is_not_made_faster_by_a_pending_one() -> None:
    plant = make()
    plant.command([0], [2 * KW], 0.0)
    run_to(plant, 10.0)
    plant.command([0], [1 * KW], 10.0)  # t_c only: effective at 10.5
    plant.command([0], [-1 * KW], 10.2)  # reversal: at least 10.2 + 0.5 + 1.0 = 11.7
    run_to(plant, 11.69)
    assert plant.power_w[0] == pytest.approx(2 * KW)
    run_to(plant, 11.8)
    assert plant.power_w[0] < 2 * KW


def test_charging_stops_at_full_soc() -> None:
    plant = make(soc=0.999, capacity_wh=1000.0, ramp_up_w_s=100 * KW, t_a_s=0.0)
    plant.command([0], [10 * KW], 0.0)
    run_to(plant, 5.0)
    assert plant.soc_frac[0] == 1.0
    assert plant.power_w[0] == 0.0


def test_discharging_stops_at_empty_soc_and_charging_still_works() -> None:
    plant = make(soc=0.001, capacity_wh=1000.0, ramp_up_w_s=100 * KW, t_a_s=0.0, t_c_s=0.0)
    plant.command([0], [-10 * KW], 0.0)
    run_to(plant, 5.0)
    assert plant.soc_frac[0] == 0.0
    assert plant.power_w[0] == 0.0
    plant.command([0], [5 * KW], 5.0)
    run_to(plant, 6.0)
    assert plant.power_w[0] == pytest.approx(5 * KW)
    assert plant.soc_frac[0] > 0.0


def test_soc_integrates_energy() -> None:
    plant = make(soc=0.5, capacity_wh=10_000.0, ramp_up_w_s=1e9, t_a_s=0.0)
    plant.command([0], [3600.0], 0.0)
    run_to(plant, 100.0)  # 3600 W x 100 s = 100 Wh = 1 % of 10 kWh
    # trapezoidal integration: at most half a step of error at the ramp's knee (2.5e-6 here)
    assert plant.soc_frac[0] == pytest.approx(0.51, abs=3e-6)


@pytest.mark.parametrize(("setpoint_w", "battery_wh", "loss_wh"), [
    (3600.0, 100.0 * 0.95, 100.0 * 0.05),  # charging: the battery gets grid energy x eta
    (-3600.0, -100.0 / 0.95, 100.0 / 0.95 - 100.0),  # discharging: it gives grid energy / eta
])
def test_conversion_losses_sit_between_grid_and_battery(setpoint_w: float, battery_wh: float,
                                                        loss_wh: float) -> None:
    plant = make(soc=0.5, capacity_wh=10_000.0, ramp_up_w_s=1e9, ramp_down_w_s=1e9, t_a_s=0.0,
                 efficiency=0.95)
    plant.command([0], [setpoint_w], 0.0)
    run_to(plant, 100.0)  # 100 Wh at the grid side
    assert plant.power_w[0] == setpoint_w  # the grid-side power is what was asked
    assert plant.soc_frac[0] == pytest.approx(0.5 + battery_wh / 10_000.0, abs=3e-6)
    assert plant.losses_wh[0] == pytest.approx(loss_wh, rel=1e-3)


def test_lossless_plant_reports_no_losses() -> None:
    plant = make()
    plant.command([0], [5 * KW], 0.0)
    run_to(plant, 20.0)
    assert plant.losses_wh.tolist() == [0.0]


def test_non_finite_setpoints_are_ignored() -> None:
    plant = make()
    plant.command([0], [float("nan")], 0.0)
    assert plant.setpoint_w[0] == 0.0


def test_inconsistent_parameters_are_rejected() -> None:
    p = PlantParams.uniform(2, t_a_s=1, t_c_s=1, t_zero_s=1, ramp_up_w_s=1, ramp_down_w_s=1,
                            max_charge_w=1, max_discharge_w=1, capacity_wh=1)
    with pytest.raises(PlantParamsError, match="soc_frac"):
        VehiclePlant(p, [0.5])
    with pytest.raises(PlantParamsError, match="ramp_up_w_s"):
        PlantParams.uniform(1, t_a_s=1, t_c_s=1, t_zero_s=1, ramp_up_w_s=0, ramp_down_w_s=1,
                            max_charge_w=1, max_discharge_w=1, capacity_wh=1)


commands = st.lists(
    st.tuples(st.floats(0.0, 3.0), st.integers(0, 3),
              st.floats(-50_000, 50_000, allow_nan=False)),
    max_size=30)


@settings(max_examples=150, deadline=None)
@given(cmds=commands, soc=st.floats(0.0, 1.0), cap=st.floats(100.0, 100_000.0))
def test_any_command_sequence_keeps_power_finite_within_limits_and_soc_in_range(
        cmds: list[tuple[float, int, float]], soc: float, cap: float) -> None:
    plant = make(n=4, soc=soc, capacity_wh=cap, max_discharge_w=7 * KW)
    t = 0.0
    for gap, row, sp in cmds:
        t += gap
        plant.command([row], [sp], t)
        for _ in range(3):
            t += 0.3
            p = plant.step(t)
            assert np.all(np.isfinite(p))
            assert np.all(p <= 10 * KW + 1e-9)
            assert np.all(p >= -7 * KW - 1e-9)
            assert np.all((plant.soc_frac >= 0) & (plant.soc_frac <= 1))
            assert np.all(p[plant.soc_frac >= 1.0] <= 0)
            assert np.all(p[plant.soc_frac <= 0.0] >= 0)


def test_restating_the_current_target_does_not_start_a_countdown():
    """A 0 W refresh at t=0 must not make a real command at t=1 start early."""
    params = PlantParams.uniform(1, t_a_s=2.0, t_c_s=0.5, t_zero_s=2.0, ramp_up_w_s=1e6,
                                 ramp_down_w_s=1e6, max_charge_w=10e3, max_discharge_w=10e3,
                                 capacity_wh=50e3)
    plant = VehiclePlant(params, [0.5])
    plant.command([0], [0.0], 0.0)  # same as the target in force
    plant.command([0], [-5000.0], 1.0)  # the real change: starts at 1.0 + t_a = 3.0
    assert plant.step(2.9)[0] == 0.0
    assert plant.step(3.1)[0] == -5000.0

"""Online identification (control.identify) against the simulator's plant, on a fake clock."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.control.fleet import FleetState
from controller.control.identify import (
    DEAD_TIME_BOUNDS_S,
    RAMP_BOUNDS_W_S,
    Identifier,
    IdentParams,
)
from controller.snapshots import evse_payload
from sim_chargers.plant import PlantParams, VehiclePlant

# the four figures these one-sided cycles measure (crossings: test_identify_zero.py)
ONE_SIDED = ("t_a_s", "t_c_s", "ramp_up_w_s", "ramp_down_w_s")
PRIOR = {"t_a_s": 2.0, "t_c_s": 0.3, "ramp_up_w_s": 8000.0, "ramp_down_w_s": 8000.0}
TRUE = {"t_a_s": 3.0, "t_c_s": 0.6, "ramp_up_w_s": 4000.0, "ramp_down_w_s": 6000.0}


def _fleet(prior: dict[str, float]) -> FleetState:
    fleet = FleetState(4)
    fleet.row("CP1", 1, max_power_w=11000.0, can_discharge=True)
    for k, v in prior.items():
        getattr(fleet, k)[:] = v
    return fleet


def _cycles(n: int) -> list[tuple[float, float]]:
    """Idle -> 10 kW (t_a, ramp up), -> 4 kW (t_c, ramp down), -> 0; odd phases vs samples."""
    out = []
    for c in range(n):
        t = 40.0 * c
        out += [(t + 0.37 * c, 10000.0), (t + 10 + 0.29 * c, 4000.0), (t + 20 + 0.41 * c, 0.0)]
    return out


def _run(fleet: FleetState, true: dict[str, float], cmds: list[tuple[float, float]],
         dt_s: float, phase_s: float = 0.0) -> Identifier:
    ident = Identifier(fleet)
    plant = VehiclePlant(PlantParams.uniform(
        1, t_zero_s=1.0, max_charge_w=11000.0, max_discharge_w=11000.0, capacity_wh=6e4,
        **true), [0.5])
    k = 0
    for now in np.arange(phase_s - 1.0, cmds[-1][0] + 20.0, dt_s).tolist():
        while k < len(cmds) and cmds[k][0] <= now:
            t_cmd, sp = cmds[k]
            plant.command([0], [sp], t_cmd)
            ident.commanded(np.array([0]), np.array([sp]), t_cmd)
            k += 1
        ident.observe(0, now, float(plant.step(now)[0]))
    return ident


def _rel(fleet: FleetState, name: str) -> float:
    return abs(float(getattr(fleet, name)[0]) / TRUE[name] - 1.0)


def test_vehicle_slower_than_its_prior_is_identified_within_five_changes() -> None:
    fleet = _fleet(PRIOR)
    on_off = [(0.37, 10000.0), (15.0, 0.0), (30.21, 10000.0), (45.0, 0.0), (60.55, 10000.0)]
    ident = _run(fleet, TRUE, on_off, dt_s=0.1)  # five changes, three starts from idle
    assert set(ident.identified(0)) >= {"t_a_s", "ramp_up_w_s"}
    for name in ("t_a_s", "ramp_up_w_s"):
        assert _rel(fleet, name) <= 0.15


def test_all_four_figures_converge_with_dense_sampling() -> None:
    fleet = _fleet(PRIOR)
    ident = _run(fleet, TRUE, _cycles(4), dt_s=0.1)
    assert set(ident.identified(0)) == set(ONE_SIDED)
    for name in ONE_SIDED:
        assert _rel(fleet, name) <= 0.15, name


def test_one_second_meter_values_still_converge() -> None:
    for phase in (0.0, 0.5):
        fleet = _fleet(PRIOR)
        ident = _run(fleet, TRUE, _cycles(5), dt_s=1.0, phase_s=phase)
        assert {"t_a_s", "t_c_s", "ramp_up_w_s"} <= set(ident.identified(0))
        assert _rel(fleet, "t_a_s") <= 0.15
        assert _rel(fleet, "ramp_up_w_s") <= 0.15
        assert abs(float(fleet.t_c_s[0]) - TRUE["t_c_s"]) <= 0.3  # bracket of 1 s samples


def test_figures_not_measurable_at_sparse_sampling_keep_the_prior() -> None:
    fleet = _fleet(PRIOR)
    ident = _run(fleet, TRUE, _cycles(5), dt_s=1.0)
    # 6 kW/s over a 6 kW step lasts 1 s: never two samples inside the ramp
    assert "ramp_down_w_s" not in ident.identified(0)
    assert fleet.ramp_down_w_s[0] == PRIOR["ramp_down_w_s"]


def test_noise_free_vehicle_equal_to_its_prior_stays_put() -> None:
    fleet = _fleet(TRUE)
    _run(fleet, TRUE, _cycles(4), dt_s=0.1)
    for name in ONE_SIDED:
        assert _rel(fleet, name) <= 0.02, name


def test_two_changes_are_not_enough_to_replace_the_prior() -> None:
    fleet = _fleet(PRIOR)
    ident = _run(fleet, TRUE, _cycles(1)[:2], dt_s=0.1)
    assert ident.identified(0) == ()
    assert fleet.t_a_s[0] == PRIOR["t_a_s"]


def test_transport_delay_is_taken_off_dead_times() -> None:
    fleet = _fleet(PRIOR)
    ident = Identifier(fleet, IdentParams(transport_delay_s=0.5))
    for c in range(3):
        t0 = 100.0 * c
        ident.observe(0, t0 - 0.1, 0.0)
        ident.commanded(np.array([0]), np.array([5000.0]), t0)
        for k in range(1, 80):  # dead time 3.5 s seen from the offer, then 5 kW/s
            ident.observe(0, t0 + 0.1 * k, min(5000.0, max(0.0, (0.1 * k - 3.5) * 5000.0)))
        ident.commanded(np.array([0]), np.array([0.0]), t0 + 50.0)
        ident.observe(0, t0 + 90.0, 0.0)
    assert abs(float(fleet.t_a_s[0]) - 3.0) <= 0.05


def test_telemetry_reports_source_and_changes() -> None:
    fleet = _fleet(PRIOR)
    before = evse_payload(fleet, 0)["dynamics"]
    assert isinstance(before, dict)
    assert before["source"] == "prior"
    assert before["n_changes"] == 0
    _run(fleet, TRUE, _cycles(3), dt_s=0.1)
    dyn = evse_payload(fleet, 0)["dynamics"]
    assert isinstance(dyn, dict)
    assert dyn["source"] == "identified"
    assert isinstance(dyn["n_changes"], int)
    assert dyn["n_changes"] >= 5
    assert abs(float(str(dyn["t_a_s"])) - 3.0) <= 0.45
    assert abs(float(str(dyn["ramp_up_kw_s"])) - 4.0) <= 0.6


_event = st.tuples(st.booleans(), st.floats(0.0, 5.0),
                   st.floats(allow_nan=True, allow_infinity=True, width=32))


@settings(max_examples=200, deadline=None)
@given(st.lists(_event, max_size=120))
def test_any_observation_sequence_gives_finite_bounded_estimates(
        events: list[tuple[bool, float, float]]) -> None:
    fleet = _fleet(PRIOR)
    ident = Identifier(fleet, IdentParams(min_changes=1))
    now = 0.0
    for is_cmd, dt, value in events:
        now += dt
        if is_cmd:
            ident.commanded(np.array([0]), np.array([value]), now)
        else:
            ident.observe(0, now, value)
    for name in ("t_a_s", "t_c_s", "t_zero_s"):
        v = float(getattr(fleet, name)[0])
        assert np.isfinite(v)
        assert DEAD_TIME_BOUNDS_S[0] <= v <= DEAD_TIME_BOUNDS_S[1]
    for name in ("ramp_up_w_s", "ramp_down_w_s"):
        v = float(getattr(fleet, name)[0])
        assert np.isfinite(v)
        assert RAMP_BOUNDS_W_S[0] <= v <= RAMP_BOUNDS_W_S[1]

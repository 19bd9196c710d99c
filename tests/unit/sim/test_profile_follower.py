"""The profile follower: the plant row follows the profile in force, then the baseline."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from sim_chargers.chargeprofile import ActiveProfile
from sim_chargers.plant import PlantParams, VehiclePlant
from sim_chargers.profile_follower import ProfileFollower


def plant() -> VehiclePlant:
    return VehiclePlant(PlantParams.uniform(
        2, t_a_s=0.0, t_c_s=0.0, t_zero_s=0.0, ramp_up_w_s=1e6, ramp_down_w_s=1e6,
        max_charge_w=11_000, max_discharge_w=11_000, capacity_wh=50_000), np.array([0.5, 0.5]))


def profile(start_s: float, limits_w: tuple[float, ...], offsets_s: tuple[float, ...],
            expires_s: float) -> ActiveProfile:
    return ActiveProfile(100, "TxProfile", 1, start_s, offsets_s, limits_w, -np.inf, expires_s)


def test_a_non_zero_baseline_is_commanded_at_once_and_restored_on_clear() -> None:
    p = plant()
    follower = ProfileFollower(p, 1, baseline_w=2000.0, discharge=True, name="CP1",
                               clock=lambda: 0.0)
    assert (follower.setpoint_w, p.setpoint_w[1], p.setpoint_w[0]) == (2000.0, 2000.0, 0.0)
    follower.follow(profile(0.0, (-3000.0,), (0.0,), np.inf), 1.0)
    assert p.setpoint_w[1] == -3000.0
    follower.follow(None, 2.0)
    assert (follower.profile, p.setpoint_w[1]) == (None, 2000.0)


def test_a_station_that_may_not_discharge_holds_at_zero() -> None:
    p = plant()
    follower = ProfileFollower(p, 0, baseline_w=0.0, discharge=False, name="CP1",
                               clock=lambda: 0.0)
    follower.follow(profile(0.0, (-3000.0,), (0.0,), np.inf), 0.0)
    assert (follower.setpoint_w, p.setpoint_w[0]) == (0.0, 0.0)


async def test_periods_and_the_lapse_are_followed_on_the_timer() -> None:
    p = plant()
    follower = ProfileFollower(p, 0, baseline_w=0.0, discharge=True, name="CP1",
                               clock=time.monotonic)
    now = time.monotonic()
    follower.follow(profile(now, (1000.0, 4000.0), (0.0, 0.05), now + 0.1), now)
    assert p.setpoint_w[0] == 1000.0
    async with asyncio.timeout(5.0):
        while p.setpoint_w[0] != 4000.0:  # noqa: ASYNC110 - the follower's timer moves it
            await asyncio.sleep(0.005)
        while follower.profile is not None:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    assert p.setpoint_w[0] == 0.0  # lapsed: back to the baseline
    follower.close()

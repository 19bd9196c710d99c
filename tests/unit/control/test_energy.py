"""Tests for controller/control/energy.py: SoC windows, reserves, headroom, restoring sides."""

from __future__ import annotations

import numpy as np
import pytest

from controller.control import energy
from controller.control.energy import EnergyParams
from controller.control.fleet import FleetState
from controller.control.services import contracts_from
from controller.control.vehicles import lookup

KW = 1000.0
ARIYA_WH = 1000.0 * lookup("Nissan Ariya").battery_kwh  # 87 kWh


def fleet_at(socs: list[float], charger_w: float = 11 * KW) -> FleetState:
    fleet = FleetState(capacity=len(socs))
    for i in range(len(socs)):
        fleet.row(f"CP{i}", 1, max_power_w=charger_w, can_discharge=True)
    fleet.online[:] = True
    fleet.tx_active[:] = True
    fleet.soc_frac[:] = socs
    fleet.set_prior(np.arange(len(socs)), lookup("Nissan Ariya"))
    return fleet


def test_window_defaults_to_the_retailer_window_and_takes_row_overrides() -> None:
    fleet = fleet_at([0.5, 0.5])
    fleet.soc_min_frac[1] = 0.3
    fleet.soc_max_frac[1] = 0.9
    lo, hi = energy.window(fleet, EnergyParams())
    assert lo.tolist() == [0.2, 0.3]
    assert hi.tolist() == [0.8, 0.9]


def test_bad_window_is_rejected() -> None:
    with pytest.raises(ValueError, match="soc_min < soc_max"):
        EnergyParams(soc_min_frac=0.8, soc_max_frac=0.2)


def test_restore_target_sits_below_the_middle_where_calendar_ageing_is_lower() -> None:
    target = energy.restore_target(np.array([0.2]), np.array([0.8]), EnergyParams())
    assert target[0] == pytest.approx(0.47)


def test_usable_energy_is_what_lies_inside_the_window_each_way() -> None:
    down, up = energy.usable_wh(np.array([0.5, 0.1, np.nan]), np.full(3, 0.2), np.full(3, 0.8),
                                np.full(3, 10_000.0))
    assert down.tolist() == pytest.approx([3000.0, 0.0, 0.0])
    assert up.tolist() == pytest.approx([3000.0, 7000.0, 0.0])


def test_rows_near_a_bound_stop_taking_that_direction() -> None:
    soc = np.array([0.5, 0.21, 0.2, 0.79, 0.8])
    cap = np.full(5, ARIYA_WH)
    rating = np.full(5, 11 * KW)
    dis, chg = energy.power_limits(soc, np.full(5, 0.2), np.full(5, 0.8), cap, rating, rating,
                                   900.0, 3600.0)
    assert dis[0] == chg[0] == 11 * KW  # mid-window: the rating binds
    assert dis[1] == pytest.approx(0.01 * ARIYA_WH * 4)  # 870 Wh over 15 min
    assert dis[2] == 0.0
    assert chg[2] == 11 * KW
    assert chg[3] == pytest.approx(0.01 * ARIYA_WH)  # 870 Wh over DR's 60 min
    assert chg[4] == 0.0
    assert dis[4] == 11 * KW


def test_unknown_soc_keeps_the_rating() -> None:
    rating = np.full(1, 11 * KW)
    dis, chg = energy.power_limits(np.array([np.nan]), np.array([0.2]), np.array([0.8]),
                                   np.array([ARIYA_WH]), rating, rating, 900.0, 900.0)
    assert dis[0] == chg[0] == 11 * KW


@pytest.mark.parametrize(("service", "down_s", "up_s"), [
    ("DC", 900.0, 900.0), ("DM", 1800.0, 1800.0), ("DR", 3600.0, 3600.0),
    ("FCR", 900.0, 900.0), ("DR-L", 3600.0, 900.0),
])
def test_sustain_times_come_from_the_contracted_services(service: str, down_s: float,
                                                         up_s: float) -> None:
    assert energy.sustain_s(contracts_from([(service, 100.0)]), 900.0) == (down_s, up_s)


def test_low_soc_rows_of_each_class_take_the_charging_half() -> None:
    soc = np.array([0.7, 0.3, 0.6, 0.4, 0.55, 0.5, 0.45, 0.65])
    cls = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    side = energy.split_sides((cls,), soc, np.ones(8, dtype=bool))
    assert side.tolist() == [-1, 1, -1, 1, -1, 1, 1, -1]
    assert side.sum() == 0  # balanced within each class, so at the site


def test_rows_not_free_stay_on_the_charging_side_and_do_not_count() -> None:
    free = np.array([True, True, False])
    side = energy.split_sides((np.zeros(3),), np.array([0.8, 0.2, 0.1]), free)
    assert side.tolist() == [-1, 1, 1]


def test_a_pair_that_drifted_past_the_band_swaps_sides() -> None:
    side = np.array([1.0, 1.0, -1.0, -1.0])
    free = np.ones(4, dtype=bool)
    target = np.full(4, 0.47)
    assert energy.flip_pair(np.array([0.48, 0.46, 0.47, 0.48]), side, free, target, 0.03) is None
    assert energy.flip_pair(np.array([0.52, 0.46, 0.47, 0.43]), side, free, target, 0.03) == (0, 3)
    # one row far out is enough, as long as the swap moves both inward
    assert energy.flip_pair(np.array([0.6, 0.4, 0.47, 0.46]), side, free, target, 0.03) == (0, 3)
    # never a swap that moves the pair apart
    assert energy.flip_pair(np.array([0.3, 0.2, 0.6, 0.5]), side, free, target, 0.03) is None


def test_a_mid_window_fleet_holds_every_contract_for_its_sustain_time() -> None:
    fleet = fleet_at([0.5] * 20)  # 20 x 87 kWh, 11 kW
    rooms = energy.headroom(fleet, np.ones(20, dtype=bool), contracts_from([("DC", 150.0)]),
                            EnergyParams())
    assert [r.name for r in rooms] == ["DC-L", "DC-H"]
    for r in rooms:
        assert r.holdable
        assert r.holdable_w == 150 * KW
        # 20 x 87 kWh x 30 % / 150 kW = 3.48 h
        assert r.hold_s == pytest.approx(20 * ARIYA_WH * 0.3 / (150 * KW) * 3600)
    assert energy.reserve_low(rooms, 1.2) == []


def test_a_fleet_near_its_floor_cannot_hold_the_low_contract() -> None:
    fleet = fleet_at([0.21] * 20)  # 20 x 870 Wh above the floor = 17.4 kWh < 150 kW x 15 min
    rooms = {r.name: r for r in energy.headroom(fleet, np.ones(20, dtype=bool),
                                                contracts_from([("DC", 150.0)]), EnergyParams())}
    low, high = rooms["DC-L"], rooms["DC-H"]
    assert not low.holdable
    assert low.hold_s == pytest.approx(17_400.0 / 150_000.0 * 3600)  # 7 min
    assert low.holdable_w == pytest.approx(17_400.0 * 4)  # what 15 min can take: 69.6 kW
    assert high.holdable
    assert [r.name for r in energy.reserve_low(list(rooms.values()), 1.2)] == ["DC-L"]


def test_the_alarm_comes_before_the_contract_is_lost() -> None:
    # 40 kWh above the floor: DC-L (150 kW) holds 16 min, 1.07 x its 15 min
    fleet = fleet_at([0.2 + 40_000.0 / 20 / ARIYA_WH] * 20)
    rooms = energy.headroom(fleet, np.ones(20, dtype=bool), contracts_from([("DC-L", 150.0)]),
                            EnergyParams())
    assert rooms[0].holdable  # still holds 15 min ...
    assert rooms[0].hold_s == pytest.approx(960.0)
    assert energy.reserve_low(rooms, 1.2) == rooms  # ... but the alarm is already up


def test_contracts_in_one_direction_share_its_energy() -> None:
    fleet = fleet_at([0.5] * 20)
    one = energy.headroom(fleet, np.ones(20, dtype=bool), contracts_from([("DR-L", 100.0)]),
                          EnergyParams())[0]
    two = energy.headroom(fleet, np.ones(20, dtype=bool),
                          contracts_from([("DR-L", 100.0), ("DC-L", 50.0)]), EnergyParams())[0]
    assert two.name == "DR-L"
    assert two.hold_s == pytest.approx(one.hold_s - 50.0 * 900.0 / 100.0)


def test_fcr_reports_its_weaker_direction_and_power_limits_headroom() -> None:
    fleet = fleet_at([0.75] * 10)  # 110 kW of chargers; import energy 10 x 4.35 kWh
    room = energy.headroom(fleet, np.ones(10, dtype=bool), contracts_from([("FCR", 200.0)]),
                           EnergyParams())[0]
    assert room.hold_s == 0.0  # 200 kW is more than the 110 kW of chargers
    assert room.holdable_w == pytest.approx(min(110 * KW, 10 * 0.05 * ARIYA_WH * 4))
    assert not room.holdable
    d = room.to_dict()
    assert d["holdable"] is False
    assert d["sustain_s"] == 900.0


def test_unknown_soc_gives_no_hold_time_limit() -> None:
    fleet = fleet_at([np.nan] * 4)
    room = energy.headroom(fleet, np.ones(4, dtype=bool), contracts_from([("DC-L", 20.0)]),
                           EnergyParams())[0]
    assert room.hold_s == np.inf
    assert room.to_dict()["hold_s"] is None


def test_set_prior_gives_the_row_its_battery_capacity() -> None:
    fleet = fleet_at([0.5])
    assert fleet.capacity_wh[0] == ARIYA_WH

"""Tests for controller/ageing_tracker.py: per-EVSE ageing accumulated from fleet columns."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from controller.ageing_tracker import AgeingTracker, Battery, batteries_from, battery_for
from controller.app import Daemon
from controller.control.ageing import (
    SECONDS_PER_DAY,
    AgeingError,
    accumulate,
    calendar_loss_pct,
    params_for,
)
from controller.control.fleet import FleetState
from controller.control.vehicles import NEUTRAL, UnknownVehicleError
from controller.settings import AgeingConfig, ConfigError, parse_settings

from .telemetry_double import Captured

MINIMAL = Path(__file__).resolve().parents[2] / "config" / "v2ghub.minimal.toml"
NMC_60 = Battery("NMC", 60_000.0)


def fleet_of(n: int, soc: float = 0.5) -> FleetState:
    fleet = FleetState(capacity=4)
    for i in range(n):
        fleet.row(f"CP{i}", 1, max_power_w=11_000.0, can_discharge=True)
    fleet.online[:] = True
    fleet.tx_active[:] = True
    fleet.soc_frac[:] = soc
    fleet.measured_w[:] = 0.0
    return fleet


def tracker(price: float = 100.0, **kw: int) -> AgeingTracker:
    return AgeingTracker({}, default=NMC_60, price_per_kwh=price, **kw)


def test_constant_soc_for_40_days_reproduces_eq_6() -> None:
    fleet, tr = fleet_of(1), tracker()
    for day in range(41):
        tr.update(fleet, day * SECONDS_PER_DAY)
    assert tr.loss_pct()[0] == pytest.approx(calendar_loss_pct("NMC", 0.5, 40.0))
    assert tr.loss_pct()[0] == pytest.approx(0.12809, abs=1e-5)


def test_tracker_matches_offline_accumulation_of_the_same_samples() -> None:
    t = np.arange(200, dtype=np.float64)
    soc = np.column_stack([0.6 + 0.02 * np.sin(t / 7.0), 0.3 + 0.001 * t])
    power = np.column_stack([5_000 * np.cos(t / 7.0), np.full(t.size, 3_000.0)])
    fleet, tr = fleet_of(2), tracker()
    for k in range(t.size):
        fleet.soc_frac[:] = soc[k]
        fleet.measured_w[:] = power[k]
        tr.update(fleet, float(t[k]))
    ref = accumulate(["NMC", "NMC"], t, soc, power, 60_000.0)
    np.testing.assert_allclose(tr.loss_frac(), ref.loss_frac, rtol=1e-12)
    assert np.all(tr.loss_frac() > 0)
    np.testing.assert_allclose(tr.cost(), ref.cost(100.0), rtol=1e-12)


def test_rows_out_of_service_do_not_age_and_never_seen_rows_are_nan() -> None:
    fleet, tr = fleet_of(3), tracker()
    fleet.tx_active[1] = False  # plugged out
    fleet.soc_frac[2] = np.nan  # no MeterValues SoC yet
    for k in range(11):
        tr.update(fleet, k * 3600.0)
    pct = tr.loss_pct()
    assert pct[0] > 0
    assert np.isnan(pct[1])
    assert np.isnan(pct[2])
    s = tr.summary()
    assert s.evses == 1
    assert s.loss_pct_mean == pytest.approx(pct[0])
    assert s.loss_pct_max == pytest.approx(pct[0])


def test_loss_is_kept_while_the_station_is_away_and_grows_again_on_return() -> None:
    fleet, tr = fleet_of(1), tracker()
    for k in range(5):
        tr.update(fleet, k * 3600.0)
    before = tr.loss_pct()[0]
    fleet.online[0] = False
    for k in range(5, 10):
        tr.update(fleet, k * 3600.0)
    assert tr.loss_pct()[0] == before
    fleet.online[0] = True
    for k in range(10, 15):
        tr.update(fleet, k * 3600.0)
    assert tr.loss_pct()[0] == pytest.approx(2 * before)


def test_a_new_vehicle_at_another_soc_is_not_counted_as_a_swing() -> None:
    fleet, tr = fleet_of(1, soc=0.9), tracker()
    tr.update(fleet, 0.0)
    fleet.tx_active[0] = False
    tr.update(fleet, 1.0)
    fleet.tx_active[0] = True
    fleet.soc_frac[0] = 0.2  # another car, same EVSE
    tr.update(fleet, 2.0)
    tr.update(fleet, 3.0)
    calendar_only = 2 * (calendar_loss_pct("NMC", 0.9, 1.0) + calendar_loss_pct("NMC", 0.2, 1.0))
    assert tr.loss_pct()[0] < calendar_only / SECONDS_PER_DAY  # no 70 % half-cycle (~2.5e-3 %)


def test_after_a_transaction_ends_the_stale_soc_is_not_taken_for_the_next_vehicle() -> None:
    fleet, tr = fleet_of(1, soc=0.9), tracker()
    tr.update(fleet, 0.0)
    tr.update(fleet, 1.0)
    fleet.tx_active[0] = False
    tr.update(fleet, 2.0)
    before = tr.loss_frac()[0]
    fleet.tx_active[0] = True  # the next car: its first MeterValues are not in yet
    tr.update(fleet, 3.0)
    tr.update(fleet, 4.0)
    assert tr.loss_frac()[0] == before  # not in service on the departed car's 0.9
    fleet.soc_frac[0] = 0.3  # its first report
    tr.update(fleet, 5.0)
    tr.update(fleet, 6.0)
    one_s_at_30 = calendar_loss_pct("NMC", 0.3, 1.0) / 100 / SECONDS_PER_DAY
    assert tr.loss_frac()[0] == pytest.approx(before + one_s_at_30)  # no 0.6 swing


def test_a_cleared_soc_also_ends_the_wait() -> None:
    fleet, tr = fleet_of(1, soc=0.9), tracker()
    tr.update(fleet, 0.0)
    fleet.tx_active[0] = False
    tr.update(fleet, 1.0)
    fleet.soc_frac[0] = np.nan  # the EV left and its SoC was cleared
    tr.update(fleet, 2.0)
    fleet.tx_active[0] = True
    fleet.soc_frac[0] = 0.9  # the next car happens to report the same SoC
    tr.update(fleet, 3.0)
    tr.update(fleet, 4.0)
    assert tr.loss_frac()[0] == pytest.approx(
        calendar_loss_pct("NMC", 0.9, 1.0) / 100 / SECONDS_PER_DAY)


def test_merging_segments_keeps_the_calendar_loss_exact() -> None:
    fleet = fleet_of(6, soc=0.7)
    merged, apart = tracker(max_segments=1), tracker(max_segments=100)
    for k in range(60):
        fleet.tx_active[:] = np.arange(6) <= k // 10  # one more EVSE every 10 updates
        for tr in (merged, apart):
            tr.update(fleet, k * 60.0)
    np.testing.assert_allclose(merged.loss_frac(), apart.loss_frac(), rtol=1e-12)
    assert len(apart._segments) == 6
    assert len(merged._segments) == 1


def test_merging_can_only_overstate_the_cycle_loss() -> None:
    t = np.arange(100, dtype=np.float64)
    fleet = fleet_of(2, soc=0.5)
    merged, apart = tracker(max_segments=1), tracker(max_segments=100)
    for k in t.tolist():
        fleet.tx_active[1] = k >= 50  # the late admission forces a merge at k = 50
        fleet.soc_frac[:] = 0.5 - 0.004 * k  # one long discharge
        for tr in (merged, apart):
            tr.update(fleet, k)
    # splitting a swing d1 + d2 into two half-cycles costs 0.5·A·((d1+d2)² - d1² - d2²) = -A·d1·d2
    d1, d2 = 0.004 * 50, 0.004 * 49
    extra = -params_for("NMC").a * d1 * d2
    assert extra > 0
    assert merged.loss_frac()[0] - apart.loss_frac()[0] == pytest.approx(extra, rel=1e-9)


def test_rows_created_after_the_first_update_are_tracked() -> None:
    fleet, tr = fleet_of(1), tracker()
    tr.update(fleet, 0.0)
    for i in range(1, 6):  # beyond the FleetState's initial capacity of 4
        r = fleet.row(f"NEW{i}", 1, max_power_w=7_400.0, can_discharge=False)
        fleet.online[r] = fleet.tx_active[r] = True
        fleet.soc_frac[r] = 0.5
    tr.update(fleet, 3600.0)
    tr.update(fleet, 7200.0)
    pct = tr.loss_pct()
    assert tr.n == 6
    assert pct[1:] == pytest.approx([pct[0] / 2] * 5)


def test_missing_power_readings_do_not_break_the_update() -> None:
    fleet, tr = fleet_of(2), tracker()
    fleet.measured_w[:] = np.nan
    tr.update(fleet, 0.0)
    tr.update(fleet, 10.0)
    assert np.all(np.isfinite(tr.loss_pct()))


def test_cost_values_lost_kwh_at_the_battery_price() -> None:
    fleet, tr = fleet_of(2), tracker(price=120.0)
    tr.update(fleet, 0.0)
    tr.update(fleet, 10 * SECONDS_PER_DAY)
    frac = tr.loss_frac()
    assert tr.cost() == pytest.approx(frac * 60.0 * 120.0)
    assert tr.summary().cost == pytest.approx(float((frac * 60.0 * 120.0).sum()))


def test_summary_before_any_service_is_empty() -> None:
    s = tracker().summary()
    assert (s.loss_pct_mean, s.loss_pct_max, s.cost, s.evses) == (None, None, 0.0, 0)


def test_station_batteries_come_from_the_vehicle_library() -> None:
    batts = batteries_from([("A", "Tesla M3"), ("B", None), ("C", "Nissan Ariya")], "LFP")
    assert batts["A"] == Battery("NCA", 78_100.0)
    assert batts["B"] == Battery("LFP", NEUTRAL.battery_kwh * 1000.0)
    assert batts["C"] == Battery("NMC", 87_000.0)


def test_each_station_ages_with_its_own_chemistry() -> None:
    fleet = fleet_of(2)
    tr = AgeingTracker(batteries_from([("CP0", None)], "LTO"), default=NMC_60,
                       price_per_kwh=100.0)
    tr.update(fleet, 0.0)
    tr.update(fleet, SECONDS_PER_DAY)
    assert tr.loss_pct() == pytest.approx([calendar_loss_pct("LTO", 0.5, 1.0),
                                           calendar_loss_pct("NMC", 0.5, 1.0)])


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(AgeingError, match="chemistry"):
        battery_for(None, "unobtainium")
    with pytest.raises(UnknownVehicleError):
        battery_for("Trabant 601", "NMC")
    with pytest.raises(AgeingError, match="price"):
        tracker(price=-1.0)
    with pytest.raises(AgeingError, match="max_segments"):
        tracker(max_segments=0)


# -- configuration and the daemon's telemetry -----------------------------------------------------
def daemon_doc(**ageing: object) -> dict[str, Any]:
    doc = tomllib.loads(MINIMAL.read_text())
    doc["ocpp"]["station"].append({"id": "CP002", "password": "0123456789abcdef"})  # no vehicle
    doc["mqtt"]["fleet_period_s"] = 0.1
    if ageing:
        doc["ageing"] = ageing
    return doc


def test_ageing_table_defaults_and_checks() -> None:
    assert parse_settings(daemon_doc()).ageing == AgeingConfig(100.0, "NMC")
    s = parse_settings(daemon_doc(battery_price_per_kwh=130, chemistry="LFP"))
    assert s.ageing == AgeingConfig(130.0, "LFP")
    for bad, match in [({"battery_price_per_kwh": -1}, "ageing.battery_price_per_kwh"),
                       ({"battery_price_per_kwh": "cheap"}, "ageing.battery_price_per_kwh"),
                       ({"chemistry": "unobtainium"}, "ageing.chemistry"),
                       ({"price": 100}, "ageing.price")]:
        with pytest.raises(ConfigError, match=match):
            parse_settings(daemon_doc(**bad))


def make_daemon(clock: list[float], telemetry: Captured | None = None) -> Daemon:
    s = parse_settings(daemon_doc(battery_price_per_kwh=200.0, chemistry="LTO"))
    d = Daemon(s, telemetry=telemetry or Captured(), clock=lambda: clock[0], wall=lambda: 1e9)
    for sid in ("CP001", "CP002"):
        r = d.fleet.row(sid, 1, max_power_w=10_000.0, can_discharge=True)
        d.fleet.online[r] = d.fleet.tx_active[r] = True
        d.fleet.soc_frac[r] = 0.5
    return d


def test_daemon_publishes_ageing_per_evse_and_for_the_fleet() -> None:
    clock = [0.0]
    d = make_daemon(clock)
    d._update_ageing()
    clock[0] = SECONDS_PER_DAY
    pct = d._update_ageing()
    ariya, other = calendar_loss_pct("NMC", 0.5, 1.0), calendar_loss_pct("LTO", 0.5, 1.0)
    assert pct == pytest.approx([ariya, other])  # CP001's Ariya is NMC, CP002 takes [ageing]
    fleet = d.fleet_snapshot()
    assert fleet["ageing_loss_pct_mean"] == pytest.approx((ariya + other) / 2)
    assert fleet["ageing_loss_pct_max"] == pytest.approx(max(ariya, other))
    cost = (ariya * 87.0 + other * NEUTRAL.battery_kwh) / 100 * 200.0
    assert fleet["ageing_cost"] == pytest.approx(cost)


async def test_telemetry_loop_steps_ageing_and_fills_the_evse_payload() -> None:
    clock = [0.0]
    tel = Captured()
    d = make_daemon(clock, tel)
    task = asyncio.create_task(d._telemetry_loop())
    try:
        for _ in range(400):  # a liveness bound, not a speed assertion
            if len(tel.messages) >= 3:
                break
            clock[0] += 3600.0  # an hour of fake time between polls
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    payload = tel.latest["evse/CP001/1"]
    assert isinstance(payload["ageing_loss_pct"], float)
    assert payload["ageing_loss_pct"] > 0
    fleet = [p for topic, p in tel.messages if topic == "fleet"]
    assert fleet[-1]["ageing_cost"] > fleet[0]["ageing_cost"]  # type: ignore[operator]

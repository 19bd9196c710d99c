"""Daemon wiring of energy management: per-station windows, `headroom` on <prefix>/fleet and
the `energy_reserve_low` alarm (controller/app.py, controller/snapshots.py)."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from controller.app import Daemon
from controller.control.vehicles import lookup
from controller.ocpp.events import MeterReading, TransactionChanged, VehicleIdentified
from controller.settings import ConfigError, parse_settings

from .telemetry_double import Captured

ROOT = Path(__file__).resolve().parents[2]
KW = 1000.0


def make_daemon(soc: float, tel: Captured, **station: object) -> Daemon:
    doc = tomllib.loads((ROOT / "config" / "v2ghub.minimal.toml").read_text())
    doc["ocpp"]["station"][0].update(vehicle="Nissan Ariya", **station)
    d = Daemon(parse_settings(doc), telemetry=tel, clock=lambda: 0.0, wall=lambda: 1e9)
    for i in range(20):  # 20 Ariyas (87 kWh) behind one station id: enough for 100 kW of DC-L
        r = d.sync.row("CP001", i + 1)  # as a station's first event creates it
        d.fleet.max_charge_w[r] = d.fleet.max_discharge_w[r] = 10 * KW
        d.fleet.online[r] = d.fleet.tx_active[r] = True
        d.fleet.soc_frac[r] = soc
    return d


def test_fleet_payload_publishes_headroom_per_contract() -> None:
    d = make_daemon(0.5, Captured())
    room = d.fleet_snapshot()["headroom"]
    assert isinstance(room, dict)
    dcl = room["DC-L"]
    assert dcl["holdable"] is True
    assert dcl["holdable_w"] == 100 * KW
    assert dcl["holdable_frac"] == 1.0
    assert dcl["sustain_s"] == 900.0
    assert dcl["hold_s"] == pytest.approx(20 * 87_000 * 0.3 / (100 * KW) * 3600, rel=1e-6)


def test_a_fleet_near_its_floor_raises_energy_reserve_low_before_the_contract_is_lost() -> None:
    # 20 x 87 kWh x 1.3 % above the floor = 22.6 kWh: 100 kW for 13.6 min < 15 min
    tel = Captured()
    d = make_daemon(0.213, tel)
    room = d.fleet_snapshot()["headroom"]["DC-L"]  # type: ignore[index]
    assert room["holdable"] is False
    d._check_energy_reserve()
    alarms = tel.alarms()
    assert [a["kind"] for a in alarms] == ["energy_reserve_low"]
    assert alarms[0]["service"] == "DC-L"


def test_no_alarm_while_the_reserve_lasts_more_than_the_margin() -> None:
    tel = Captured()
    make_daemon(0.5, tel)._check_energy_reserve()
    assert tel.alarms() == []


def test_station_soc_window_is_in_the_fleet_rows_from_their_creation() -> None:
    d = make_daemon(0.5, Captured(), soc_min=0.3, soc_max=0.7)
    assert np.all(d.fleet.soc_min_frac == 0.3)
    assert np.all(d.fleet.soc_max_frac == 0.7)
    # the narrower window leaves 20 x 87 kWh x 20 % = 348 kWh: 3.48 h at 100 kW
    room = d.fleet_snapshot()["headroom"]["DC-L"]  # type: ignore[index]
    assert room["hold_s"] == pytest.approx(20 * 87_000 * 0.2 / (100 * KW) * 3600, rel=1e-6)


def test_naive_dispatch_publishes_no_readiness() -> None:
    assert make_daemon(0.5, Captured()).fleet_snapshot()["readiness"] is None


def compensated_daemon(tel: Captured, model: str, count: int, contract_kw: float,
                       clock: list[float] | None = None) -> Daemon:
    doc = tomllib.loads((ROOT / "config" / "v2ghub.minimal.toml").read_text())
    doc["control"] = {**doc.get("control", {}), "dispatch": "compensated"}
    doc["service"] = [{"name": "DC", "contract_kw": contract_kw}]
    doc["ocpp"]["station"][0].update(vehicle=model)
    now = clock if clock is not None else [0.0]
    d = Daemon(parse_settings(doc), telemetry=tel, clock=lambda: now[0], wall=lambda: 1e9)
    for i in range(count):
        r = d.fleet.row("CP001", i + 1, max_power_w=11 * KW, can_discharge=True)
        d.fleet.set_prior(r, lookup(model))
        d.fleet.online[r] = d.fleet.tx_active[r] = True
        d.fleet.soc_frac[r] = 0.5
    d.tick()  # the dispatch sizes its standing offset on its first tick
    return d


def test_compensated_dispatch_publishes_its_readiness_and_alarms_when_it_cannot_suffice() -> None:
    # 20 Ariyas (6.59 kW/s) hold 40 kW of DC with the smallest offset; 20 ID3s cannot move
    # inside DC's 1 s at all (t_c 0.78 s x 1.2 + 0.1 s delivery): readiness_insufficient
    ok_tel, bad_tel = Captured(), Captured()
    ok = compensated_daemon(ok_tel, "Nissan Ariya", 20, 40.0)
    assert ok.fleet_snapshot()["readiness"] == {"offset_w": 2000.0, "sufficient": True}
    ok._check_readiness()
    assert ok_tel.alarms() == []
    clock = [0.0]
    bad = compensated_daemon(bad_tel, "VW ID3", 20, 40.0, clock)
    assert bad.fleet_snapshot()["readiness"] == {"offset_w": 5000.0, "sufficient": False}
    bad._check_readiness()
    clock[0] = 59.0
    bad._check_readiness()
    assert bad_tel.alarms() == []  # not before it has lasted a minute (stations coming up)
    clock[0] = 60.0
    bad._check_readiness()
    assert [a["kind"] for a in bad_tel.alarms()] == ["readiness_insufficient"]
    assert "eligibility" in str(bad_tel.alarms()[0]["message"])


def test_a_departing_vehicle_is_charged_toward_its_target_on_every_tick() -> None:
    # one row must leave in 2 h 15 min at 60 %, from 50 % of 87 kWh: the baseline is the
    # constant power that gets there 15 min early ([energy] departure_margin_s), and the
    # setpoint offered (no frequency: fallback, no response) is that baseline
    d = make_daemon(0.5, Captured())
    d.fleet.departure_at_s[0], d.fleet.target_soc_frac[0] = 8100.0, 0.6
    d.tick()
    need_w = 0.1 * 87_000 / d.departure.efficiency / 2.0
    assert d.fleet.baseline_w[0] == pytest.approx(need_w)
    assert (d.fleet.baseline_w[1:] == 0.0).all()
    assert d.fleet.soc_floor_frac[0] > 0.2
    assert d.fleet.setpoint_w[0] == pytest.approx(need_w, abs=1.0)
    assert d.departure.margin_s == 900.0


def test_a_daily_departure_becomes_the_next_one_on_the_site_clock_and_rolls_over() -> None:
    # site in London; at 22:00 BST on 2026-06-01 the van's 06:30 departure is 8.5 h away. An
    # hour after it, still plugged in (a day off), it is the next day's.
    doc = tomllib.loads((ROOT / "config" / "v2ghub.minimal.toml").read_text())
    doc["site"]["timezone"] = "Europe/London"
    doc["vehicle"] = [{"id_token": "VAN7", "model": "VW ID3", "departure_soc": 0.9,
                       "departure": "06:30"}]
    mono, wall = [100.0], [datetime(2026, 6, 1, 21, 0, tzinfo=UTC).timestamp()]
    d = Daemon(parse_settings(doc), telemetry=Captured(), clock=lambda: mono[0],
               wall=lambda: wall[0])
    d.sync.apply("CP001", TransactionChanged(1, "tx1", ev_connected=True), mono[0])
    d.sync.apply("CP001", VehicleIdentified(1, "tx1", "VAN7", "ISO14443"), mono[0])
    d.sync.apply("CP001", MeterReading(1, power_w=0.0, soc_frac=0.5), mono[0])
    d.tick()
    row = d.fleet.index[("CP001", 1)]
    assert d.fleet.departure_at_s[row] == pytest.approx(100.0 + 8.5 * 3600)
    assert d.fleet.baseline_w[row] > 0.0  # charging toward 90 % by 06:15
    step_s = 8.5 * 3600 + 3601.0
    mono[0] += step_s
    wall[0] += step_s
    d.tick()
    assert d.fleet.departure_at_s[row] == pytest.approx(mono[0] + 23 * 3600 - 1.0)


def test_an_unknown_site_time_zone_is_refused() -> None:
    doc = tomllib.loads((ROOT / "config" / "v2ghub.minimal.toml").read_text())
    doc["site"]["timezone"] = "Mars/Olympus_Mons"
    with pytest.raises(ConfigError, match=r"site\.timezone: unknown time zone"):
        parse_settings(doc)

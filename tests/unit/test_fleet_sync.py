"""FleetSync: session events -> fleet arrays, table-driven with a fake clock."""

from __future__ import annotations

import math

import pytest

from controller.control.fleet import FleetState
from controller.control.identify import Identifier
from controller.control.vehicles import lookup
from controller.fleet_sync import RETRY_INITIAL_S, FleetSync
from controller.ocpp import events as ev
from controller.settings import StationConfig, VehicleConfig

REFRESH_S = 10.0


@pytest.fixture
def sync() -> FleetSync:
    stations = {"CP1": StationConfig("CP1", discharge="negative_limit", max_power_kw=11),
                "CP2": StationConfig("CP2", discharge="none", max_power_kw=7)}
    return FleetSync(FleetState(), stations, refresh_s=REFRESH_S)


def start_tx(sync: FleetSync, sid: str = "CP1", evse: int = 1) -> int:
    sync.apply(sid, ev.StationBooted("V", "M"), 0.0)
    sync.apply(sid, ev.TransactionChanged(evse, "tx1", ev_connected=True), 0.0)
    return sync.fleet.index[(sid, evse)]


def test_transaction_makes_an_evse_eligible_with_its_station_rating(sync):
    i = start_tx(sync)
    f = sync.fleet
    assert f.online[i]
    assert f.tx_active[i]
    assert f.max_charge_w[i] == 11_000.0
    assert f.max_discharge_w[i] == 11_000.0
    j = start_tx(sync, "CP2")
    assert f.max_discharge_w[j] == 0.0  # discharge = "none": never exports


def test_reconnect_of_an_accepted_station_puts_it_back_in_service_without_a_boot(sync):
    i = start_tx(sync)
    alarm = sync.apply("CP1", ev.StationLost("closed with code 1006"), 1.0)
    assert alarm is not None
    assert alarm.kind == "station_lost"
    assert not sync.fleet.online[i]
    sync.apply("CP1", ev.StationConnected(booted=True), 2.0)
    assert sync.fleet.online[i]


def test_connection_of_a_station_not_yet_accepted_does_not_put_it_in_service(sync):
    i = start_tx(sync)
    sync.apply("CP1", ev.StationLost("closed"), 1.0)
    sync.apply("CP1", ev.StationConnected(booted=False), 2.0)
    assert not sync.fleet.online[i]


def test_a_station_lost_during_shutdown_is_not_an_alarm(sync):
    start_tx(sync)
    sync.closing = True
    assert sync.apply("CP1", ev.StationLost("closed"), 1.0) is None


@pytest.mark.parametrize("failure", [
    ev.SetpointResult(1, -5000.0, accepted=False, status="Rejected", rtt_s=0.1),
    ev.CallFailed("SetChargingProfile", 1, "timeout"),
])
def test_a_failed_setpoint_is_retried_with_doubling_back_off_not_every_tick(sync, failure):
    i = start_tx(sync)
    f = sync.fleet
    expected_retry_at = []
    for n, now in enumerate([100.0, 101.0, 103.0, 107.0, 115.0, 125.0]):
        f.setpoint_w[i] = -5000.0
        f.sent_at_s[i] = now
        sync.apply("CP1", failure, now)
        delay = min(REFRESH_S, RETRY_INITIAL_S * 2**n)
        # the controller re-sends once now - sent_at >= refresh_s
        expected_retry_at.append(now + delay)
        assert f.sent_at_s[i] + REFRESH_S == pytest.approx(now + delay)
        assert f.setpoint_w[i] == -5000.0  # target kept: no resend from the min-step rule
    assert expected_retry_at[-1] - 125.0 == REFRESH_S  # capped at the refresh period


def test_an_accepted_setpoint_resets_the_back_off(sync):
    i = start_tx(sync)
    f = sync.fleet
    failure = ev.CallFailed("SetChargingProfile", 1, "timeout")
    sync.apply("CP1", failure, 0.0)
    sync.apply("CP1", failure, 1.0)
    sync.apply("CP1", ev.SetpointResult(1, 0.0, accepted=True, status="Accepted", rtt_s=0.1),
               2.0)
    sync.apply("CP1", failure, 3.0)
    assert f.sent_at_s[i] + REFRESH_S == pytest.approx(3.0 + RETRY_INITIAL_S)


def test_ev_limits_are_capped_by_the_rating_and_reset_when_the_ev_leaves(sync):
    i = start_tx(sync)
    f = sync.fleet
    sync.apply("CP1", ev.EvLimitsReported(1, max_charge_w=7_400.0, max_discharge_w=20_000.0),
               1.0)
    assert f.max_charge_w[i] == 7_400.0
    assert f.max_discharge_w[i] == 11_000.0
    sync.apply("CP1", ev.TransactionChanged(1, None, ev_connected=False), 2.0)
    assert not f.tx_active[i]
    assert f.max_charge_w[i] == 11_000.0


def test_meter_readings_update_power_and_soc_and_ignore_the_main_meter(sync):
    i = start_tx(sync)
    sync.apply("CP1", ev.MeterReading(1, power_w=-3000.0, soc_frac=0.55), 1.0)
    sync.apply("CP1", ev.MeterReading(0, power_w=99.0, soc_frac=None), 1.0)
    assert sync.fleet.measured_w[i] == -3000.0
    assert sync.fleet.soc_frac[i] == 0.55
    assert sync.fleet.n == 1


def test_a_new_transaction_clears_the_last_offer_so_its_profile_is_sent(sync):
    i = start_tx(sync)
    sync.fleet.setpoint_w[i] = -1000.0
    sync.apply("CP1", ev.TransactionChanged(1, "tx2", ev_connected=True), 5.0)
    assert math.isnan(sync.fleet.setpoint_w[i])


def test_meter_values_feed_the_identifier_that_replaces_a_wrong_start_delay():
    fleet = FleetState()
    ident = Identifier(fleet)
    sync = FleetSync(fleet, {"CP1": StationConfig("CP1", discharge="negative_limit",
                                                  max_power_kw=11)},
                     refresh_s=REFRESH_S, identifier=ident)
    i = start_tx(sync)
    prior_t_a = float(fleet.t_a_s[i])
    for c in range(3):  # MeterValues every second; the EV starts 6.5 s after each offer
        t0 = 100.0 * c
        sync.apply("CP1", ev.MeterReading(1, power_w=0.0, soc_frac=0.5), t0 - 0.5)
        ident.commanded([i], [6000.0], t0)
        for k in range(1, 30):
            p_w = min(6000.0, max(0.0, (k - 6.5) * 2000.0))
            sync.apply("CP1", ev.MeterReading(1, power_w=p_w, soc_frac=0.5), t0 + k)
        ident.commanded([i], [0.0], t0 + 40.0)
        sync.apply("CP1", ev.MeterReading(1, power_w=0.0, soc_frac=0.5), t0 + 60.0)
    sync.apply("CP1", ev.MeterReading(0, power_w=1e6, soc_frac=None), 400.0)  # station meter
    assert ident.identified(i) != ()
    assert abs(prior_t_a - 6.5) > 1.0  # the prior was wrong ...
    assert abs(float(fleet.t_a_s[i]) - 6.5) <= 0.1  # ... and is replaced by the measurement
    assert abs(float(fleet.ramp_up_w_s[i]) - 2000.0) <= 100.0


# -- the vehicle belongs to the transaction (issue 4 items 1, 3 and 4) ---------------------------
LEAF = VehicleConfig("04E91A2B3C4D80", "Nissan LEAF e+", capacity_kwh=60.0, soc_min=0.3,
                     soc_max=0.9, departure_soc=0.85)


def vehicle_sync(identifier: Identifier | None = None) -> FleetSync:
    stations = {"CP1": StationConfig("CP1", discharge="negative_limit", vehicle="Nissan Ariya",
                                     max_power_kw=11, soc_min=0.25)}
    return FleetSync(FleetState(), stations, refresh_s=REFRESH_S, identifier=identifier,
                     vehicles={LEAF.key: LEAF})


def test_a_known_id_token_sets_the_vehicle_and_a_new_transaction_puts_the_station_back():
    sync = vehicle_sync()
    i = start_tx(sync)
    f = sync.fleet
    ariya, leaf = lookup("Nissan Ariya"), lookup("Nissan LEAF e+")
    assert (f.t_a_s[i], f.capacity_wh[i]) == (ariya.t_a_s, 1000 * ariya.battery_kwh)
    # idTokens are case insensitive (OCPP 2.0.1 IdTokenType)
    sync.apply("CP1", ev.VehicleIdentified(1, "tx1", "04e91a2b3c4d80", "MacAddress"), 1.0)
    assert (f.t_a_s[i], f.ramp_up_w_s[i]) == (leaf.t_a_s, leaf.ramp_up_w_s)
    assert (f.capacity_wh[i], f.soc_min_frac[i], f.soc_max_frac[i]) == (60_000.0, 0.3, 0.9)
    assert f.target_soc_frac[i] == 0.85
    f.soc_frac[i] = 0.6
    sync.apply("CP1", ev.TransactionChanged(1, None, ev_connected=False), 2.0)
    assert (f.t_a_s[i], f.capacity_wh[i]) == (ariya.t_a_s, 1000 * ariya.battery_kwh)
    assert f.soc_min_frac[i] == 0.25
    assert math.isnan(f.soc_max_frac[i])
    assert math.isnan(f.target_soc_frac[i])
    assert math.isnan(f.soc_frac[i])


def test_an_unknown_id_token_keeps_the_station_prior():
    sync = vehicle_sync()
    i = start_tx(sync)
    sync.apply("CP1", ev.VehicleIdentified(1, "tx1", "FFFF", "ISO14443"), 1.0)
    assert sync.fleet.t_a_s[i] == lookup("Nissan Ariya").t_a_s
    assert math.isnan(sync.fleet.target_soc_frac[i])


def test_ev_charging_needs_set_the_departure_and_the_soc_it_asks_for():
    sync = vehicle_sync()
    i = start_tx(sync)
    f = sync.fleet
    sync.apply("CP1", ev.EvNeedsReported(1, 7200.0, 20_000.0, 0.4, 80_000.0), 100.0)
    assert f.departure_at_s[i] == 7300.0  # monotonic: receipt + 2 h
    assert (f.soc_frac[i], f.capacity_wh[i]) == (0.4, 80_000.0)
    assert f.target_soc_frac[i] == pytest.approx(0.4 + 20 / 80)
    # a configured departure SoC is a floor under what the EV asks for
    sync.apply("CP1", ev.VehicleIdentified(1, "tx1", LEAF.id_token, "MacAddress"), 101.0)
    sync.apply("CP1", ev.EvNeedsReported(1, 3600.0, 1_000.0, 0.5, None), 102.0)
    assert f.target_soc_frac[i] == 0.85


def test_a_new_vehicle_forgets_what_identification_learnt_about_the_last_one():
    sync = vehicle_sync()
    ident = Identifier(sync.fleet)
    sync.identifier = ident
    i = start_tx(sync)
    f = sync.fleet
    f.t_c_s[i] = 0.4  # as if identified
    f.dyn_identified_bits[i] = 2.0
    f.dyn_changes[i] = 7.0
    sync.apply("CP1", ev.TransactionChanged(1, "tx2", ev_connected=True), 5.0)
    assert f.t_c_s[i] == lookup("Nissan Ariya").t_c_s
    assert (f.dyn_identified_bits[i], f.dyn_changes[i]) == (0.0, 0.0)
    assert ident.n_changes(i) == 0


def test_an_ac_vehicle_s_energy_request_waits_for_a_soc_instead_of_asking_for_100_percent():
    sync = vehicle_sync()
    i = start_tx(sync)
    f = sync.fleet
    f.capacity_wh[i] = 80_000.0
    sync.apply("CP1", ev.EvNeedsReported(1, 8 * 3600.0, 5_000.0, None, None), 1.0)
    assert math.isnan(f.target_soc_frac[i])  # AC needs carry no SoC: no guess
    sync.apply("CP1", ev.MeterReading(1, power_w=0.0, soc_frac=0.5), 2.0)
    assert f.target_soc_frac[i] == pytest.approx(0.5 + 5 / 80)


def test_charging_needs_before_the_transaction_starts_belong_to_the_next_vehicle():
    # TxStartPoint EnergyTransfer: ISO 15118 needs arrive before TransactionEvent Started
    sync = vehicle_sync()
    sync.apply("CP1", ev.StationBooted("V", "M"), 0.0)
    sync.apply("CP1", ev.EvNeedsReported(1, 3600.0, 10_000.0, 0.4, 50_000.0), 1.0)
    sync.apply("CP1", ev.TransactionChanged(1, "tx1", ev_connected=True), 2.0)
    f, i = sync.fleet, sync.fleet.index[("CP1", 1)]
    assert (f.departure_at_s[i], f.soc_frac[i], f.capacity_wh[i]) == (3601.0, 0.4, 50_000.0)
    assert f.target_soc_frac[i] == pytest.approx(0.6)
    # identification keeps the battery the EV reported over the model's nominal one
    sync.apply("CP1", ev.VehicleIdentified(1, "tx1", LEAF.id_token, "MacAddress"), 3.0)
    assert f.capacity_wh[i] == 60_000.0  # the [[vehicle]] capacity_kwh is explicit: it wins


def test_a_transaction_replaced_directly_drops_the_last_vehicle_s_limits_and_power():
    sync = vehicle_sync()
    i = start_tx(sync)
    f = sync.fleet
    sync.apply("CP1", ev.EvLimitsReported(1, max_charge_w=3_700.0, max_discharge_w=None), 1.0)
    sync.apply("CP1", ev.MeterReading(1, power_w=-3_000.0, soc_frac=0.7), 1.5)
    sync.apply("CP1", ev.TransactionChanged(1, "tx2", ev_connected=True), 2.0)
    assert f.max_charge_w[i] == 11_000.0
    assert math.isnan(f.measured_w[i])
    assert math.isnan(f.soc_frac[i])


def test_a_daily_departure_is_kept_for_the_daemon_unless_the_ev_reports_its_own():
    van = VehicleConfig("VAN7", "VW ID3", departure_soc=0.9, departure="06:30")
    sync = FleetSync(FleetState(), {"CP1": StationConfig("CP1", discharge="negative_limit")},
                     refresh_s=REFRESH_S, vehicles={van.key: van})
    i = start_tx(sync)
    sync.apply("CP1", ev.VehicleIdentified(1, "tx1", "van7", "ISO14443"), 1.0)
    assert sync.schedules == {i: "06:30"}
    sync.apply("CP1", ev.EvNeedsReported(1, 3600.0, None, None, None), 2.0)
    assert sync.schedules == {}  # the EV's own departure time wins
    assert sync.fleet.departure_at_s[i] == 3602.0
    sync.apply("CP1", ev.TransactionChanged(1, "tx2", ev_connected=True), 3.0)
    sync.apply("CP1", ev.VehicleIdentified(1, "tx2", "VAN7", "ISO14443"), 4.0)
    assert sync.schedules == {i: "06:30"}
    sync.apply("CP1", ev.TransactionChanged(1, None, ev_connected=False), 5.0)
    assert sync.schedules == {}  # the van left

import pytest

from controller.ocpp import handlers
from controller.ocpp.events import (
    EvLimitsReported,
    EvNeedsReported,
    EvseStatusChanged,
    MeterReading,
    ProtocolViolation,
    StationBooted,
    TransactionChanged,
    VehicleIdentified,
)
from controller.ocpp.handlers import HANDLERS, StationState
from controller.ocpp.schemas import default_validators
from sim_chargers.plant import PlantParams, VehiclePlant
from sim_chargers.station import SimStation, StationConfig

WALL_S = 1_795_752_000.0
TS = "2026-11-27T04:00:00Z"


def _tx(event_type, trigger, tx_id="tx1", evse=1, state=None, meter=None):
    info = {"transactionId": tx_id}
    if state:
        info["chargingState"] = state
    p = {"eventType": event_type, "timestamp": TS, "triggerReason": trigger, "seqNo": 0,
         "transactionInfo": info}
    if evse is not None:
        p["evse"] = {"id": evse}
    if meter is not None:
        p["meterValue"] = meter
    default_validators().validate("TransactionEvent", "request", p)
    return p


def _sv(value, measurand, unit=None, multiplier=None, phase=None):
    sv = {"value": value, "measurand": measurand}
    if unit or multiplier is not None:
        sv["unitOfMeasure"] = {k: v for k, v in (("unit", unit), ("multiplier", multiplier))
                               if v is not None}
    if phase:
        sv["phase"] = phase
    return sv


def test_boot_notification_is_accepted_with_heartbeat_interval():
    st = StationState(heartbeat_interval_s=45)
    reply, events = handlers.boot_notification(
        {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}, st, WALL_S)
    assert reply == {"currentTime": "2026-11-27T04:00:00.000Z", "interval": 45,
                     "status": "Accepted"}
    assert st.booted
    assert events == [StationBooted(vendor="V", model="M")]


def test_a_reboot_ends_the_transactions_we_knew():
    st = StationState()
    handlers.transaction_event(_tx("Started", "CablePluggedIn", state="EVConnected"), st, WALL_S)
    assert st.evse(1).transaction_id == "tx1"
    _, events = handlers.boot_notification(
        {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}, st, WALL_S)
    assert events[1:] == [TransactionChanged(evse_id=1, transaction_id=None, ev_connected=False)]
    assert st.evse(1).transaction_id is None


def test_heartbeat_answers_current_time():
    assert handlers.heartbeat({}, StationState(), WALL_S + 1.5) == (
        {"currentTime": "2026-11-27T04:00:01.500Z"}, [])


def test_status_notification_reports_connector_status():
    p = {"timestamp": TS, "connectorStatus": "Occupied", "evseId": 2, "connectorId": 1}
    assert handlers.status_notification(p, StationState(), WALL_S) == (
        {}, [EvseStatusChanged(2, "Occupied")])


def test_transaction_is_tracked_from_start_through_departure_to_end():
    st = StationState()
    _, ev = handlers.transaction_event(_tx("Started", "CablePluggedIn"), st, WALL_S)
    assert ev == [TransactionChanged(1, "tx1", True)]
    _, ev = handlers.transaction_event(_tx("Updated", "ChargingStateChanged", evse=None,
                                           state="Charging"), st, WALL_S)
    assert ev == []  # nothing changed; evse resolved from the transaction id
    _, ev = handlers.transaction_event(_tx("Updated", "EVDeparted", evse=None), st, WALL_S)
    assert ev == [TransactionChanged(1, "tx1", False)]
    _, ev = handlers.transaction_event(_tx("Ended", "StopAuthorized", evse=None), st, WALL_S)
    assert ev == [TransactionChanged(1, None, False)]
    assert st.evses[1].transaction_id is None


def test_triggered_update_for_an_unknown_transaction_establishes_it():
    # After a CSMS restart the station re-reports with Updated/Trigger (F06.FR.07), not Started.
    st = StationState()
    _, ev = handlers.transaction_event(_tx("Updated", "Trigger", tx_id="tx9", state="Charging"),
                                       st, WALL_S)
    assert ev == [TransactionChanged(1, "tx9", True)]
    assert st.tx_evse == {"tx9": 1}


def test_update_for_a_new_transaction_on_the_same_evse_replaces_the_old_one():
    st = StationState()
    handlers.transaction_event(_tx("Started", "CablePluggedIn", tx_id="old"), st, WALL_S)
    _, ev = handlers.transaction_event(_tx("Updated", "Trigger", tx_id="new", state="EVConnected"),
                                       st, WALL_S)
    assert ev == [TransactionChanged(1, "new", True)]
    assert st.tx_evse == {"new": 1}
    _, ev = handlers.transaction_event(_tx("Ended", "EVDeparted", tx_id="old"), st, WALL_S)
    assert ev == []  # a late Ended of the old transaction does not end the new one
    assert st.evses[1].transaction_id == "new"


def test_unknown_transaction_without_evse_is_reported_not_guessed():
    st = StationState()
    _, ev = handlers.transaction_event(_tx("Updated", "Trigger", tx_id="tx9", evse=None,
                                           state="Charging"), st, WALL_S)
    assert len(ev) == 1
    assert isinstance(ev[0], ProtocolViolation)
    assert st.evses == {}


def test_transaction_started_by_authorization_has_no_ev_until_detected():
    st = StationState()
    _, ev = handlers.transaction_event(_tx("Started", "Authorized"), st, WALL_S)
    assert ev == [TransactionChanged(1, "tx1", False)]
    _, ev = handlers.transaction_event(_tx("Updated", "EVDetected"), st, WALL_S)
    assert ev == [TransactionChanged(1, "tx1", True)]


def test_transaction_event_carries_meter_values():
    p = _tx("Updated", "MeterValuePeriodic", state="Charging",
            meter=[{"timestamp": TS, "sampledValue": [_sv(7.2, "Power.Active.Import", "kW")]}])
    _, ev = handlers.transaction_event(p, StationState(), WALL_S)
    assert MeterReading(1, 7200.0, None) in ev


@pytest.mark.parametrize(
    ("sampled", "power_w", "soc_frac"),
    [
        ([_sv(5000, "Power.Active.Import")], 5000.0, None),
        ([_sv(0, "Power.Active.Import"), _sv(3, "Power.Active.Export", "kW")], -3000.0, None),
        ([_sv(42, "Power.Active.Import", "W", multiplier=2)], 4200.0, None),
        ([_sv(61.5, "SoC", "Percent")], None, 0.615),
        ([_sv(100, "Power.Active.Import", phase="L1"), _sv(300, "Power.Active.Import")],
         300.0, None),
        # only per-phase values: their sum (L1 and L1-N name the same conductor)
        ([_sv(100, "Power.Active.Import", phase="L1"), _sv(200, "Power.Active.Import",
                                                           phase="L2-N"),
          _sv(0.3, "Power.Active.Import", "kW", phase="L3")], 600.0, None),
        ([_sv(1, "Power.Active.Export", "kW", phase=ph) for ph in ("L1", "L2", "L3")],
         -3000.0, None),
        ([_sv(500, "Power.Active.Import", phase="L1"), _sv(2000, "Power.Active.Export")],
         -1500.0, None),  # per-phase import, total export
        ([_sv(100, "Power.Active.Import", phase="L1"), _sv(50, "Power.Active.Import",
                                                          phase="N"),
          _sv(400, "Power.Active.Import", phase="L1-L2")], 100.0, None),  # not summed
    ],
)
def test_meter_values_give_signed_power_in_watts_and_soc_fraction(sampled, power_w, soc_frac):
    p = {"evseId": 1, "meterValue": [{"timestamp": TS, "sampledValue": sampled}]}
    default_validators().validate("MeterValues", "request", p)
    reply, ev = handlers.meter_values(p, StationState(), WALL_S)
    assert reply == {}
    assert ev == [MeterReading(1, power_w, soc_frac)]


def test_meter_values_of_the_main_meter_are_not_an_evse_reading():
    p = {"evseId": 0, "meterValue": [{"timestamp": TS,
                                      "sampledValue": [_sv(1, "Power.Active.Import")]}]}
    assert handlers.meter_values(p, StationState(), WALL_S) == ({}, [])


def test_energy_register_alone_gives_no_reading():
    p = {"evseId": 1, "meterValue": [{"timestamp": TS, "sampledValue": [{"value": 12.0}]}]}
    assert handlers.meter_values(p, StationState(), WALL_S) == ({}, [])


def test_dc_charging_needs_report_ev_max_power():
    p = {"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "DC",
         "dcChargingParameters": {"evMaxCurrent": 100, "evMaxVoltage": 400, "evMaxPower": 11000}}}
    assert handlers.notify_ev_charging_needs(p, StationState(), WALL_S) == (
        {"status": "Accepted"}, [EvLimitsReported(1, 11000.0, None),
                                 EvNeedsReported(1, None, None, None, None)])


def test_ac_charging_needs_report_current_times_voltage():
    p = {"evseId": 2, "chargingNeeds": {"requestedEnergyTransfer": "AC_single_phase",
         "acChargingParameters": {"energyAmount": 1, "evMinCurrent": 6, "evMaxCurrent": 16,
                                  "evMaxVoltage": 230}}}
    _, ev = handlers.notify_ev_charging_needs(p, StationState(), WALL_S)
    assert ev == [EvLimitsReported(2, 3680.0, None), EvNeedsReported(2, None, 1.0, None, None)]


def _ac_needs(mode, amps, volts):
    p = {"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": mode,
         "acChargingParameters": {"energyAmount": 1, "evMinCurrent": 6, "evMaxCurrent": amps,
                                  "evMaxVoltage": volts}}}
    default_validators().validate("NotifyEVChargingNeeds", "request", p)
    _, (ev, _) = handlers.notify_ev_charging_needs(p, StationState(), WALL_S)
    assert isinstance(ev, EvLimitsReported)
    return ev.max_charge_w


@pytest.mark.parametrize(("mode", "amps", "volts", "watts"), [
    ("AC_three_phase", 16, 400, 3 * 16 * 400 / 3**0.5),  # 400 V line-to-line: 11.1 kW
    ("AC_three_phase", 16, 230, 3 * 16 * 230),  # 230 V phase-to-neutral: 11.0 kW
    ("AC_two_phase", 32, 400, 2 * 32 * 400 / 3**0.5),
    ("AC_two_phase", 16, 230, 2 * 16 * 230),
    ("AC_single_phase", 32, 230, 32 * 230),
    ("AC_single_phase", 16, 400, 16 * 400),  # one phase: the voltage is taken as given
    ("DC", 16, 400, 16 * 400),  # inconsistent mode: no phase count, conservative single phase
])
def test_ac_charging_needs_count_the_phases_of_the_requested_transfer(mode, amps, volts, watts):
    assert _ac_needs(mode, amps, volts) == pytest.approx(watts)


def test_simulated_station_charging_needs_come_out_at_eleven_kilowatts():
    plant = VehiclePlant(PlantParams.uniform(
        1, t_a_s=0.5, t_c_s=0.1, t_zero_s=0.1, ramp_up_w_s=5000.0, ramp_down_w_s=5000.0,
        max_charge_w=11_000.0, max_discharge_w=11_000.0, capacity_wh=60_000.0), [0.5])
    station = SimStation(StationConfig("CP001", "ws://127.0.0.1:1"), plant, 0)
    p = station._needs()
    assert p["chargingNeeds"]["requestedEnergyTransfer"] == "AC_three_phase"
    _, (ev, _) = handlers.notify_ev_charging_needs(p, StationState(), WALL_S)
    assert isinstance(ev, EvLimitsReported)
    assert ev.max_charge_w == pytest.approx(11_000.0, rel=0.02)  # not 16 A x 400 V = 6.4 kW


SAMPLE_REQUESTS = {
    "BootNotification": {"chargingStation": {"model": "M", "vendorName": "V"},
                         "reason": "PowerUp"},
    "Heartbeat": {},
    "StatusNotification": {"timestamp": TS, "connectorStatus": "Available", "evseId": 1,
                           "connectorId": 1},
    "TransactionEvent": {"eventType": "Started", "timestamp": TS, "triggerReason": "Authorized",
                         "seqNo": 0, "transactionInfo": {"transactionId": "t"},
                         "evse": {"id": 1}},
    "MeterValues": {"evseId": 1, "meterValue": [{"timestamp": TS,
                                                 "sampledValue": [{"value": 1.0}]}]},
    "NotifyEVChargingNeeds": {"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "DC"}},
    "Authorize": {"idToken": {"idToken": "abc", "type": "ISO14443"}},
    "NotifyEvent": {"generatedAt": TS, "seqNo": 0, "eventData": [{
        "eventId": 1, "timestamp": TS, "trigger": "Alerting", "actualValue": "x",
        "eventNotificationType": "HardWiredNotification", "component": {"name": "C"},
        "variable": {"name": "V"}}]},
    "SecurityEventNotification": {"type": "StartupOfTheDevice", "timestamp": TS},
    "FirmwareStatusNotification": {"status": "Idle"},
    "LogStatusNotification": {"status": "Idle"},
    "NotifyReport": {"requestId": 1, "generatedAt": TS, "seqNo": 0},
    "NotifyChargingLimit": {"chargingLimit": {"chargingLimitSource": "EMS"}},
    "NotifyMonitoringReport": {"requestId": 1, "seqNo": 0, "generatedAt": TS},
    "ReportChargingProfiles": {"requestId": 1, "chargingLimitSource": "CSO", "evseId": 1,
                               "chargingProfile": [{"id": 1, "stackLevel": 0,
                                   "chargingProfilePurpose": "TxDefaultProfile",
                                   "chargingProfileKind": "Relative", "chargingSchedule": [{
                                       "id": 1, "chargingRateUnit": "W",
                                       "chargingSchedulePeriod": [{"startPeriod": 0,
                                                                   "limit": 1.0}]}]}]},
}


def test_every_handled_action_has_a_sample():
    assert set(SAMPLE_REQUESTS) == set(HANDLERS)


@pytest.mark.parametrize("action", sorted(SAMPLE_REQUESTS))
def test_every_handler_answers_a_schema_valid_response(action):
    v = default_validators()
    v.validate(action, "request", SAMPLE_REQUESTS[action])
    reply, _ = HANDLERS[action](SAMPLE_REQUESTS[action], StationState(), WALL_S)
    v.validate(action, "response", reply)


def test_dc_charging_needs_report_departure_energy_soc_and_capacity():
    p = {"evseId": 1, "chargingNeeds": {
        "requestedEnergyTransfer": "DC", "departureTime": "2026-11-27T06:30:00+01:00",
        "dcChargingParameters": {"evMaxCurrent": 100, "evMaxVoltage": 400, "energyAmount": 20000,
                                 "stateOfCharge": 45, "evEnergyCapacity": 62000}}}
    default_validators().validate("NotifyEVChargingNeeds", "request", p)
    _, (_, needs) = handlers.notify_ev_charging_needs(p, StationState(), WALL_S)
    # 06:30+01:00 is 05:30Z, 1.5 h after the receipt at 04:00Z
    assert needs == EvNeedsReported(1, 5400.0, 20000.0, 0.45, 62000.0)


def test_a_departure_time_without_an_offset_is_not_guessed():
    p = {"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "DC",
                                        "departureTime": "2026-11-27T06:30:00",
                                        "dcChargingParameters": {"evMaxCurrent": 100,
                                                                 "evMaxVoltage": 400}}}
    _, (_, needs) = handlers.notify_ev_charging_needs(p, StationState(), WALL_S)
    assert needs == EvNeedsReported(1, None, None, None, None)


def _with_token(p, token, kind="MacAddress"):
    p["idToken"] = {"idToken": token, "type": kind}
    default_validators().validate("TransactionEvent", "request", p)
    return p


def test_the_transaction_id_token_identifies_the_vehicle_once_per_transaction():
    st = StationState()
    _, ev = handlers.transaction_event(_with_token(_tx("Started", "CablePluggedIn"), "A1B2"), st,
                                       WALL_S)
    assert ev == [TransactionChanged(1, "tx1", True), VehicleIdentified(1, "tx1", "A1B2",
                                                                        "MacAddress")]
    _, ev = handlers.transaction_event(_with_token(_tx("Updated", "MeterValuePeriodic",
                                                       evse=None), "A1B2"), st, WALL_S)
    assert ev == []  # the same token again: nothing new
    # the next car on the same EVSE, authorised later in its transaction (Autocharge, RFID)
    handlers.transaction_event(_tx("Ended", "EVDeparted", evse=None), st, WALL_S)
    _, ev = handlers.transaction_event(_tx("Started", "CablePluggedIn", tx_id="tx2"), st, WALL_S)
    assert ev == [TransactionChanged(1, "tx2", True)]
    _, ev = handlers.transaction_event(_with_token(_tx("Updated", "Authorized", tx_id="tx2",
                                                       evse=None), "A1B2", "ISO14443"), st,
                                       WALL_S)
    assert ev == [VehicleIdentified(1, "tx2", "A1B2", "ISO14443")]  # a new transaction: again

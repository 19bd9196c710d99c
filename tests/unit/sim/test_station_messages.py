"""The simulated station's messages (pure): schema-valid requests, frames, TriggerMessage rules."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from controller.ocpp.schemas import default_validators, validators_for
from sim_chargers.station_messages import (
    boot_request,
    call_frame,
    charging_needs_request,
    error_frame,
    meter_values_request,
    result_frame,
    status_request,
    transaction_event_request,
    trigger_answer,
)

WALL_S = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize(("action", "payload"), [
    ("BootNotification", boot_request("PowerUp", model="m" * 30, vendor_name="v" * 60)),
    ("StatusNotification", status_request(WALL_S)),
    ("TransactionEvent", transaction_event_request("tx", 0, started=True, triggered=False,
                                                   power_w=0.0, wall_s=WALL_S)),
    ("TransactionEvent", transaction_event_request("tx", 3, started=False, triggered=True,
                                                   power_w=-5000.0, wall_s=WALL_S)),
    ("MeterValues", meter_values_request(-1500.04, 0.5, WALL_S, "Trigger")),
    ("NotifyEVChargingNeeds", charging_needs_request(11_000.0, 60_000.0, 0.5)),
])
@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
def test_every_request_the_station_builds_is_schema_valid(action: str, payload: dict[str, Any],
                                                          version: str) -> None:
    validators_for(version).validate(action, "request", payload)


def test_meter_values_split_signed_power_into_import_and_export_magnitudes() -> None:
    mv = meter_values_request(-1500.04, 0.5, WALL_S)
    (sample,) = mv["meterValue"]
    assert sample["timestamp"] == "2023-11-14T22:13:20.000Z"
    values = {s["measurand"]: s["value"] for s in sample["sampledValue"]}
    assert values == {"Power.Active.Import": 0.0, "Power.Active.Export": 1500.0, "SoC": 50.0}


def test_transaction_event_reports_started_then_updated_with_charging_state() -> None:
    started = transaction_event_request("tx", 0, started=True, triggered=False, power_w=4000.0,
                                        wall_s=WALL_S)
    assert (started["eventType"], started["triggerReason"]) == ("Started", "CablePluggedIn")
    assert started["transactionInfo"]["chargingState"] == "EVConnected"
    periodic = transaction_event_request("tx", 1, started=False, triggered=False,
                                         power_w=4000.0, wall_s=WALL_S)
    assert (periodic["eventType"], periodic["triggerReason"]) == ("Updated", "MeterValuePeriodic")
    assert periodic["transactionInfo"]["chargingState"] == "Charging"
    triggered = transaction_event_request("tx", 2, started=False, triggered=True, power_w=0.5,
                                          wall_s=WALL_S)
    assert triggered["triggerReason"] == "Trigger"
    assert triggered["transactionInfo"]["chargingState"] == "EVConnected"


def test_charging_needs_ask_the_three_phase_current_of_the_charge_limit() -> None:
    needs = charging_needs_request(11_000.0, 60_000.0, 0.25)["chargingNeeds"]
    assert needs["acChargingParameters"]["evMaxCurrent"] == 16  # 11 kW / (3 x 230 V)
    assert needs["acChargingParameters"]["energyAmount"] == 45_000


def test_frames_are_ocpp_j_arrays() -> None:
    assert orjson.loads(call_frame("7", "Heartbeat", {})) == [2, "7", "Heartbeat", {}]
    assert orjson.loads(result_frame("c1", {"status": "Accepted"})) == [
        3, "c1", {"status": "Accepted"}]
    assert orjson.loads(error_frame("c2", "NotImplemented", "no")) == [
        4, "c2", "NotImplemented", "no", {}]


@pytest.mark.parametrize(("request_", "booted", "tx_reported", "status", "follow_up"), [
    ({"requestedMessage": "TransactionEvent"}, True, True, "Accepted", "TransactionEvent"),
    ({"requestedMessage": "TransactionEvent"}, True, False, "Rejected", None),  # not Started yet
    ({"requestedMessage": "TransactionEvent", "evse": {"id": 2}}, True, True, "Rejected", None),
    ({"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": 1}}, True, True,
     "Accepted", "StatusNotification"),
    ({"requestedMessage": "StatusNotification", "evse": {"id": 1}}, True, True, "Rejected",
     None),  # F06.FR.12
    ({"requestedMessage": "MeterValues", "evse": {"id": 3}}, True, True, "Rejected", None),
    ({"requestedMessage": "MeterValues"}, True, True, "Accepted", "MeterValues"),
    ({"requestedMessage": "Heartbeat"}, True, True, "Accepted", "Heartbeat"),
    ({"requestedMessage": "BootNotification"}, True, True, "Rejected", None),  # F06.FR.17
    ({"requestedMessage": "BootNotification"}, False, True, "NotImplemented", None),
    ({"requestedMessage": "LogStatusNotification"}, True, True, "NotImplemented", None),
])
def test_trigger_answer_says_whether_the_requested_message_follows(
        request_: dict[str, Any], booted: bool, tx_reported: bool, status: str,
        follow_up: str | None) -> None:
    reply, requested = trigger_answer(request_, booted=booted, tx_reported=tx_reported)
    default_validators().validate("TriggerMessage", "response", reply)
    assert reply["status"] == status
    assert requested == follow_up

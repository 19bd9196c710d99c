"""The simulated station's OCPP 2.0.1 / 2.1 messages: frames, requests, TriggerMessage rules.

PURE: builds OCPP-J frames and the request payloads a one-EVSE station sends (boot, status,
transaction events, meter values, charging needs) from values passed in, and decides how a
TriggerMessage is answered. No I/O, no asyncio, no clock reads: `wall_s` is an argument. The
edge that sends them and owns the station's state is sim_chargers/station.py.

TriggerMessage (F06): the TriggerMessageResponse goes out first (F06.FR.04, the station's job),
then the requested message. TransactionEvent -> Updated with triggerReason Trigger, evse,
chargingState and a meterValue with context Trigger (F06.FR.07), only for a transaction already
reported Started; StatusNotification needs evse.id and evse.connectorId (F06.FR.12);
BootNotification is Rejected once booted (F06.FR.17); MeterValues and Heartbeat are sent as
asked; anything else is NotImplemented.

OCPP 2.1: every request here is valid under both versions' schemas (tests check it); only the
charging needs differ, a bidirectional 2.1 station reporting AC_BPT with v2xChargingParameters.
"""

from __future__ import annotations

from typing import Any

import orjson

from controller.timefmt import rfc3339_utc

EVSE_ID = 1
CONNECTOR_ID = 1
CALL, RESULT, ERROR = 2, 3, 4  # OCPP-J message type ids


# -- frames ------------------------------------------------------------------------------------
def call_frame(uid: str, action: str, payload: dict[str, Any]) -> bytes:
    return orjson.dumps([CALL, uid, action, payload])


def result_frame(uid: str, payload: dict[str, Any]) -> bytes:
    return orjson.dumps([RESULT, uid, payload])


def error_frame(uid: str, code: str, description: str) -> bytes:
    return orjson.dumps([ERROR, uid, code, description, {}])


def rejected(reason_code: str) -> dict[str, Any]:
    """A Rejected response with a statusInfo reason code."""
    return {"status": "Rejected", "statusInfo": {"reasonCode": reason_code}}


# -- requests the station sends ----------------------------------------------------------------
def boot_request(reason: str, *, model: str, vendor_name: str) -> dict[str, Any]:
    """BootNotification request; model and vendor cut to their 20 / 50 character limits."""
    return {"reason": reason, "chargingStation": {"model": model[:20],
                                                  "vendorName": vendor_name[:50]}}


def status_request(wall_s: float) -> dict[str, Any]:
    """StatusNotification request: the one connector is Occupied (an EV is plugged in)."""
    return {"timestamp": rfc3339_utc(wall_s), "connectorStatus": "Occupied",
            "evseId": EVSE_ID, "connectorId": CONNECTOR_ID}


def transaction_event_request(transaction_id: str | None, seq_no: int, *, started: bool,
                              triggered: bool, power_w: float,
                              wall_s: float) -> dict[str, Any]:
    """TransactionEvent request without meterValue: Started on plug-in, Updated afterwards.

    Args:
        transaction_id: the ongoing transaction.
        seq_no: the event's sequence number.
        started: this is the Started event (else Updated).
        triggered: an Updated event sent because a TriggerMessage asked (F06.FR.07).
        power_w: the EVSE's power now; |p| < 1 W reads as EVConnected, else Charging.
        wall_s: Unix time of the event.
    """
    reason = "CablePluggedIn" if started else "Trigger" if triggered else "MeterValuePeriodic"
    return {
        "eventType": "Started" if started else "Updated",
        "timestamp": rfc3339_utc(wall_s),
        "triggerReason": reason,
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": transaction_id, "chargingState":
                            "EVConnected" if started or abs(power_w) < 1 else "Charging"},
        "evse": {"id": EVSE_ID, "connectorId": CONNECTOR_ID},
    }


def meter_values_request(power_w: float, soc_frac: float, wall_s: float,
                         context: str = "Sample.Periodic") -> dict[str, Any]:
    """MeterValues request: import/export power (W, magnitudes) and SoC (%)."""
    def sv(value: float, measurand: str, unit: str) -> dict[str, Any]:
        return {"value": round(value, 1), "measurand": measurand,
                "context": context, "unitOfMeasure": {"unit": unit}}

    return {"evseId": EVSE_ID, "meterValue": [{
        "timestamp": rfc3339_utc(wall_s), "sampledValue": [
            sv(max(power_w, 0.0), "Power.Active.Import", "W"),
            sv(max(-power_w, 0.0), "Power.Active.Export", "W"),
            sv(soc_frac * 100.0, "SoC", "Percent")]}]}


def charging_needs_request(max_charge_w: float, capacity_wh: float, soc_frac: float, *,
                           max_discharge_w: float | None = None) -> dict[str, Any]:
    """NotifyEVChargingNeeds request: three-phase AC, current from the charge limit at 230 V.

    Args:
        max_discharge_w: OCPP 2.1 only, for a station that may discharge: the request asks
            for bidirectional AC (AC_BPT, ISO 15118-20) and adds v2xChargingParameters with
            maxChargePower and maxDischargePower (W, >= 0). None: the 2.0.1 charge-only form.
    """
    amps = max(1, round(max_charge_w / (230.0 * 3)))
    energy = capacity_wh * (1.0 - soc_frac)
    needs: dict[str, Any] = {
        "requestedEnergyTransfer": "AC_three_phase",
        "acChargingParameters": {"energyAmount": round(energy), "evMinCurrent": 6,
                                 "evMaxCurrent": amps, "evMaxVoltage": 400}}
    if max_discharge_w is not None:
        needs["requestedEnergyTransfer"] = "AC_BPT"
        needs["availableEnergyTransfer"] = ["AC_three_phase", "AC_BPT"]
        needs["v2xChargingParameters"] = {"maxChargePower": round(max_charge_w, 1),
                                          "maxDischargePower": round(max(max_discharge_w, 0.0), 1)}
    return {"evseId": EVSE_ID, "chargingNeeds": needs}


# -- TriggerMessage ----------------------------------------------------------------------------
def trigger_answer(payload: dict[str, Any], *, booted: bool,
                   tx_reported: bool) -> tuple[dict[str, Any], str | None]:
    """A TriggerMessage's response and the message to send after it (None: nothing).

    Args:
        payload: the (schema-valid) TriggerMessage request.
        booted: the last BootNotification was Accepted.
        tx_reported: a transaction is ongoing and its Started event has been sent.
    """
    requested = payload["requestedMessage"]
    evse = payload.get("evse")
    ours = evse is None or evse["id"] == EVSE_ID
    if requested == "TransactionEvent":
        # F06.FR.07: Updated, triggerReason Trigger; only for an ongoing transaction that
        # has been reported Started (otherwise the drive loop still has to send that).
        if not ours or not tx_reported:
            return rejected("TxNotFound"), None
    elif requested == "StatusNotification":
        # F06.FR.12: the connector must be named
        if evse is None or not ours or evse.get("connectorId") != CONNECTOR_ID:
            return rejected("UnknownConnectorId"), None
    elif requested == "MeterValues":
        if not ours:
            return rejected("UnknownEvse"), None
    elif requested == "BootNotification" and booted:
        return rejected("NotEnabled"), None  # F06.FR.17: the last boot was Accepted
    elif requested != "Heartbeat":
        return {"status": "NotImplemented"}, None
    return {"status": "Accepted"}, requested

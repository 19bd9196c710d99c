"""One small function per incoming OCPP action: (payload, station state) -> (reply, events).

The same handlers serve OCPP 2.0.1 and 2.1: payloads arrive already validated against their
version's request schema, and every reply is valid under both versions' response schemas
(the required fields and enum values used here did not change in 2.1; tests check both).
Fields only 2.1 has (NotifyEVChargingNeeds v2xChargingParameters) are read when present.
Handlers update the station's per-EVSE state (transactions, EV presence) and return the
response payload plus events.
No I/O, no clock reads: wall time comes in as `wall_s`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller.ocpp.events import (
    Event,
    EvLimitsReported,
    EvNeedsReported,
    EvseStatusChanged,
    MeterReading,
    ProtocolViolation,
    StationBooted,
    TransactionChanged,
    VehicleIdentified,
)
from controller.ocpp.profiles import rfc3339_utc
from controller.timefmt import parse_rfc3339_s

Payload = dict[str, Any]
Reply = tuple[Payload, list[Event]]

MAIN_METER_EVSE_ID = 0  # evseId 0 is the station's main meter, not an EVSE (2.0.1 Part 2 §J)


@dataclass(slots=True)
class EvseState:
    transaction_id: str | None = None
    ev_connected: bool = False
    connector_id: int | None = None  # last connector reported on this EVSE
    id_token: str | None = None  # the idToken reported for the current transaction


@dataclass(slots=True)
class StationState:
    heartbeat_interval_s: int = 60
    booted: bool = False
    evses: dict[int, EvseState] = field(default_factory=dict)
    tx_evse: dict[str, int] = field(default_factory=dict)  # transactionId -> evse id

    def evse(self, evse_id: int) -> EvseState:
        st = self.evses.get(evse_id)
        if st is None:
            st = self.evses[evse_id] = EvseState()
        return st


Handler = Callable[[Payload, StationState, float], Reply]


def boot_notification(p: Payload, st: StationState, wall_s: float) -> Reply:
    """Accept every configured station (it already passed authentication at the handshake)."""
    st.booted = True
    cs = p["chargingStation"]
    reply = {"currentTime": rfc3339_utc(wall_s), "interval": st.heartbeat_interval_s,
             "status": "Accepted"}
    events: list[Event] = [StationBooted(vendor=cs["vendorName"], model=cs["model"])]
    # A boot means the station restarted: transactions we knew are gone (a station that
    # carries one over re-reports it with TransactionEvent, which establishes it again).
    for evse_id, evse in st.evses.items():
        if evse.transaction_id is not None:
            evse.transaction_id = None
            evse.ev_connected = False
            events.append(TransactionChanged(evse_id=evse_id, transaction_id=None,
                                             ev_connected=False))
    return reply, events


def heartbeat(p: Payload, st: StationState, wall_s: float) -> Reply:
    return {"currentTime": rfc3339_utc(wall_s)}, []


def status_notification(p: Payload, st: StationState, wall_s: float) -> Reply:
    if p["evseId"] != MAIN_METER_EVSE_ID:
        st.evse(p["evseId"]).connector_id = p["connectorId"]
    return {}, [EvseStatusChanged(evse_id=p["evseId"], connector_status=p["connectorStatus"])]


_CONNECTED_STATES = {"Charging", "EVConnected", "SuspendedEV", "SuspendedEVSE"}
_CONNECT_TRIGGERS = {"EVDetected", "CablePluggedIn", "ChargingStateChanged"}
_DISCONNECT_TRIGGERS = {"EVDeparted", "EVCommunicationLost"}


def transaction_event(p: Payload, st: StationState, wall_s: float) -> Reply:
    """Track each EVSE's transaction id and whether an EV is connected (E01-E07).

    Any Started or Updated event naming an EVSE establishes its transaction, even one we never
    saw start: after a CSMS restart the station does not repeat Started, and a TriggerMessage
    (F06.FR.07) answers with Updated/triggerReason Trigger for the ongoing transaction.
    """
    info = p["transactionInfo"]
    tx_id: str = info["transactionId"]
    evse_id = p["evse"]["id"] if "evse" in p else st.tx_evse.get(tx_id)
    if evse_id is None:
        # evse is only mandatory in the first event of a transaction (E01.FR.16); one we never
        # saw start cannot be placed on an EVSE until an event carries it (F06 trigger does).
        return {}, [ProtocolViolation(
            f"TransactionEvent for unknown transaction {tx_id[:36]!r} without evse: ignored")]
    if evse_id == MAIN_METER_EVSE_ID:
        return {}, []
    evse = st.evse(evse_id)
    if "evse" in p and "connectorId" in p["evse"]:
        evse.connector_id = p["evse"]["connectorId"]
    before = (evse.transaction_id, evse.ev_connected)
    if p["eventType"] == "Ended":
        st.tx_evse.pop(tx_id, None)
        if evse.transaction_id in (tx_id, None):
            evse.transaction_id, evse.ev_connected = None, False
    else:
        if evse.transaction_id is not None and evse.transaction_id != tx_id:
            st.tx_evse.pop(evse.transaction_id, None)  # one transaction per EVSE: it ended
        st.tx_evse[tx_id] = evse_id
        evse.transaction_id = tx_id
        charging_state = info.get("chargingState")
        trigger = p["triggerReason"]
        if charging_state in _CONNECTED_STATES:
            evse.ev_connected = True
        elif charging_state == "Idle" or trigger in _DISCONNECT_TRIGGERS:
            evse.ev_connected = False
        elif trigger in _CONNECT_TRIGGERS:
            evse.ev_connected = True
    events: list[Event] = []
    if evse.transaction_id != before[0]:
        evse.id_token = None  # a new transaction (or none): the vehicle may have changed
    if (evse.transaction_id, evse.ev_connected) != before:
        events.append(TransactionChanged(evse_id, evse.transaction_id, evse.ev_connected))
    token = p.get("idToken")
    if (evse.transaction_id == tx_id and token is not None
            and token["idToken"] != evse.id_token):
        evse.id_token = token["idToken"]
        events.append(VehicleIdentified(evse_id, tx_id, token["idToken"], token["type"]))
    reading = _meter_reading(evse_id, p.get("meterValue", ()))
    if reading is not None:
        events.append(reading)
    return {}, events


def meter_values(p: Payload, st: StationState, wall_s: float) -> Reply:
    evse_id: int = p["evseId"]
    if evse_id == MAIN_METER_EVSE_ID:
        return {}, []  # the station's main meter is not an EVSE row; the site meter covers it
    reading = _meter_reading(evse_id, p["meterValue"])
    return {}, [reading] if reading is not None else []


_POWER_IMPORT, _POWER_EXPORT = "Power.Active.Import", "Power.Active.Export"
# Per-phase power values that add up to the total: one per line conductor, measured to neutral
# ("L1" or "L1-N"). "N" and line-to-line values ("L1-L2") are not terms of that sum.
_PHASE_CONDUCTOR = {"L1": "L1", "L2": "L2", "L3": "L3", "L1-N": "L1", "L2-N": "L2", "L3-N": "L3"}


def _meter_reading(evse_id: int, meter_values: Any) -> MeterReading | None:
    """Latest Power.Active.Import - Power.Active.Export (W) and SoC from a meterValue list."""
    power_w: float | None = None
    soc_frac: float | None = None
    for mv in meter_values:  # in time order; later samples win
        total: dict[str, float | None] = {}  # measurand -> W (no phase given)
        phases: dict[str, dict[str, float | None]] = {}  # measurand -> conductor -> W
        for sv in mv["sampledValue"]:
            measurand = sv.get("measurand", "Energy.Active.Import.Register")
            if measurand == "SoC":
                soc = float(sv["value"]) / 100.0
                soc_frac = soc if 0.0 <= soc <= 1.0 else soc_frac  # ignore impossible SoC
            elif measurand in (_POWER_IMPORT, _POWER_EXPORT):
                phase = sv.get("phase")
                if phase is None:
                    total[measurand] = _watts(sv)
                elif phase in _PHASE_CONDUCTOR:
                    phases.setdefault(measurand, {})[_PHASE_CONDUCTOR[phase]] = _watts(sv)
        imp = _power_w(_POWER_IMPORT, total, phases)
        exp = _power_w(_POWER_EXPORT, total, phases)
        if imp is not None or exp is not None:
            power_w = (imp or 0.0) - (exp or 0.0)
    if power_w is None and soc_frac is None:
        return None
    return MeterReading(evse_id=evse_id, power_w=power_w, soc_frac=soc_frac)


def _power_w(measurand: str, total: dict[str, float | None],
             phases: dict[str, dict[str, float | None]]) -> float | None:
    """The total if the station sent one, else the sum of its per-phase values."""
    if measurand in total:
        return total[measurand]
    per_phase = phases.get(measurand)
    if not per_phase or any(w is None for w in per_phase.values()):
        return None
    return math.fsum(w for w in per_phase.values() if w is not None)


def _watts(sv: Payload) -> float | None:
    """A power sample in W honouring unit ("W" or "kW") and the power-of-ten multiplier."""
    unit = sv.get("unitOfMeasure", {})
    scale = 1000.0 if unit.get("unit", "W") == "kW" else 1.0
    try:
        watts = float(sv["value"]) * scale * 10.0 ** unit.get("multiplier", 0)
    except OverflowError:
        return None
    return watts if math.isfinite(watts) else None


# requestedEnergyTransfer (EnergyTransferModeEnumType) -> phases carrying evMaxCurrent.
_AC_PHASES = {"AC_single_phase": 1, "AC_two_phase": 2, "AC_three_phase": 3}
# Above this an AC voltage with more than one phase is taken as line-to-line. ASSUMPTION: the
# schema says only "maximum voltage supported by the EV", and chargers report polyphase EVs both
# ways (400 V or 230 V in Europe). No public low-voltage supply has a phase-to-neutral voltage
# above 277 V (IEC 60038: 230/400 V, 277/480 V), while the line-to-line voltage of a 230/400 V or
# 277/480 V system is far above 300 V. A 120/208 V system reported as 208 V is read as
# phase-to-neutral and so overstated by sqrt(3): measured power corrects the fleet model later.
_LINE_TO_LINE_ABOVE_V = 300.0


def notify_ev_charging_needs(p: Payload, st: StationState, wall_s: float) -> Reply:
    """EV limits and departure needs from ISO 15118 charging needs.

    2.0.1 has no discharge limit; 2.1 may add v2xChargingParameters whose maxChargePower and
    maxDischargePower (W, >= 0, min of EV and EVSE) take precedence. "Accepted" (2.1: the
    message was processed) rather than NoChargingProfile: we do send TxProfiles.
    """
    needs = p["chargingNeeds"]
    max_charge_w, max_discharge_w = _ev_max_w(needs), None
    v2x = needs.get("v2xChargingParameters")
    if v2x is not None:
        max_charge_w = _non_negative(v2x.get("maxChargePower"), max_charge_w)
        max_discharge_w = _non_negative(v2x.get("maxDischargePower"), None)
    return {"status": "Accepted"}, [
        EvLimitsReported(p["evseId"], max_charge_w, max_discharge_w),
        _ev_needs(p["evseId"], needs, wall_s)]


def _non_negative(value: Any, default: float | None) -> float | None:
    """A finite power >= 0 (W) as float, else `default`."""
    if isinstance(value, int | float) and math.isfinite(value) and value >= 0:
        return float(value)
    return default


def _ev_needs(evse_id: int, needs: Payload, wall_s: float) -> EvNeedsReported:
    """departureTime relative to receipt; energyAmount (Wh); DC: stateOfCharge (%), capacity."""
    departure = needs.get("departureTime")
    at_s = parse_rfc3339_s(departure) if isinstance(departure, str) else None
    params = needs.get("dcChargingParameters") or needs.get("acChargingParameters") or {}
    energy = params.get("energyAmount")
    soc = params.get("stateOfCharge")
    capacity = params.get("evEnergyCapacity")
    return EvNeedsReported(
        evse_id, None if at_s is None else at_s - wall_s,
        float(energy) if isinstance(energy, int | float) and energy >= 0 else None,
        soc / 100.0 if isinstance(soc, int | float) and 0 <= soc <= 100 else None,
        float(capacity) if isinstance(capacity, int | float) and capacity > 0 else None)


def _ev_max_w(needs: Payload) -> float | None:
    """The EV's charging power limit (W) from its AC or DC parameters; None if neither."""
    max_w: float | None = None
    if "dcChargingParameters" in needs:
        dc = needs["dcChargingParameters"]
        if "evMaxPower" in dc:
            max_w = float(dc["evMaxPower"])
        else:
            max_w = float(dc["evMaxCurrent"]) * float(dc["evMaxVoltage"])
    elif "acChargingParameters" in needs:
        ac = needs["acChargingParameters"]
        max_w = ac_max_power_w(float(ac["evMaxCurrent"]), float(ac["evMaxVoltage"]),
                               needs["requestedEnergyTransfer"])
    return max_w


def ac_max_power_w(current_a: float, voltage_v: float, transfer_mode: str) -> float:
    """AC power limit: phases x evMaxCurrent (A per phase) x phase-to-neutral voltage.

    The phase count comes from requestedEnergyTransfer (1 if it names no AC mode: the
    conservative figure). A polyphase voltage above _LINE_TO_LINE_ABOVE_V is line-to-line,
    so V_phase = V / sqrt(3): AC_three_phase, 16 A, 400 V gives 11.1 kW.
    """
    phases = _AC_PHASES.get(transfer_mode, 1)
    if phases > 1 and voltage_v > _LINE_TO_LINE_ABOVE_V:
        voltage_v /= math.sqrt(3.0)
    return phases * current_a * voltage_v


def authorize(p: Payload, st: StationState, wall_s: float) -> Reply:
    """Every idToken is accepted: the site operator controls who parks, not the CSMS."""
    return {"idTokenInfo": {"status": "Accepted"}}, []


def acknowledge(p: Payload, st: StationState, wall_s: float) -> Reply:
    """Notifications whose response schema has no required field: an empty ack."""
    return {}, []


HANDLERS: dict[str, Handler] = {
    "BootNotification": boot_notification,
    "Heartbeat": heartbeat,
    "StatusNotification": status_notification,
    "TransactionEvent": transaction_event,
    "MeterValues": meter_values,
    "NotifyEVChargingNeeds": notify_ev_charging_needs,
    "Authorize": authorize,
    "NotifyEvent": acknowledge,
    "SecurityEventNotification": acknowledge,
    "FirmwareStatusNotification": acknowledge,
    "LogStatusNotification": acknowledge,
    "NotifyReport": acknowledge,
    "NotifyChargingLimit": acknowledge,
    "NotifyMonitoringReport": acknowledge,
    "ReportChargingProfiles": acknowledge,
}

"""StationSession over OCPP 2.1: per-connection version, 2.1 schemas, CentralSetpoint setpoints."""

import orjson
import pytest

from controller.ocpp.events import EvLimitsReported, ProtocolViolation, SetpointResult
from controller.ocpp.schemas import default_validators, validators_for
from controller.ocpp.session import SessionParams, StationSession

WALL0 = 1_795_752_000.0
TS = "2026-11-27T04:00:00Z"
BOOT = [2, "b1", "BootNotification",
        {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}]
V21_NEEDS = {"evseId": 1, "chargingNeeds": {
    "requestedEnergyTransfer": "AC_three_phase",
    "v2xChargingParameters": {"maxChargePower": 11000, "maxDischargePower": 7400}}}


class Station:
    """Drives a session with a fake clock over a connection of the given version."""

    def __init__(self, version, *, discharge_allowed=True):
        self.now_s = 100.0
        self.session = StationSession("CP1", discharge_allowed=discharge_allowed,
                                      params=SessionParams(), validators=default_validators())
        self.session.connection_lost(self.now_s)
        self.session.connection_made(version)
        self.events = []

    def send(self, msg):
        self.events += self.session.receive_text(orjson.dumps(msg), self.now_s,
                                                 WALL0 + self.now_s)
        return [orjson.loads(f) for f in self.session.data_to_send()]

    def boot_with_tx(self, tx_id="tx-1"):
        assert self.send(BOOT)[0][2]["status"] == "Accepted"
        self.send([2, "t1", "TransactionEvent", {
            "eventType": "Started", "timestamp": TS, "triggerReason": "CablePluggedIn",
            "seqNo": 0, "transactionInfo": {"transactionId": tx_id}, "evse": {"id": 1}}])

    def setpoint_frame(self, limit_w):
        self.session.offer_setpoint(1, limit_w)
        self.events += self.session.poll(self.now_s, WALL0 + self.now_s)
        (frame,) = [orjson.loads(f) for f in self.session.data_to_send()]
        return frame


def _period(frame):
    return frame[3]["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]


def test_session_knows_the_version_of_its_connection():
    assert Station("2.1").session.ocpp_version == "2.1"
    assert Station("2.0.1").session.ocpp_version == "2.0.1"
    fresh = StationSession("CP1", discharge_allowed=True, params=SessionParams(),
                           validators=default_validators())
    assert fresh.ocpp_version == "2.0.1"  # the default when none is named


def test_2_1_discharging_station_gets_a_central_setpoint_valid_under_2_1():
    st = Station("2.1")
    st.boot_with_tx()
    frame = st.setpoint_frame(-7300.04)
    assert frame[2] == "SetChargingProfile"
    assert _period(frame) == {"startPeriod": 0, "operationMode": "CentralSetpoint",
                              "setpoint": -7300.0}
    validators_for("2.1").validate("SetChargingProfile", "request", frame[3])
    st.send([3, frame[1], {"status": "Accepted"}])
    (result,) = [e for e in st.events if isinstance(e, SetpointResult)]
    assert result.accepted
    assert result.limit_w == -7300.04


def test_2_1_charge_only_station_gets_a_plain_non_negative_limit():
    st = Station("2.1", discharge_allowed=False)
    st.boot_with_tx()
    frame = st.setpoint_frame(-5000.0)
    assert _period(frame) == {"startPeriod": 0, "limit": 0.0}
    validators_for("2.1").validate("SetChargingProfile", "request", frame[3])


def test_2_0_1_connection_keeps_the_negative_limit_convention():
    st = Station("2.0.1")
    st.boot_with_tx()
    assert _period(st.setpoint_frame(-5000.0)) == {"startPeriod": 0, "limit": -5000.0}


def test_a_reconnect_with_another_version_switches_schemas_and_profile_shape():
    st = Station("2.0.1")
    st.boot_with_tx()
    assert "limit" in _period(st.setpoint_frame(-1000.0))
    st.session.connection_lost(st.now_s)
    st.session.connection_made("2.1")  # same station, firmware now speaks 2.1
    assert _period(st.setpoint_frame(-2000.0))["setpoint"] == -2000.0
    st.session.connection_lost(st.now_s)
    st.session.connection_made("2.0.1")
    assert _period(st.setpoint_frame(-3000.0)) == {"startPeriod": 0, "limit": -3000.0}


def test_2_1_only_fields_are_accepted_on_2_1_and_a_format_violation_on_2_0_1():
    st21 = Station("2.1")
    st21.send(BOOT)
    (reply,) = st21.send([2, "n1", "NotifyEVChargingNeeds", V21_NEEDS])
    assert reply == [3, "n1", {"status": "Accepted"}]
    validators_for("2.1").validate("NotifyEVChargingNeeds", "response", reply[2])
    (limits,) = [e for e in st21.events if isinstance(e, EvLimitsReported)]
    assert (limits.max_charge_w, limits.max_discharge_w) == (11000.0, 7400.0)

    st201 = Station("2.0.1")
    st201.send(BOOT)
    (reply,) = st201.send([2, "n1", "NotifyEVChargingNeeds", V21_NEEDS])
    assert reply[:3] == [4, "n1", "FormatViolation"]  # additionalProperties under 2.0.1
    assert any(isinstance(e, ProtocolViolation) for e in st201.events)


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
def test_a_2_1_only_action_is_known_only_to_a_2_1_session(version):
    st = Station(version)
    st.send(BOOT)
    (reply,) = st.send([2, "x", "NotifyDERAlarm", {}])
    # 2.1 knows the action (NotSupported); 2.0.1 has never heard of it (NotImplemented)
    assert reply[2] == ("NotSupported" if version == "2.1" else "NotImplemented")


@pytest.mark.parametrize(("version", "accepted"), [("2.1", True), ("2.0.1", False)])
def test_a_2_1_only_enum_value_passes_only_on_a_2_1_connection(version, accepted):
    st = Station(version)
    st.boot_with_tx()
    (reply,) = st.send([2, "u1", "TransactionEvent", {
        "eventType": "Updated", "timestamp": TS, "triggerReason": "OperationModeChanged",
        "seqNo": 1, "transactionInfo": {"transactionId": "tx-1"}, "evse": {"id": 1}}])
    assert reply[0] == (3 if accepted else 4)
    if not accepted:
        assert reply[2] == "PropertyConstraintViolation"

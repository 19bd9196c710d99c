import logging

import orjson
import pytest

from controller.ocpp import session as session_module
from controller.ocpp.events import (
    CallFailed,
    EvseStatusChanged,
    ProtocolViolation,
    SetpointResult,
    StationBooted,
    TransactionChanged,
    TriggerResult,
)
from controller.ocpp.schemas import default_validators
from controller.ocpp.session import SessionParams, StationSession

WALL0 = 1_795_752_000.0
TS = "2026-11-27T04:00:00Z"
BOOT = [2, "b1", "BootNotification",
        {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}]


class Station:
    """Drives a session with a fake clock, like the websocket edge would."""

    def __init__(self, *, discharge_allowed=True, timeout_s=10.0, previously_accepted=False):
        self.now_s = 100.0
        self.session = StationSession(
            "CP1", discharge_allowed=discharge_allowed,
            params=SessionParams(call_timeout_s=timeout_s), validators=default_validators(),
            previously_accepted=previously_accepted)
        self.events = []

    def send(self, msg):
        text = msg if isinstance(msg, str | bytes) else orjson.dumps(msg)
        self.events += self.session.receive_text(text, self.now_s, WALL0 + self.now_s)
        return [orjson.loads(f) for f in self.session.data_to_send()]

    def tick(self, dt_s=0.0):
        self.now_s += dt_s
        self.events += self.session.poll(self.now_s, WALL0 + self.now_s)
        return [orjson.loads(f) for f in self.session.data_to_send()]

    def boot(self):
        assert self.send(BOOT)[0][2]["status"] == "Accepted"

    def start_tx(self, evse_id, tx_id):
        self.send([2, f"t{evse_id}", "TransactionEvent", {
            "eventType": "Started", "timestamp": TS, "triggerReason": "CablePluggedIn",
            "seqNo": 0, "transactionInfo": {"transactionId": tx_id}, "evse": {"id": evse_id}}])


def _limits(frames):
    return [(f[3]["evseId"], f[3]["chargingProfile"]["chargingSchedule"][0]
             ["chargingSchedulePeriod"][0]["limit"]) for f in frames if f[0] == 2]


@pytest.mark.parametrize(
    ("msg", "code"),
    [
        ([2, "h1", "Heartbeat", {}], "SecurityError"),
        ([2, "s1", "StatusNotification", {"timestamp": TS, "connectorStatus": "Available",
                                          "evseId": 1, "connectorId": 1}], "SecurityError"),
    ],
)
def test_station_that_never_booted_gets_security_error(msg, code):
    st = Station()
    assert st.send(msg) == [[4, msg[1], code, "not booted", {}]]
    assert not st.session.booted


@pytest.mark.parametrize(
    ("msg", "reply"),
    [
        ([2, "h1", "Heartbeat", {}], [3, "h1", {"currentTime": "2026-11-27T04:01:40.000Z"}]),
        ([2, "x", "MakeCoffee", {}], [4, "x", "NotImplemented", "MakeCoffee is not handled", {}]),
        ([2, "x", "Get15118EVCertificate", {}],
         [4, "x", "NotSupported", "Get15118EVCertificate is not handled", {}]),
        ([2, "x", "Heartbeat", []], [4, "x", "FormatViolation", "payload is not a JSON object",
                                     {}]),
        ("[2,", [4, "-1", "FormatViolation", "not valid JSON", {}]),
        ([9, "x", "Heartbeat", {}],
         [4, "x", "MessageTypeNotSupported", "message type 9 is not supported", {}]),
    ],
)
def test_booted_station_gets_these_answers(msg, reply):
    st = Station()
    st.boot()
    assert st.send(msg) == [reply]


def test_schema_failure_is_answered_with_the_mapped_code():
    st = Station()
    st.boot()
    frames = st.send([2, "s", "StatusNotification", {"timestamp": TS, "evseId": 1,
                                                     "connectorId": 1}])
    assert frames[0][:3] == [4, "s", "OccurrenceConstraintViolation"]
    assert isinstance(st.events[-1], ProtocolViolation)


def test_boot_and_status_emit_events():
    st = Station()
    st.boot()
    st.send([2, "s", "StatusNotification", {"timestamp": TS, "connectorStatus": "Occupied",
                                            "evseId": 1, "connectorId": 1}])
    assert st.events == [StationBooted("V", "M"), EvseStatusChanged(1, "Occupied")]


def test_setpoint_waits_for_an_active_transaction():
    st = Station()
    st.boot()
    st.session.offer_setpoint(1, 5000.0)
    assert st.tick() == []
    st.start_tx(1, "tx1")
    assert TransactionChanged(1, "tx1", True) in st.events
    frames = st.tick()  # the TransactionEvent already started the call; nothing new here
    assert frames == []
    assert st.session.next_deadline_s() == pytest.approx(110.0)


def test_setpoint_call_starts_as_soon_as_the_transaction_event_arrives():
    st = Station()
    st.boot()
    st.session.offer_setpoint(1, 5000.0)
    st.session.receive_text(orjson.dumps([2, "t", "TransactionEvent", {
        "eventType": "Started", "timestamp": TS, "triggerReason": "CablePluggedIn", "seqNo": 0,
        "transactionInfo": {"transactionId": "tx1"}, "evse": {"id": 1}}]), 100.0, WALL0)
    frames = [orjson.loads(f) for f in st.session.data_to_send()]
    assert frames[0] == [3, "t", {}]
    assert frames[1][2] == "SetChargingProfile"
    assert frames[1][3]["chargingProfile"]["transactionId"] == "tx1"
    default_validators().validate("SetChargingProfile", "request", frames[1][3])


def test_latest_value_wins_while_a_call_is_outstanding():
    st = Station()
    st.boot()
    st.start_tx(1, "tx1")
    st.session.offer_setpoint(1, 1000.0)
    first = st.tick()
    assert _limits(first) == [(1, 1000.0)]
    for limit_w in (2000.0, 3000.0, 4000.0):
        st.session.offer_setpoint(1, limit_w)
        assert st.tick() == []  # one outstanding CALL per connection (Part 4 §4.1.1)
    st.now_s += 0.25
    nxt = st.send([3, first[0][1], {"status": "Accepted"}])  # the freed slot is refilled at once
    assert SetpointResult(1, 1000.0, True, "Accepted", 0.25) in st.events
    assert _limits(nxt) == [(1, 4000.0)]
    assert st.tick() == []


def test_setpoints_are_served_round_robin_across_evses():
    st = Station()
    st.boot()
    st.start_tx(1, "tx1")
    st.start_tx(2, "tx2")
    st.session.offer_setpoint(1, 1.0)
    st.session.offer_setpoint(2, 2.0)
    frames = st.tick()
    sent = _limits(frames)
    for _ in range(3):
        st.session.offer_setpoint(1, 1.0)  # EVSE 1 is offered again every round
        frames = st.send([3, frames[0][1], {"status": "Accepted"}])
        sent += _limits(frames)
    assert [evse for evse, _ in sent] == [1, 2, 1, 1]


def test_timeout_frees_the_slot_and_the_next_setpoint_goes_out():
    st = Station(timeout_s=5.0)
    st.boot()
    st.start_tx(1, "tx1")
    st.session.offer_setpoint(1, 100.0)
    first = st.tick()
    st.session.offer_setpoint(1, 200.0)
    assert st.tick(4.9) == []
    assert _limits(st.tick(0.2)) == [(1, 200.0)]
    assert CallFailed("SetChargingProfile", 1, "timeout") in st.events
    st.send([3, first[0][1], {"status": "Accepted"}])  # the late answer is not ours any more
    assert isinstance(st.events[-1], ProtocolViolation)


def test_connection_lost_frees_the_slot_at_once_and_keeps_pending_setpoints():
    st = Station()
    st.boot()
    st.start_tx(1, "tx1")
    st.session.offer_setpoint(1, 100.0)
    st.tick()
    st.session.offer_setpoint(1, 200.0)
    assert st.session.connection_lost(st.now_s) == [
        CallFailed("SetChargingProfile", 1, "connection lost")]
    assert st.session.next_deadline_s() is None
    assert st.tick() == []  # nothing is sent while disconnected
    st.session.connection_made()
    assert st.session.booted  # a reconnect without reboot keeps the boot (no new boot sent)
    assert _limits(st.tick()) == [(1, 200.0)]


@pytest.mark.parametrize(
    ("discharge_allowed", "offered_w", "sent_w"),
    [(False, -5000.0, 0.0), (True, -5000.0, -5000.0), (False, 3000.04, 3000.0)],
)
def test_negative_limit_is_clamped_unless_discharge_is_allowed(discharge_allowed, offered_w,
                                                                 sent_w):
    st = Station(discharge_allowed=discharge_allowed)
    st.boot()
    st.start_tx(1, "tx1")
    st.session.offer_setpoint(1, offered_w)
    assert _limits(st.tick()) == [(1, sent_w)]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ([4, "{id}", "NotSupported", "", {}],
         CallFailed("SetChargingProfile", 1, "CALLERROR NotSupported")),
        ([3, "{id}", {"status": "Rejected"}], SetpointResult(1, 100.0, False, "Rejected", 0.0)),
        ([3, "{id}", {"status": "Perhaps"}],
         CallFailed("SetChargingProfile", 1, "invalid response (PropertyConstraintViolation)")),
    ],
)
def test_setpoint_answers_become_results_or_failures(reply, expected):
    st = Station()
    st.boot()
    st.start_tx(1, "tx1")
    st.session.offer_setpoint(1, 100.0)
    uid = st.tick()[0][1]
    reply = [uid if x == "{id}" else x for x in reply]
    assert st.send(reply) == []  # never answer a CALLRESULT/CALLERROR
    assert st.events[-1] == expected
    assert st.session.next_deadline_s() is None


def test_reply_to_an_unknown_id_is_a_violation_not_a_crash():
    st = Station()
    st.boot()
    assert st.send([3, "nope", {"status": "Accepted"}]) == []
    assert isinstance(st.events[-1], ProtocolViolation)


def test_handler_bug_is_logged_and_answered_with_internal_error(monkeypatch, caplog):
    def broken(*_args):
        raise RuntimeError("secret detail")

    monkeypatch.setitem(session_module.HANDLERS, "Heartbeat", broken)
    st = Station()
    st.boot()
    with caplog.at_level(logging.ERROR):
        frames = st.send([2, "h", "Heartbeat", {}])
    assert frames == [[4, "h", "InternalError", "", {}]]
    assert "secret detail" in caplog.text
    assert caplog.records[-1].exc_info is not None


def test_non_finite_setpoint_is_a_caller_error():
    with pytest.raises(ValueError, match="finite"):
        Station().session.offer_setpoint(1, float("nan"))


# -- restart recovery: a station accepted before the CSMS restarted does not boot again ---------

TRIGGER_TX = {"requestedMessage": "TransactionEvent"}


def _triggered_update(tx_id="tx9", evse_id=1, connector_id=2, state="Charging"):
    evse = {"id": evse_id, "connectorId": connector_id}
    return [2, "u1", "TransactionEvent", {
        "eventType": "Updated", "timestamp": TS, "triggerReason": "Trigger", "seqNo": 7,
        "transactionInfo": {"transactionId": tx_id, "chargingState": state}, "evse": evse,
        "meterValue": [{"timestamp": TS, "sampledValue": [
            {"value": 3000.0, "measurand": "Power.Active.Import", "context": "Trigger"}]}]}]


@pytest.mark.parametrize(
    "msg",
    [
        [2, "h1", "Heartbeat", {}],
        [2, "m1", "MeterValues", {"evseId": 1, "meterValue": [{"timestamp": TS, "sampledValue": [
            {"value": 1500.0, "measurand": "Power.Active.Import"}]}]}],
    ],
)
def test_station_accepted_before_a_restart_is_served_without_booting_again(msg):
    st = Station(previously_accepted=True)
    assert st.session.booted
    frames = st.send(msg)
    assert frames[0][:2] == [3, msg[1]]
    assert not any(isinstance(e, ProtocolViolation) for e in st.events)


def test_restored_station_is_asked_to_re_report_before_any_setpoint():
    st = Station(previously_accepted=True)
    st.session.offer_setpoint(1, -4000.0)
    frames = st.tick()
    # F06.FR.11: evse omitted = every EVSE with an ongoing transaction
    assert [f[2:] for f in frames] == [["TriggerMessage", TRIGGER_TX]]
    default_validators().validate("TriggerMessage", "request", frames[0][3])
    assert st.tick() == []  # one outstanding CALL per connection
    assert st.send([3, frames[0][1], {"status": "Accepted"}]) == []
    assert TriggerResult("TransactionEvent", None, "Accepted") in st.events
    assert not st.session.resync_pending


def test_triggered_update_establishes_the_transaction_and_the_held_setpoint_goes_out():
    st = Station(previously_accepted=True)
    st.session.offer_setpoint(1, -4000.0)
    trigger = st.tick()[0]
    st.send([3, trigger[1], {"status": "Accepted"}])
    frames = st.send(_triggered_update())
    assert frames[0] == [3, "u1", {}]
    assert TransactionChanged(1, "tx9", True) in st.events
    assert st.session.transaction_id(1) == "tx9"
    # F06.FR.12: the connector's status is asked for with evse.id and evse.connectorId
    assert frames[1][2:] == ["TriggerMessage", {"requestedMessage": "StatusNotification",
                                                "evse": {"id": 1, "connectorId": 2}}]
    frames = st.send([3, frames[1][1], {"status": "Accepted"}])
    assert _limits(frames) == [(1, -4000.0)]
    assert frames[0][3]["chargingProfile"]["transactionId"] == "tx9"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ([3, "{id}", {"status": "Rejected"}], TriggerResult("TransactionEvent", None, "Rejected")),
        ([3, "{id}", {"status": "NotImplemented"}],
         TriggerResult("TransactionEvent", None, "NotImplemented")),
        ([4, "{id}", "NotImplemented", "", {}],
         CallFailed("TriggerMessage", None, "CALLERROR NotImplemented")),
        ([3, "{id}", {"status": "Sure"}],
         CallFailed("TriggerMessage", None, "invalid response (PropertyConstraintViolation)")),
    ],
)
def test_refused_trigger_is_not_repeated_and_setpoints_still_flow(reply, expected):
    st = Station(previously_accepted=True)
    uid = st.tick()[0][1]
    st.send([uid if x == "{id}" else x for x in reply])
    assert st.events[-1] == expected
    assert not st.session.resync_pending
    assert st.tick() == []  # not asked again
    st.start_tx(1, "tx1")  # the station reports a transaction by itself later
    st.session.offer_setpoint(1, 500.0)
    assert _limits(st.tick()) == [(1, 500.0)]


def test_unanswered_trigger_times_out_once_and_frees_the_channel():
    st = Station(previously_accepted=True, timeout_s=5.0)
    st.tick()
    assert st.tick(5.0) == []
    assert CallFailed("TriggerMessage", None, "timeout") in st.events
    assert not st.session.resync_pending


def test_trigger_lost_with_the_connection_is_asked_again_on_the_next_one():
    st = Station(previously_accepted=True)
    st.tick()
    assert st.session.connection_lost(st.now_s) == [
        CallFailed("TriggerMessage", None, "connection lost")]
    st.session.connection_made()
    assert [f[2:] for f in st.tick()] == [["TriggerMessage", TRIGGER_TX]]


def test_a_station_that_boots_after_the_restart_is_not_asked_to_re_report():
    st = Station(previously_accepted=True)
    st.boot()  # it rebooted: it reports status and transactions by itself (B01)
    assert st.tick() == []
    assert not st.session.resync_pending


def test_station_never_accepted_before_still_needs_a_boot():
    st = Station(previously_accepted=False)
    assert st.tick() == []  # nothing asked of an unknown station
    assert st.send([2, "h1", "Heartbeat", {}])[0][2] == "SecurityError"


def test_update_for_an_unknown_transaction_establishes_it_without_any_restart():
    st = Station()
    st.boot()
    st.session.offer_setpoint(1, 2000.0)
    frames = st.send(_triggered_update(tx_id="lost-tx", state="SuspendedEVSE"))
    assert TransactionChanged(1, "lost-tx", True) in st.events
    assert _limits(frames) == [(1, 2000.0)]  # no trigger was sent: no StatusNotification ask

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.ocpp.events import CallFailed, SetpointResult
from controller.ocpp.handlers import HANDLERS
from controller.ocpp.schemas import default_validators
from controller.ocpp.session import SessionParams, StationSession

BOOT = orjson.dumps([2, "b", "BootNotification",
                     {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}])
TX = orjson.dumps([2, "t", "TransactionEvent", {
    "eventType": "Started", "timestamp": "2026-11-27T04:00:00Z", "triggerReason": "EVDetected",
    "seqNo": 0, "transactionInfo": {"transactionId": "tx"}, "evse": {"id": 1}}])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner,
                                                                  max_size=5),
    max_leaves=20,
)
actions = st.sampled_from([*HANDLERS, "SetChargingProfile", "MakeCoffee", ""]) | st.text(
    max_size=10)
frames = st.one_of(
    st.tuples(st.sampled_from([2, 3, 4, 5, -1]), st.text(max_size=40), actions, json_values)
    .map(lambda t: [t[0], t[1], t[2], t[3]]),
    st.tuples(st.just(3), st.sampled_from(["1", "2", "x"]), json_values).map(list),
    st.tuples(st.just(4), st.sampled_from(["1", "2"]), json_values, json_values,
              json_values).map(list),
    st.tuples(st.just(2), st.sampled_from(["a", "b"]), st.sampled_from(list(HANDLERS)),
              st.dictionaries(st.sampled_from(["evseId", "meterValue", "eventType", "timestamp",
                                               "transactionInfo", "chargingNeeds", "evse"]),
                              json_values, max_size=6)).map(list),
    json_values,
)
texts = st.one_of(
    frames.map(lambda f: orjson.dumps(f).decode()),
    st.text(max_size=200),
    st.binary(max_size=200),
)


def _session(booted):
    s = StationSession("CP", discharge_allowed=False, params=SessionParams(),
                       validators=default_validators())
    if booted:
        s.receive_text(BOOT, 0.0, 1e9)
        s.receive_text(TX, 0.0, 1e9)
        s.offer_setpoint(1, 1000.0)
        s.poll(0.0, 1e9)
        s.offer_setpoint(1, -50.0)
        s.data_to_send()
    return s


def _assert_valid_reply(frame_text):
    frame = orjson.loads(frame_text)
    assert isinstance(frame, list)
    if frame[0] == 3:
        assert len(frame) == 3
        assert isinstance(frame[1], str)
        assert isinstance(frame[2], dict)
    elif frame[0] == 4:
        assert len(frame) == 5
        assert isinstance(frame[1], str)
        assert 1 <= len(frame[1]) <= 36
        assert isinstance(frame[2], str)
        assert isinstance(frame[3], str)
        assert isinstance(frame[4], dict)
    else:
        assert frame[0] == 2
        assert frame[2] == "SetChargingProfile"
        default_validators().validate("SetChargingProfile", "request", frame[3])


# deadline=None: the first example pays for compiling validators lazily
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(booted=st.booleans(), inputs=st.lists(texts, min_size=1, max_size=8))
def test_any_input_never_raises_and_every_reply_is_a_valid_frame(booted, inputs):
    session = _session(booted)
    now_s = 0.0
    for text in inputs:
        now_s += 1.0
        events = session.receive_text(text, now_s, 1e9 + now_s)
        events += session.poll(now_s, 1e9 + now_s)
        for ev in events:
            assert not isinstance(ev, SetpointResult) or ev.evse_id == 1
        for out in session.data_to_send():
            _assert_valid_reply(out)
    assert all(isinstance(e, CallFailed) for e in session.connection_lost(now_s))
    assert session.next_deadline_s() is None


@settings(deadline=None)
@given(payload=json_values, action=st.sampled_from(sorted(HANDLERS)))
def test_valid_or_invalid_payloads_of_handled_actions_get_exactly_one_answer(payload, action):
    session = _session(True)
    session.receive_text(orjson.dumps([2, "u1", action, payload]), 1.0, 1e9)
    replies = [orjson.loads(f) for f in session.data_to_send()]
    answers = [r for r in replies if r[0] in (3, 4)]
    assert len(answers) == 1
    assert answers[0][1] == "u1"
    if answers[0][0] == 3:
        default_validators().validate(action, "response", answers[0][2])

"""OCPP 2.1 SetChargingProfile: CentralSetpoint template, validated once against the 2.1 schema."""

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.ocpp.errors import ValidationError
from controller.ocpp.profiles import (
    ACTION,
    SCHEDULE_BACKDATE_S,
    ProfileFrameEncoder,
    build_set_charging_profile,
    rfc3339_utc,
)
from controller.ocpp.rpc import encode_call
from controller.ocpp.schemas import default_validators, validators_for

WALL_S = 1_795_752_000.123  # 2026-11-27T04:00:00.123Z
V21 = validators_for("2.1")


def _payload(limit_w, *, central_setpoint=True, wall_s=WALL_S, evse_id=1, tx="tx-1"):
    return build_set_charging_profile(evse_id=evse_id, transaction_id=tx, limit_w=limit_w,
                                      wall_s=wall_s, validity_s=30.0, profile_id_base=1000,
                                      stack_level=1, central_setpoint=central_setpoint)


def _encoder(validators=V21, central_setpoint=True):
    return ProfileFrameEncoder(validity_s=30.0, profile_id_base=1000, stack_level=1,
                               validators=validators, central_setpoint=central_setpoint)


def test_central_setpoint_period_carries_the_signed_setpoint_and_no_limit():
    p = _payload(-7300.04)
    V21.validate(ACTION, "request", p)
    (period,) = p["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"]
    assert period == {"startPeriod": 0, "operationMode": "CentralSetpoint", "setpoint": -7300.0}


def test_setpoint_is_rounded_to_one_decimal_and_never_minus_zero():
    def setpoint(w):
        return _payload(w)["chargingProfile"]["chargingSchedule"][0][
            "chargingSchedulePeriod"][0]["setpoint"]
    assert setpoint(1234.56) == 1234.6
    assert setpoint(-1234.56) == -1234.6
    assert str(setpoint(-0.04)) == "0.0"


def test_2_1_profile_lapses_by_itself_like_the_2_0_1_one():
    prof = _payload(-5000.0)["chargingProfile"]
    sched = prof["chargingSchedule"][0]
    assert prof["chargingProfilePurpose"] == "TxProfile"
    assert prof["validTo"] == rfc3339_utc(WALL_S + 30.0)
    assert sched["startSchedule"] == rfc3339_utc(WALL_S - SCHEDULE_BACKDATE_S)
    assert sched["duration"] == 30 + SCHEDULE_BACKDATE_S


def test_the_2_0_1_schema_rejects_a_central_setpoint_profile():
    # Why the template must be validated against the connection's own version.
    with pytest.raises(ValidationError):
        default_validators().validate(ACTION, "request", _payload(-5000.0))


@given(limit_w=st.floats(min_value=-50_000, max_value=50_000, allow_nan=False),
       evse_id=st.integers(min_value=1, max_value=8),
       wall_s=st.floats(min_value=1.6e9, max_value=2.0e9))
def test_fast_path_equals_the_dict_path_byte_for_byte_and_is_2_1_valid(limit_w, evse_id, wall_s):
    enc = _encoder()
    for uid in ("1", "2"):  # first frame validated, second from the cached template
        frame = enc.encode(uid, evse_id, "tx-9", limit_w, wall_s)
        payload = _payload(limit_w, evse_id=evse_id, tx="tx-9", wall_s=wall_s)
        assert frame == encode_call(uid, ACTION, payload)
        V21.validate(ACTION, "request", orjson.loads(frame)[3])


def test_charge_only_2_1_template_is_the_plain_limit_shape_and_2_1_valid():
    frame = _encoder(central_setpoint=False).encode("7", 1, "tx-1", 3000.0, WALL_S)
    assert frame == encode_call("7", ACTION, _payload(3000.0, central_setpoint=False))
    V21.validate(ACTION, "request", orjson.loads(frame)[3])


def test_template_is_validated_once_per_evse_against_the_given_schema(monkeypatch):
    calls = []
    real = V21.validate
    monkeypatch.setattr(V21, "validate", lambda *a: (calls.append(a), real(*a)))
    enc = _encoder()
    for i in range(5):
        enc.encode(str(i), 1, "tx", -1000.0 * i, WALL_S + i)
    enc.encode("x", 2, "tx", 0.0, WALL_S)
    assert len(calls) == 2  # EVSE 1 once, EVSE 2 once


def test_a_central_setpoint_template_checked_against_2_0_1_is_never_sent():
    enc = _encoder(validators=default_validators())
    with pytest.raises(ValidationError):
        enc.encode("1", 1, "tx", -1000.0, WALL_S)
    with pytest.raises(ValidationError):  # the bad template is not cached: still refused
        enc.encode("2", 1, "tx", -1000.0, WALL_S)

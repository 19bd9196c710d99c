import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.ocpp.profiles import (
    ACTION,
    SCHEDULE_BACKDATE_S,
    ProfileFrameEncoder,
    build_set_charging_profile,
    rfc3339_utc,
    round_limit_w,
)
from controller.ocpp.rpc import encode_call
from controller.ocpp.schemas import default_validators
from sim_chargers.chargeprofile import accept_profile

WALL_S = 1_795_752_000.123  # 2026-11-27T04:00:00.123Z


def _dict_path(uid, evse_id, tx, limit_w, wall_s):
    payload = build_set_charging_profile(evse_id=evse_id, transaction_id=tx, limit_w=limit_w,
                                         wall_s=wall_s, validity_s=30.0, profile_id_base=1000,
                                         stack_level=1)
    return encode_call(uid, ACTION, payload)


def test_timestamps_are_rfc3339_utc_with_milliseconds():
    assert rfc3339_utc(WALL_S) == "2026-11-27T04:00:00.123Z"
    assert rfc3339_utc(0.0) == "1970-01-01T00:00:00.000Z"


def test_limit_is_rounded_to_one_decimal():
    assert round_limit_w(1234.56) == 1234.6
    assert str(round_limit_w(-0.04)) == "0.0"


def test_profile_is_an_absolute_tx_profile_in_watts_that_lapses_by_itself():
    p = build_set_charging_profile(evse_id=2, transaction_id="tx", limit_w=-3000.04,
                                   wall_s=WALL_S, validity_s=30.0, profile_id_base=1000,
                                   stack_level=1)
    default_validators().validate(ACTION, "request", p)
    prof = p["chargingProfile"]
    sched = prof["chargingSchedule"][0]
    assert (prof["id"], prof["chargingProfilePurpose"], prof["chargingProfileKind"]) == (
        1002, "TxProfile", "Absolute")
    assert prof["transactionId"] == "tx"
    assert prof["validTo"] == "2026-11-27T04:00:30.123Z"  # lapses validity_s from now
    assert sched["startSchedule"] == "2026-11-27T03:59:00.123Z"  # backdated for clock skew
    assert sched["duration"] == 90  # backdate + validity: ends at validTo
    assert sched["chargingRateUnit"] == "W"
    assert sched["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": -3000.0}]


def test_profile_id_is_stable_per_evse_so_a_new_profile_replaces_the_old():
    a = build_set_charging_profile(evse_id=3, transaction_id="a", limit_w=1.0, wall_s=WALL_S,
                                   validity_s=30, profile_id_base=1000, stack_level=1)
    b = build_set_charging_profile(evse_id=3, transaction_id="b", limit_w=9.0, wall_s=WALL_S + 5,
                                   validity_s=30, profile_id_base=1000, stack_level=1)
    assert a["chargingProfile"]["id"] == b["chargingProfile"]["id"] == 1003


@given(
    uid=st.text(min_size=1, max_size=36),
    evse_id=st.integers(min_value=1, max_value=64),
    tx=st.text(min_size=1, max_size=36),
    limit_w=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    wall_s=st.floats(min_value=1e9, max_value=4e9),
)
def test_fast_path_frame_equals_dict_path_and_validates(uid, evse_id, tx, limit_w, wall_s):
    enc = ProfileFrameEncoder(validity_s=30.0, profile_id_base=1000, stack_level=1,
                              validators=default_validators())
    fast = enc.encode(uid, evse_id, tx, limit_w, wall_s)
    assert fast == _dict_path(uid, evse_id, tx, limit_w, wall_s)
    frame = orjson.loads(fast)
    assert frame[:3] == [2, uid, ACTION]
    default_validators().validate(ACTION, "request", frame[3])


def test_fast_path_reuses_its_template_after_the_first_frame():
    enc = ProfileFrameEncoder(validity_s=30.0, profile_id_base=1000, stack_level=1,
                              validators=default_validators())
    enc.encode("1", 1, "tx", 10.0, WALL_S)
    template = enc._templates[1]
    second = enc.encode("2", 1, "tx", 20.0, WALL_S + 1)
    assert enc._templates[1] is template
    assert second == _dict_path("2", 1, "tx", 20.0, WALL_S + 1)


@pytest.mark.parametrize("lag_s", [0.0, 5.0, 59.0])
def test_charger_whose_clock_lags_applies_the_profile_at_once_and_drops_it_at_valid_to(lag_s):
    p = build_set_charging_profile(evse_id=1, transaction_id="tx", limit_w=-4000.0,
                                   wall_s=WALL_S, validity_s=30.0, profile_id_base=1000,
                                   stack_level=1)
    # the charger's wall clock reads WALL_S - lag_s when the profile arrives (its now_s = 0)
    active = accept_profile(p, evse_id=1, transaction_id="tx", now_s=0.0, wall_s=WALL_S - lag_s)
    assert active.limit_at(0.0) == -4000.0
    assert active.limit_at(30.0 + lag_s - 0.01) == -4000.0
    assert active.limit_at(30.0 + lag_s) is None  # lapses at validTo by the charger's clock


def test_backdate_tolerates_a_minute_of_skew():
    assert SCHEDULE_BACKDATE_S == 60
    sched = build_set_charging_profile(evse_id=1, transaction_id="tx", limit_w=0.0,
                                       wall_s=WALL_S, validity_s=2.5, profile_id_base=1000,
                                       stack_level=1)["chargingProfile"]["chargingSchedule"][0]
    assert sched["duration"] == 62  # whole seconds, still ends by validTo

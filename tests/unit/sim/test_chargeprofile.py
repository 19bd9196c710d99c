"""Charging profile interpretation (pure: fake monotonic and wall times)."""

from __future__ import annotations

from typing import Any

import pytest

from sim_chargers.chargeprofile import ProfileRejected, accept_profile, clear_matches

NOW_S, WALL_S = 1000.0, 1_700_000_000.0  # 2023-11-14T22:13:20Z
TX = "tx-1"


def request(periods: list[tuple[float, float]], *, unit: str = "W", evse: int = 1,
            purpose: str = "TxProfile", tx: str | None = TX, **extra: Any) -> dict[str, Any]:
    sched: dict[str, Any] = {"id": 1, "chargingRateUnit": unit, "chargingSchedulePeriod": [
        {"startPeriod": s, "limit": lim} for s, lim in periods]}
    prof: dict[str, Any] = {"id": 7, "stackLevel": 1, "chargingProfilePurpose": purpose,
                            "chargingProfileKind": "Relative", "chargingSchedule": [sched]}
    if tx is not None:
        prof["transactionId"] = tx
    for key in ("duration", "startSchedule"):
        if key in extra:
            sched[key] = extra.pop(key)
    prof.update(extra)
    return {"evseId": evse, "chargingProfile": prof}


def accept(req: dict[str, Any]) -> Any:
    return accept_profile(req, evse_id=1, transaction_id=TX, now_s=NOW_S, wall_s=WALL_S)


def test_period_in_force_is_the_latest_started_one() -> None:
    prof = accept(request([(0, 1000.0), (10, -2000.0)]))
    assert prof.limit_at(NOW_S) == 1000.0
    assert prof.limit_at(NOW_S + 9.9) == 1000.0
    assert prof.limit_at(NOW_S + 10) == -2000.0
    assert prof.next_change_s(NOW_S) == NOW_S + 10
    assert prof.next_change_s(NOW_S + 10) is None


def test_duration_lapses_the_profile() -> None:
    prof = accept(request([(0, -5000.0)], duration=30))
    assert prof.limit_at(NOW_S + 29.9) == -5000.0
    assert prof.limit_at(NOW_S + 30) is None
    assert prof.next_change_s(NOW_S) == NOW_S + 30


def test_valid_to_lapses_the_profile_in_wall_time() -> None:
    prof = accept(request([(0, 3000.0)], validTo="2023-11-14T22:13:25Z"))
    assert prof.expires_s == pytest.approx(NOW_S + 5)
    assert prof.limit_at(NOW_S + 5.01) is None


def test_start_schedule_and_valid_from_shift_the_schedule() -> None:
    prof = accept(request([(0, 100.0), (5, 200.0)], startSchedule="2023-11-14T22:13:10Z",
                          validFrom="2023-11-14T22:13:22+00:00"))
    assert prof.limit_at(NOW_S) is None  # before validFrom
    assert prof.limit_at(NOW_S + 2) == 200.0  # schedule started 10 s ago


def test_ampere_schedules_are_converted_at_230_v_per_phase() -> None:
    req = request([(0, 16.0)], unit="A")
    req["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]["numberPhases"] = 1
    assert accept(req).limit_at(NOW_S) == pytest.approx(16 * 230.0)
    assert accept(request([(0, 10.0)], unit="A")).limit_at(NOW_S) == pytest.approx(6900.0)


@pytest.mark.parametrize(("req", "reason"), [
    (request([(0, 1.0)], tx="other"), "TxNotFound"),
    (request([(0, 1.0)], tx=None), "TxNotFound"),
    (request([(0, 1.0)], evse=2), "UnknownEvse"),
    (request([(0, 1.0)], purpose="ChargingStationMaxProfile", tx=None), "UnsupportedPurpose"),
    (request([(0, 1.0)], chargingProfileKind="Recurring"), "UnsupportedKind"),
    (request([(0, 1.0), (0, 2.0)]), "InvalidSchedule"),
])
def test_profiles_this_station_cannot_apply_are_rejected(req: dict[str, Any],
                                                         reason: str) -> None:
    with pytest.raises(ProfileRejected) as rej:
        accept(req)
    assert rej.value.reason_code == reason


def test_tx_default_profile_for_evse_0_is_accepted() -> None:
    prof = accept(request([(0, 500.0)], evse=0, purpose="TxDefaultProfile", tx=None))
    assert prof.limit_at(NOW_S) == 500.0


def test_clear_matches_by_id_or_criteria() -> None:
    prof = accept(request([(0, 1.0)]))
    assert clear_matches({}, prof, 1)
    assert clear_matches({"chargingProfileId": 7}, prof, 1)
    assert not clear_matches({"chargingProfileId": 8}, prof, 1)
    assert clear_matches({"chargingProfileCriteria": {"chargingProfilePurpose": "TxProfile"}},
                         prof, 1)
    assert not clear_matches({"chargingProfileCriteria": {"evseId": 2}}, prof, 1)
    assert not clear_matches({"chargingProfileCriteria": {"stackLevel": 3}}, prof, 1)

"""OCPP 2.1 operation modes -> the signed limit the simulated station follows (pure)."""

import pytest

from sim_chargers.chargeprofile import ProfileRejected
from sim_chargers.station_modes import as_limits, period_power


@pytest.mark.parametrize(("period", "power"), [
    ({"startPeriod": 0, "limit": 3000.0}, 3000.0),  # absent mode = ChargingOnly
    ({"startPeriod": 0, "operationMode": "ChargingOnly", "limit": 0.0}, 0.0),
    ({"startPeriod": 0, "operationMode": "CentralSetpoint", "setpoint": -7300.0}, -7300.0),
    ({"startPeriod": 0, "operationMode": "CentralSetpoint", "setpoint": 4000.0}, 4000.0),
    ({"startPeriod": 0, "operationMode": "CentralSetpoint", "setpoint": -9000.0,
      "dischargeLimit": -5000.0}, -5000.0),  # bounded by dischargeLimit
    ({"startPeriod": 0, "operationMode": "CentralSetpoint", "setpoint": 9000.0,
      "limit": 6000.0}, 6000.0),  # bounded by limit
    ({"startPeriod": 0, "operationMode": "Idle"}, 0.0),
])
def test_each_supported_mode_gives_a_signed_power(period, power):
    assert period_power(period) == power


@pytest.mark.parametrize(("period", "reason"), [
    ({"startPeriod": 0, "operationMode": "LocalFrequency"}, "UnsupportedOpMode"),
    ({"startPeriod": 0, "operationMode": "CentralSetpoint"}, "InvalidSchedule"),
    ({"startPeriod": 0}, "InvalidSchedule"),
])
def test_unsupported_or_incomplete_periods_are_rejected(period, reason):
    with pytest.raises(ProfileRejected) as exc:
        period_power(period)
    assert exc.value.reason_code == reason
    assert len(reason) <= 20  # statusInfo.reasonCode


def test_as_limits_rewrites_every_period_and_keeps_the_rest():
    payload = {"evseId": 1, "chargingProfile": {
        "id": 1, "stackLevel": 1, "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute", "validTo": "2026-01-01T00:00:00Z",
        "chargingSchedule": [{"id": 1, "chargingRateUnit": "A", "chargingSchedulePeriod": [
            {"startPeriod": 0, "operationMode": "CentralSetpoint", "setpoint": -10.0,
             "numberPhases": 1},
            {"startPeriod": 60, "limit": 16.0}]}]}}
    out = as_limits(payload)
    assert out["chargingProfile"]["validTo"] == "2026-01-01T00:00:00Z"
    assert out["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": -10.0, "numberPhases": 1},
        {"startPeriod": 60, "limit": 16.0}]
    assert "operationMode" in payload["chargingProfile"]["chargingSchedule"][0][
        "chargingSchedulePeriod"][0]  # the input is not modified

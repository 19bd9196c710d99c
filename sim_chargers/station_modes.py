"""OCPP 2.1 operation modes -> the signed limits the simulated station follows.

PURE: a schema-valid 2.1 SetChargingProfile request in, the same request with every
chargingSchedulePeriod reduced to `startPeriod`, `limit` (W or A, signed) and `numberPhases`
out, so sim_chargers/chargeprofile.py (written for 2.0.1) interprets it unchanged. No I/O, no
clock reads.

Per period (2.1 ChargingSchedulePeriodType):
- operationMode absent or ChargingOnly: `limit` as in 2.0.1 (required here).
- CentralSetpoint: the signed `setpoint` (negative discharges), kept within `limit` and
  `dischargeLimit` (<= 0) when they are given ("the overshoot must remain within these values").
- Idle: 0 (no power transfer).
- any other mode (ExternalSetpoint, LocalFrequency, ...): the profile is Rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sim_chargers.chargeprofile import ProfileRejected

CENTRAL_SETPOINT = "CentralSetpoint"
CHARGING_ONLY = "ChargingOnly"
IDLE = "Idle"
UNSUPPORTED_MODE = "UnsupportedOpMode"  # statusInfo.reasonCode, <= 20 characters
INVALID_SCHEDULE = "InvalidSchedule"


def period_power(period: Mapping[str, Any]) -> float:
    """The signed value a station follows in one 2.1 period (chargingRateUnit units).

    Raises:
        ProfileRejected: the mode is not supported, or its required value is missing.
    """
    mode = period.get("operationMode", CHARGING_ONLY)
    if mode == CHARGING_ONLY:
        if "limit" not in period:
            raise ProfileRejected(INVALID_SCHEDULE)
        return float(period["limit"])
    if mode == IDLE:
        return 0.0
    if mode != CENTRAL_SETPOINT:
        raise ProfileRejected(UNSUPPORTED_MODE)
    if "setpoint" not in period:
        raise ProfileRejected(INVALID_SCHEDULE)
    value = float(period["setpoint"])
    if "limit" in period:
        value = min(value, float(period["limit"]))
    if "dischargeLimit" in period:
        value = max(value, float(period["dischargeLimit"]))
    return value


def as_limits(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The request with each period's operation mode resolved to a signed `limit`.

    Raises:
        ProfileRejected: a period's mode is not supported or lacks its value.
        KeyError, TypeError: the payload is malformed (the caller answers CALLERROR).
    """
    prof = payload["chargingProfile"]
    schedules = []
    for schedule in prof["chargingSchedule"]:
        periods = []
        for period in schedule["chargingSchedulePeriod"]:
            out = {"startPeriod": period["startPeriod"], "limit": period_power(period)}
            if "numberPhases" in period:
                out["numberPhases"] = period["numberPhases"]
            periods.append(out)
        schedules.append({**schedule, "chargingSchedulePeriod": periods})
    return {**payload, "chargingProfile": {**prof, "chargingSchedule": schedules}}

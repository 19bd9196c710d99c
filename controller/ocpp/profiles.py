"""SetChargingProfile builders (OCPP 2.0.1 and 2.1): a readable dict path and a fast path.

Every profile is a TxProfile, Absolute, in W, with one period starting at 0, and lapses by itself
(`duration` and `validTo`, SPEC §2.4) so a charger falls back to its baseline if we go silent.
The period carries one signed power value in W (one decimal at most, SPEC §2.4), in one of two
shapes:
- `{"startPeriod": 0, "limit": L}`: every 2.0.1 profile (a negative L is the legacy discharge
  convention) and 2.1 profiles to stations that may not discharge (operationMode absent =
  ChargingOnly, L >= 0).
- `{"startPeriod": 0, "operationMode": "CentralSetpoint", "setpoint": S}`: 2.1 profiles to
  stations that may discharge (2.1 Part 2 §Q, central setpoint; S < 0 discharges). `limit` is
  optional in this mode (2.1 schema) and is left out, as is `dischargeLimit`: bounds from the
  EVSE rating repeat what the station enforces anyway, and bounds equal to S would forbid the
  small overshoot the mode allows. The frame keeps the same size and per-send cost as the 2.0.1 one.
Its startSchedule lies SCHEDULE_BACKDATE_S in the past so a charger whose clock lags still
applies it at once.
Its id is stable per EVSE so a new profile replaces the previous one at the same stackLevel
(K01.FR.05). No I/O and no clock reads here: wall time comes in as `wall_s`.
"""

from __future__ import annotations

from typing import Any

import orjson

from controller.ocpp.rpc import CALL
from controller.ocpp.schemas import Validators
from controller.timefmt import rfc3339_utc

__all__ = ["ACTION", "CENTRAL_SETPOINT", "SCHEDULE_BACKDATE_S", "ProfileFrameEncoder",
           "build_set_charging_profile", "profile_id", "rfc3339_utc", "round_limit_w",
           "schedule_duration_s", "schedule_period"]

ACTION = "SetChargingProfile"
CENTRAL_SETPOINT = "CentralSetpoint"  # OCPP 2.1 OperationModeEnumType

# startSchedule is backdated by this much: a charger whose clock lags ours by up to this long
# still sees a schedule that has already started (otherwise it would hold its old limit until
# its own clock catches up). validTo stays at now + validity, so the moment the profile lapses
# does not move; the schedule's duration grows by the backdate to end at that same moment.
# 60 s covers chargers synced by NTP or by our Heartbeat currentTime (seconds of drift between
# syncs); a larger skew is a misconfigured station, not something to paper over.
SCHEDULE_BACKDATE_S = 60


def round_limit_w(limit_w: float) -> float:
    """`limit` accepts at most one decimal (SPEC §2.4); -0.0 becomes 0.0."""
    return round(limit_w, 1) + 0.0


def schedule_duration_s(validity_s: float) -> int:
    """Whole seconds from the backdated startSchedule to validTo (= now + validity)."""
    return int(validity_s + SCHEDULE_BACKDATE_S)


def profile_id(evse_id: int, profile_id_base: int) -> int:
    """Stable chargingProfile id per EVSE so a new profile replaces the old one (K01.FR.05)."""
    return profile_id_base + evse_id


def schedule_period(limit_w: float, *, central_setpoint: bool = False) -> dict[str, Any]:
    """The one chargingSchedulePeriod: `limit`, or (2.1) CentralSetpoint with `setpoint`."""
    if central_setpoint:
        return {"startPeriod": 0, "operationMode": CENTRAL_SETPOINT,
                "setpoint": round_limit_w(limit_w)}
    return {"startPeriod": 0, "limit": round_limit_w(limit_w)}


def build_set_charging_profile(*, evse_id: int, transaction_id: str, limit_w: float,
                               wall_s: float, validity_s: float, profile_id_base: int,
                               stack_level: int, central_setpoint: bool = False,
                               ) -> dict[str, Any]:
    """Build a SetChargingProfileRequest payload (the reference, readable path).

    Args:
        evse_id: OCPP evse.id (>= 1).
        transaction_id: the EVSE's active transaction (TxProfile needs one, K01.FR.03).
        limit_w: signed power limit in W (negative = legacy discharge convention).
        wall_s: Unix time now; startSchedule is SCHEDULE_BACKDATE_S before it (clock skew).
        validity_s: profile lifetime from now: `validTo` = now + this, and `duration` (whole
            seconds) runs from the backdated start to about the same moment.
        profile_id_base: chargingProfile.id = base + evse_id.
        stack_level: stackLevel of our profiles.
        central_setpoint: OCPP 2.1 only: the period is operationMode CentralSetpoint with
            the signed `setpoint` instead of `limit` (for stations that may discharge).
    """
    pid = profile_id(evse_id, profile_id_base)
    return {
        "evseId": evse_id,
        "chargingProfile": {
            "id": pid,
            "stackLevel": stack_level,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute",
            "validTo": rfc3339_utc(wall_s + validity_s),
            "transactionId": transaction_id,
            "chargingSchedule": [{
                "id": pid,
                "startSchedule": rfc3339_utc(wall_s - SCHEDULE_BACKDATE_S),
                "duration": schedule_duration_s(validity_s),
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [schedule_period(
                    limit_w, central_setpoint=central_setpoint)],
            }],
        },
    }


class ProfileFrameEncoder:
    """Fast path: SetChargingProfile CALL frames from a template, validated once per shape.

    The frame text equals `encode_call(uid, ACTION, build_set_charging_profile(...))` byte for
    byte (tests prove it). The first frame for each EVSE is checked against the schema; later
    frames only change values whose types the template fixes, so they are not re-validated.
    With `central_setpoint` (OCPP 2.1 stations that may discharge) the period is CentralSetpoint
    with `setpoint`; `validators` must then be the 2.1 ones.
    """

    def __init__(self, *, validity_s: float, profile_id_base: int, stack_level: int,
                 validators: Validators | None = None, central_setpoint: bool = False) -> None:
        self._period_head = (f'"startPeriod":0,"operationMode":"{CENTRAL_SETPOINT}","setpoint":'
                             if central_setpoint else '"startPeriod":0,"limit":')
        self.central_setpoint = central_setpoint
        self._validity_s = validity_s
        self._duration = schedule_duration_s(validity_s)
        self._base = profile_id_base
        self._stack = stack_level
        self._validators = validators
        self._templates: dict[int, tuple[str, str, str, str, str]] = {}

    def _template(self, evse_id: int) -> tuple[str, str, str, str, str]:
        pid = profile_id(evse_id, self._base)
        parts = (
            f'[{CALL},',
            f',"{ACTION}",{{"evseId":{evse_id},"chargingProfile":{{"id":{pid},'
            f'"stackLevel":{self._stack},"chargingProfilePurpose":"TxProfile",'
            f'"chargingProfileKind":"Absolute","validTo":"',
            '","transactionId":',
            f',"chargingSchedule":[{{"id":{pid},"startSchedule":"',
            f'","duration":{self._duration},"chargingRateUnit":"W",'
            f'"chargingSchedulePeriod":[{{{self._period_head}',
        )
        self._templates[evse_id] = parts
        return parts

    def encode(self, unique_id: str, evse_id: int, transaction_id: str, limit_w: float,
               wall_s: float) -> str:
        """Return the CALL frame text for one setpoint.

        Raises:
            ValidationError: only on the first frame of an EVSE, if the shape is invalid.
        """
        tpl = self._templates.get(evse_id)
        first = tpl is None
        if tpl is None:
            tpl = self._template(evse_id)
        dumps = orjson.dumps
        text = "".join((
            tpl[0], dumps(unique_id).decode(), tpl[1], rfc3339_utc(wall_s + self._validity_s),
            tpl[2], dumps(transaction_id).decode(), tpl[3],
            rfc3339_utc(wall_s - SCHEDULE_BACKDATE_S), tpl[4],
            dumps(round_limit_w(limit_w)).decode(), "}]}]}}]",
        ))
        if first and self._validators is not None:
            try:
                self._validators.validate(ACTION, "request", orjson.loads(text)[3])
            except Exception:
                del self._templates[evse_id]
                raise
        return text

"""Charging profile interpretation for the simulated station (OCPP 2.0.1 SetChargingProfile).

PURE: payload dicts in, an ActiveProfile out; time is passed in (`now_s` monotonic, `wall_s`
Unix). No I/O, no asyncio, no clock reads.

Model (a lean station, documented choices):
- One profile slot per EVSE: a new accepted profile replaces the previous one (no stacking).
- Purposes: TxProfile for our EVSE and our transaction (K01.FR.03: a TxProfile needs the
  transaction it names) and TxDefaultProfile (evseId 0 or ours). Anything else is Rejected.
- chargingProfileKind Absolute/Relative: the schedule starts at `startSchedule` if given,
  else at the receipt time (for a profile sent mid-transaction the receipt is the
  situation-specific start point). Recurring is Rejected.
- The period in force is the last one with startPeriod <= elapsed; before the first one, before
  `validFrom` and after the profile lapses (the earlier of `validTo` and start + `duration`) there
  is no limit and the EVSE falls back to its baseline (SPEC §2.4 safety requirement).
- chargingRateUnit "A" is converted: W = A x 230 V x numberPhases (default 3), per period.
- A negative limit (W) is the legacy 2.0.1 discharge convention (SPEC §2.4).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

NOMINAL_VOLTAGE_V = 230.0  # EU low-voltage phase voltage (EN 50160) for "A" schedules
DEFAULT_PHASES = 3  # K01: numberPhases absent means 3 for AC


class ProfileRejected(Exception):  # noqa: N818 - an outcome, not a bug
    """The profile is well-formed but this station does not accept it."""

    def __init__(self, reason_code: str) -> None:
        super().__init__(reason_code)
        self.reason_code = reason_code  # statusInfo.reasonCode (<= 20 chars)


@dataclass(frozen=True, slots=True)
class ActiveProfile:
    """An accepted profile in monotonic time."""

    profile_id: int
    purpose: str
    stack_level: int
    start_s: float  # schedule start (startPeriod 0), monotonic
    offsets_s: tuple[float, ...]  # startPeriod of each period, increasing
    limits_w: tuple[float, ...]
    valid_from_s: float  # -inf when absent
    expires_s: float  # inf when neither validTo nor duration

    def limit_at(self, now_s: float) -> float | None:
        """Limit in force at now_s (W, signed), or None when the profile does not apply."""
        if now_s < self.valid_from_s or now_s >= self.expires_s:
            return None
        i = bisect.bisect_right(self.offsets_s, now_s - self.start_s) - 1
        return self.limits_w[i] if i >= 0 else None

    def next_change_s(self, now_s: float) -> float | None:
        """The next monotonic time after now_s at which limit_at can change (None: never)."""
        cands = [self.valid_from_s, self.expires_s]
        cands += [self.start_s + off for off in self.offsets_s]
        later = [c for c in cands if c > now_s and math.isfinite(c)]
        return min(later) if later else None


def parse_time(value: Any, now_s: float, wall_s: float) -> float:
    """RFC 3339 date-time (wall) -> monotonic seconds. Raises ValueError or TypeError."""
    if not isinstance(value, str):
        raise TypeError("date-time must be a string")
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return now_s + (dt.timestamp() - wall_s)


def _limits(schedule: Mapping[str, Any]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    unit = schedule["chargingRateUnit"]
    if unit not in ("W", "A"):
        raise ProfileRejected("UnsupportedRateUnit")
    offsets: list[float] = []
    limits: list[float] = []
    for period in schedule["chargingSchedulePeriod"]:
        start = float(period["startPeriod"])
        limit = float(period["limit"])
        if not math.isfinite(limit) or (offsets and start <= offsets[-1]):
            raise ProfileRejected("InvalidSchedule")
        if unit == "A":
            limit *= NOMINAL_VOLTAGE_V * int(period.get("numberPhases", DEFAULT_PHASES))
        offsets.append(start)
        limits.append(limit)
    if not offsets:
        raise ProfileRejected("InvalidSchedule")
    return tuple(offsets), tuple(limits)


def accept_profile(payload: Mapping[str, Any], *, evse_id: int, transaction_id: str | None,
                   now_s: float, wall_s: float) -> ActiveProfile:
    """Interpret a schema-valid SetChargingProfile request for this EVSE.

    Raises:
        ProfileRejected: the station answers Rejected with this reason code.
        KeyError, ValueError, TypeError: the payload is malformed (caller answers CALLERROR).
    """
    req_evse = int(payload["evseId"])
    prof = payload["chargingProfile"]
    purpose = prof["chargingProfilePurpose"]
    if purpose == "TxProfile":
        if req_evse != evse_id:
            raise ProfileRejected("UnknownEvse")
        if transaction_id is None or prof.get("transactionId") != transaction_id:
            raise ProfileRejected("TxNotFound")
    elif purpose == "TxDefaultProfile":
        if req_evse not in (0, evse_id):
            raise ProfileRejected("UnknownEvse")
    else:
        raise ProfileRejected("UnsupportedPurpose")
    if prof["chargingProfileKind"] == "Recurring":
        raise ProfileRejected("UnsupportedKind")
    schedule = prof["chargingSchedule"][0]
    offsets, limits = _limits(schedule)
    start = (parse_time(schedule["startSchedule"], now_s, wall_s)
             if "startSchedule" in schedule else now_s)
    expires = math.inf
    if "duration" in schedule:
        expires = start + float(schedule["duration"])
    if "validTo" in prof:
        expires = min(expires, parse_time(prof["validTo"], now_s, wall_s))
    valid_from = parse_time(prof["validFrom"], now_s, wall_s) if "validFrom" in prof else -math.inf
    return ActiveProfile(int(prof["id"]), purpose, int(prof["stackLevel"]), start, offsets,
                         limits, valid_from, expires)


def clear_matches(payload: Mapping[str, Any], profile: ActiveProfile, evse_id: int) -> bool:
    """Whether a ClearChargingProfile request selects `profile` (K10)."""
    pid = payload.get("chargingProfileId")
    if pid is not None:
        return bool(pid == profile.profile_id)
    crit = payload.get("chargingProfileCriteria") or {}
    if crit.get("evseId", evse_id) not in (0, evse_id):
        return False
    if crit.get("chargingProfilePurpose", profile.purpose) != profile.purpose:
        return False
    return bool(crit.get("stackLevel", profile.stack_level) == profile.stack_level)

"""Wall-clock timestamps as text: RFC 3339 UTC with milliseconds, as OCPP and our telemetry use.

Pure formatting: the time comes in as Unix seconds (`wall_s`); no clock reads, no I/O.
"""

from __future__ import annotations

import math
import time
from datetime import datetime

_SECONDS_CACHE: dict[int, str] = {}  # whole second -> "YYYY-MM-DDTHH:MM:SS" (strftime is slow)
_SECONDS_CACHE_MAX = 256


def rfc3339_utc(wall_s: float) -> str:
    """Unix seconds -> RFC 3339 UTC with milliseconds, e.g. "2026-11-27T04:00:00.123Z"."""
    sec, milli = divmod(math.floor(wall_s * 1000.0), 1000)
    head = _SECONDS_CACHE.get(sec)
    if head is None:
        if len(_SECONDS_CACHE) >= _SECONDS_CACHE_MAX:
            _SECONDS_CACHE.clear()
        head = _SECONDS_CACHE[sec] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{head}.{milli:03d}Z"


def parse_rfc3339_s(text: str) -> float | None:
    """RFC 3339 / ISO 8601 date-time with an offset ("Z" or "+01:00") -> Unix seconds.

    None for text that is not one, or that has no offset (a local time of unknown zone).
    """
    try:
        stamp = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    if stamp.tzinfo is None:
        return None
    return stamp.timestamp()

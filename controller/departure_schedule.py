"""Daily departure times ("06:30" at the site) as seconds from now: a depot's vans leave daily.

Pure: wall time comes in as Unix seconds (`wall_s`), the site's time zone as a ZoneInfo; no
clock reads, no I/O. The caller (the daemon) turns the result into a monotonic departure time
for control.departure. Local time follows the zone's rules, so a 06:30 departure stays at
06:30 on the clock across daylight-saving changes; on a spring-forward day a time inside the
skipped hour is taken after the jump (fold 0), on a fall-back day the first of the two.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class ScheduleError(ValueError):
    """A departure time that is not "HH:MM" (24 h)."""


def parse_hhmm(text: str) -> tuple[int, int]:
    """"06:30" -> (6, 30).

    Raises:
        ScheduleError: not a 24-hour "HH:MM" time.
    """
    m = _HHMM.match(text)
    if m is None:
        raise ScheduleError(f"expected a 24-hour time \"HH:MM\", got {text!r}")
    return int(m.group(1)), int(m.group(2))


def seconds_until(wall_s: float, hhmm: str, zone: ZoneInfo) -> float:
    """Seconds from `wall_s` to the next `hhmm` on the site's clock (0 < result <= ~1 day)."""
    hour, minute = parse_hhmm(hhmm)
    now = datetime.fromtimestamp(wall_s, zone)
    for days in (0, 1, 2):  # 2: a day whose hhmm fell into a skipped hour
        day = (now + timedelta(days=days)).date()
        local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
        at_s = local.timestamp()
        if at_s > wall_s:
            return at_s - wall_s
    raise AssertionError("unreachable: a departure exists within two days")  # pragma: no cover

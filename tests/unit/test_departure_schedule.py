"""controller/departure_schedule.py: daily departures on the site's clock."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from controller.departure_schedule import ScheduleError, parse_hhmm, seconds_until

LONDON = ZoneInfo("Europe/London")
UTC = ZoneInfo("UTC")


def wall(text: str, zone: ZoneInfo = LONDON) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


@pytest.mark.parametrize(("now", "hhmm", "hours"), [
    ("2026-11-27 04:00", "06:30", 2.5),  # later today
    ("2026-11-27 07:00", "06:30", 23.5),  # tomorrow
    ("2026-11-27 06:30", "06:30", 24.0),  # exactly now: the next one
])
def test_the_next_departure_on_the_site_clock(now: str, hhmm: str, hours: float) -> None:
    assert seconds_until(wall(now), hhmm, LONDON) == pytest.approx(hours * 3600)


def test_a_departure_stays_at_its_clock_time_across_daylight_saving() -> None:
    # clocks go forward at 01:00 UTC on 29 March 2026: 22:00 to 06:30 is 7.5 h on the
    # clock but 7.5 h - 1 h = 6.5 h of real time; back on 25 October: 8.5 h
    assert seconds_until(wall("2026-03-28 23:00"), "06:30", LONDON) == pytest.approx(6.5 * 3600)
    assert seconds_until(wall("2026-10-24 23:00"), "06:30", LONDON) == pytest.approx(8.5 * 3600)
    assert seconds_until(wall("2026-03-28 23:00", UTC), "06:30", UTC) == pytest.approx(
        7.5 * 3600)


@pytest.mark.parametrize("bad", ["6:30", "24:00", "06:60", "0630", "", "06:30:00"])
def test_only_24_hour_hh_mm_is_a_departure_time(bad: str) -> None:
    with pytest.raises(ScheduleError, match="HH:MM"):
        parse_hhmm(bad)
    assert parse_hhmm("23:59") == (23, 59)

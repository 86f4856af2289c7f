"""Deadlines in working days: weekends and Vietnamese public holidays (Tết included) are skipped."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays


@cache
def _holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("VN", years=[year])


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _holidays(day.year)


def add_working_days(start: datetime, days: int, tz: ZoneInfo) -> datetime:
    """The end (23:59:59 local) of the `days`-th working day after `start`'s local date."""
    day = start.astimezone(tz).date()
    remaining = days
    while remaining > 0:
        day += timedelta(days=1)
        if is_working_day(day):
            remaining -= 1
    return datetime.combine(day, time(23, 59, 59), tzinfo=tz)


def working_days_between(start: datetime, end: datetime, tz: ZoneInfo) -> int:
    """Working days after `start`'s local date up to and including `end`'s (0 if end is not later)."""
    first, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    count, day = 0, first
    while day < last:
        day += timedelta(days=1)
        count += is_working_day(day)
    return count

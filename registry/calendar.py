"""China's calendar, the courts' own: China Standard Time days and working days.

Every "today", midnight and deadline in the registry is counted here, so that a listing's
dates, a bank's daily quota, the feeds' validators and the notices' deadlines agree on
when a day starts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from registry.timeutil import utcnow

CHINA_TIME = ZoneInfo("Asia/Shanghai")


def china_date(moment: datetime) -> date:
    """The date in China at `moment` (an aware instant)."""
    return moment.astimezone(CHINA_TIME).date()


def today_in_china() -> date:
    return china_date(utcnow())


def china_midnight(day: date) -> datetime:
    """The instant (UTC) at which `day` starts in China."""
    return datetime.combine(day, time(), CHINA_TIME).astimezone(UTC)


def seconds_to_next_china_day(now: datetime) -> int:
    """Whole seconds until the next China day starts, at least 1 (a Retry-After)."""
    midnight = china_midnight(china_date(now) + timedelta(days=1))
    return max(1, int((midnight - now).total_seconds()) + 1)


def add_working_days(start: datetime, days: int) -> datetime:
    """`start` moved on by `days` working days, Saturdays and Sundays not counting.

    Public holidays and the weekend days the State Council makes working days (调休) are
    not modelled yet: they come with the lawful-listings issue, which adds China's official
    working-day calendar here.
    """
    moment = start
    remaining = days
    while remaining > 0:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            remaining -= 1
    return moment

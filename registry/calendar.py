"""China's calendar, the courts' own: China Standard Time days and working days.

Every "today", midnight and deadline in the registry is counted here, so that a listing's
dates, a bank's daily quota, the feeds' validators and every statutory deadline (removals,
assistance notices, corrections) agree on when a day starts and which days are worked.
Working days come from the `chinesecalendar` package (State Council holiday notices,
including the weekend days made working days, 调休).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

from registry.timeutil import utcnow

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class Deadline:
    """The last day on which something must be done, and whether it is only provisional.

    `provisional` is true when a day counted lies in a year the calendar data does not cover
    yet (the State Council announces next year's holidays late in the year): such days are
    counted Monday to Friday less the holidays whose dates are known without the year's
    announcement, and the operator is alerted until the calendar is upgraded.
    """

    due: date
    provisional: bool


def covers(day: date) -> bool:
    """Whether the installed calendar data knows `day`'s holidays and 调休 working days."""
    try:
        chinese_calendar.is_workday(day)
    except NotImplementedError:
        return False
    return True


def last_covered_year() -> int:
    """The last year the installed calendar data covers."""
    latest: date = max(chinese_calendar.holidays)
    return latest.year


# The statutory holidays on fixed solar dates (全国年节及纪念日放假办法, as amended in 2024):
# 元旦 1 January, 劳动节 1-2 May, 国庆节 1-3 October. 清明 is the solar term's day; the lunar
# festivals (春节, 端午, 中秋) and the year's 调休 are known only from the announcement.
_FIXED_HOLIDAYS = frozenset({(1, 1), (5, 1), (5, 2), (10, 1), (10, 2), (10, 3)})


def is_working_day(day: date) -> bool:
    """China's official working days: Monday to Friday except public holidays, plus the
    weekend days made working days (调休). A day the data does not cover counts Monday to
    Friday, except the holidays whose dates are fixed and 清明 (see `Deadline.provisional`)."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5 and (day.month, day.day) not in _FIXED_HOLIDAYS and not _qingming(day)


def _qingming(day: date) -> bool:
    if day.month != 4:
        return False
    try:
        return any(name == "清明" for _, name in chinese_calendar.get_solar_terms(day, day))
    except (NotImplementedError, ValueError, KeyError):
        return False


def add_working_days(start: date, days: int) -> Deadline:
    """The `days`-th working day after `start`: the starting day does not count (Civil Code
    Art. 201), so three working days from a Friday before an ordinary weekend end on the
    Wednesday. With `days` 0 the deadline is `start` itself."""
    if days < 0:
        raise ValueError("days must not be negative")
    day = start
    provisional = False
    remaining = days
    while remaining > 0:
        day += timedelta(days=1)
        if not covers(day):
            provisional = True
        if is_working_day(day):
            remaining -= 1
    if provisional:
        # Operators watch for this line and the registry_calendar_* metrics on /metrics.
        log.warning(
            "deadline %s counted Monday to Friday less the fixed-date holidays: the chinesecalendar "
            "data covers up to %d; "
            "upgrade it once the State Council has announced the holidays",
            day.isoformat(),
            last_covered_year(),
        )
    return Deadline(due=day, provisional=provisional)


def working_days_between(start: date, end: date) -> int:
    """How many working days after `start` up to and including `end` (0 when `end` <= `start`)."""
    count = 0
    day = start
    while day < end:
        day += timedelta(days=1)
        count += is_working_day(day)
    return count


def first_uncovered_day() -> date:
    """The first day the installed calendar data does not cover."""
    return date(last_covered_year() + 1, 1, 1)


def end_of_china_day(day: date) -> datetime:
    """The instant (UTC) at which `day` ends in China: a deadline day is whole."""
    return china_midnight(day + timedelta(days=1))

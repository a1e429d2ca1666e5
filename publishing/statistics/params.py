"""The statistics' query: period, interval, filters, breakdown. Parsed from text here, so that
each bad value answers its own code and points at its parameter (`/query/<name>`)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any, cast

from litestar.params import QueryParameter

from publishing.statistics.queries import ANY_SPECIAL, BREAKDOWNS, EPOCH, Filters, Interval, Period
from registry.calendar import today_in_china
from registry.http.openapi import query
from registry.identity.identifiers import PROVINCES, IdentifierError, normalise_court_code
from registry.listings.schemas import SPECIAL_SUBJECTS
from registry.problems import Problem
from registry.text import forbidden_character

INTERVALS = ("day", "week", "month")
KINDS = ("person", "organization")
# At most this many points in one answer: a year of days, ten years of weeks or months.
MAX_POINTS = {"day": 366, "week": 530, "month": 240}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


@dataclass(frozen=True)
class StatisticsQuery:
    period: Period
    filters: Filters
    by: str | None = None

    def params(self, **changes: str | None) -> dict[str, str]:
        """The query string that asks this again (with `changes`), for links and charts."""
        values: dict[str, str | None] = {
            "from": self.period.start.isoformat(),
            "to": self.period.end.isoformat(),
            "interval": self.period.interval,
            **self.filters.as_dict(),
            "by": self.by,
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v is not None}


def _invalid(name: str, code: str, detail: str) -> Problem:
    return Problem(400, code, detail, pointer=f"/query/{name}")


def _folded(raw: str) -> str:
    """NFKC, as the search's parameters and the court code are read: full-width digits and
    letters are their ASCII selves (other scripts' digits stay, and are refused)."""
    return raw if raw.isascii() else unicodedata.normalize("NFKC", raw)


def _date(raw: str | None, name: str) -> date | None:
    if raw is None or raw == "":
        return None
    raw = _folded(raw)
    if not _DATE.fullmatch(raw):
        raise _invalid(name, "invalid_date", f"{name} is a date YYYY-MM-DD")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _invalid(name, "invalid_date", f"{name} is not a calendar date") from None


def _choice(raw: str | None, name: str, choices: tuple[str, ...], code: str) -> str | None:
    if raw is None or raw == "":
        return None
    raw = _folded(raw)
    if raw not in choices:
        raise _invalid(name, code, f"{name} must be one of {', '.join(choices)}")
    return raw


def parse_query(
    *,
    start: str | None,
    end: str | None,
    interval: str | None,
    province: str | None,
    court: str | None,
    kind: str | None,
    special_subject: str | None,
    by: str | None = None,
    today: date | None = None,
    series: bool = True,
) -> StatisticsQuery:
    """Defaults: the twelve months up to today (China), by month. `series`: the answer has a
    point per interval, so their number is bounded (a breakdown's period is not)."""
    today = today or today_in_china()
    chosen = cast(Interval, _choice(interval, "interval", INTERVALS, "unknown_interval") or "month")
    last = _date(end, "to") or today
    first = _date(start, "from")
    # No listing or removal is dated before EPOCH or after today; the bounds also keep the
    # month and week arithmetic below inside the calendar (years 1 to 9999).
    for value, name in ((first, "from"), (last, "to")):
        if value is not None and not EPOCH <= value <= today:
            raise _invalid(
                name,
                "period_invalid",
                f"{name} must lie between {EPOCH.isoformat()} and today in China ({today.isoformat()})",
            )
    if first is None:
        # From the first day of the month eleven months back: twelve months, this one last.
        month = last.year * 12 + last.month - 1 - 11
        first = max(EPOCH, date(month // 12, month % 12 + 1, 1))
    if last < first:
        raise _invalid("to", "period_invalid", "to is before from")
    points = _points(first, last, chosen)
    if series and points > MAX_POINTS[chosen]:
        raise _invalid(
            "interval",
            "period_too_long",
            f"at most {MAX_POINTS[chosen]} points by {chosen}: choose a longer interval or a shorter period",
        )
    court_code = None
    if court:
        if forbidden_character(court) is not None:
            raise _invalid("court", "invalid_court_code", "a court code holds no control or bidi character")
        try:
            court_code = normalise_court_code(court)
        except IdentifierError as exc:
            raise _invalid("court", "invalid_court_code", str(exc)) from None
    filters = Filters(
        province=_choice(province, "province", tuple(sorted(PROVINCES)), "unknown_province"),
        court=court_code,
        kind=_choice(kind, "kind", KINDS, "unknown_kind"),
        special_subject=_choice(
            special_subject, "special_subject", (*SPECIAL_SUBJECTS, ANY_SPECIAL), "unknown_special_subject"
        ),
    )
    return StatisticsQuery(
        Period(first, last, chosen), filters, _choice(by, "by", BREAKDOWNS, "unknown_breakdown")
    )


def _points(first: date, last: date, interval: str) -> int:
    if interval == "day":
        return (last - first).days + 1
    if interval == "week":
        return (
            (last - timedelta(days=last.weekday())) - (first - timedelta(days=first.weekday()))
        ).days // 7 + 1
    return (last.year - first.year) * 12 + last.month - first.month + 1


# The parameters as the document shows them (every handler parses them with `parse_query`).
From = Annotated[
    str | None,
    QueryParameter(
        name="from",
        description="First day of the period, YYYY-MM-DD (default: a year of whole months up to `to`)",
        schema_extra={"one_of": None, "type": "string", "format": "date"},
    ),
]
To = Annotated[
    str | None, query("Last day of the period, YYYY-MM-DD (default: today in China)", format="date")
]
IntervalParam = Annotated[
    str | None, query("Points by day, week (Monday-Sunday) or month", enum=list(INTERVALS))
]
Province = Annotated[str | None, query("Two-digit province code (GB/T 2260)", enum=sorted(PROVINCES))]
Court = Annotated[str | None, query("A court code, e.g. 京0105")]
Kind = Annotated[str | None, query("The debtor's kind", enum=list(KINDS))]
Special = Annotated[
    str | None,
    query(
        "A special-subject category, or `any` for every special subject",
        enum=[*SPECIAL_SUBJECTS, ANY_SPECIAL],
    ),
]
By = Annotated[str | None, query("What to break the figures down by", enum=list(BREAKDOWNS))]


def query_from(params: dict[str, Any], **extra: Any) -> StatisticsQuery:
    return parse_query(
        start=params.get("from"),
        end=params.get("to"),
        interval=params.get("interval"),
        province=params.get("province"),
        court=params.get("court"),
        kind=params.get("kind"),
        special_subject=params.get("special_subject"),
        by=params.get("by"),
        **extra,
    )

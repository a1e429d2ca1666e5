"""Statistics read from the maintained counts (`statistics_counts`), never from the list.

A period [start, end] is split into whole months, read at a month grain, and the days
before and after them, read at a day grain, so that a year's national figures sum a few
hundred rows. Court figures (a court filter, or a breakdown by court) read the court grains,
everything else the province grains. The active count at a day is everything listed up to
that day less everything removed up to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, Literal, NamedTuple

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Date,
    Select,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    select,
    union_all,
)

from publishing.statistics.models import (
    COUNT_COLUMNS,
    GROUND_COLUMNS,
    REASON_COLUMNS,
    STATISTICS_COUNTS,
    TOTAL_START,
)
from publishing.statistics.reader import month_start
from registry.calendar import today_in_china

T = STATISTICS_COUNTS.c
EPOCH = TOTAL_START  # no listing is dated earlier (registry.listings.prepare.EARLIEST_DATE)
FAR_FUTURE = date(2199, 12, 31)
Interval = Literal["day", "week", "month"]
BREAKDOWNS = ("province", "court", "kind", "special_subject", "ground", "reason")
ANY_SPECIAL = "any"
Vector = list[int]


@dataclass(frozen=True)
class Filters:
    province: str | None = None
    court: str | None = None
    kind: str | None = None
    # A category, or "any": every special subject.
    special_subject: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "province": self.province,
            "court": self.court,
            "kind": self.kind,
            "special_subject": self.special_subject,
        }


@dataclass(frozen=True)
class Period:
    start: date
    end: date
    interval: Interval = "month"


@dataclass
class Figures:
    """One cell's counts: listed and removed in the period, how the removals met the three
    working days, the grounds of the listings and the reasons of the removals, and the active
    count at the period's end."""

    listed: int = 0
    removed: int = 0
    removed_on_time: int = 0
    removed_late: int = 0
    active_end: int = 0
    grounds: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)


_GROUNDS = [(c.removeprefix("ground_"), COUNT_COLUMNS.index(c)) for c in GROUND_COLUMNS]
_REASONS = [(c.removeprefix("reason_"), COUNT_COLUMNS.index(c)) for c in REASON_COLUMNS]


def _figures(vector: Sequence[int], active_end: int) -> Figures:
    # COUNT_COLUMNS begins listed, removed, removed_on_time, removed_late.
    return Figures(
        listed=vector[0],
        removed=vector[1],
        removed_on_time=vector[2],
        removed_late=vector[3],
        active_end=active_end,
        grounds={key: vector[index] for key, index in _GROUNDS},
        reasons={key: vector[index] for key, index in _REASONS},
    )


def _zero() -> Vector:
    return [0] * len(COUNT_COLUMNS)


Segment = tuple[str, date, date, int]  # grain suffix, first and last period_start, sign


def _segments(
    start: date, end: date, months: bool, today: date | None = None, years: bool = True
) -> list[Segment]:
    """Segments whose signed sums are exactly the counts of [start, end]: whole years at the
    year grain, whole months at the month grain, the days of a partial month at the day
    grain; a partial year or month is read whole less what lies outside the period when that
    reads fewer periods (the current year or month: only its periods up to today hold rows).
    By court, a day's rows are about as many as a month's or a year's, so the number of
    periods read is the cost."""
    if start > end:
        return []
    if not months:
        return [("d", start, end, 1)]
    today = today or today_in_china()
    if not years:  # a series by month: every row must fall in its month's bucket
        return _month_segments(start, end, today)
    first_year, last_year = start.year, end.year
    segments: list[Segment] = []
    whole: set[int] = set()
    for year in sorted({first_year, last_year}):
        year_first, year_last = date(year, 1, 1), date(year, 12, 31)
        first, last = max(start, year_first), min(end, year_last)
        if first == year_first and last == year_last:
            whole.add(year)
            continue
        inside = _month_segments(first, last, today)
        outside = [
            (grain, a, b, -sign)
            for grain, a, b, sign in _month_segments(year_first, first - timedelta(days=1), today)
            + _month_segments(last + timedelta(days=1), year_last, today)
        ]
        complement = [("y", year_first, year_first, 1), *outside]
        segments.extend(inside if _cost(inside, today) <= _cost(complement, today) else complement)
    range_from = first_year if first_year in whole else first_year + 1
    range_to = last_year if last_year in whole else last_year - 1
    if range_from <= range_to:
        segments.append(("y", date(range_from, 1, 1), date(range_to, 1, 1), 1))
    return segments


def _cost(segments: Iterable[Segment], today: date) -> int:
    """How many populated periods (none after today) the segments read."""
    total = 0
    for grain, first, final, _sign in segments:
        last = min(final, today)
        if first > last:
            continue
        if grain == "d":
            total += (last - first).days + 1
        elif grain == "m":
            total += (last.year - first.year) * 12 + last.month - first.month + 1
        else:
            total += last.year - first.year + 1
    return total


def _month_segments(start: date, end: date, today: date) -> list[Segment]:
    """[start, end]: whole months at the month grain, a partial month at the
    day grain or as its month less its days outside the period, whichever reads fewer."""
    if start > end:
        return []
    first_month, last_month = month_start(start), month_start(end)
    # Only the first and the last month can be partial; those between are whole.
    pieces: list[tuple[date, date, date, date]] = []  # month, its last day, first, last
    for month in sorted({first_month, last_month}):
        month_end = _next_month(month) - timedelta(days=1)
        pieces.append((month, month_end, max(start, month), min(end, month_end)))
    segments: list[Segment] = []
    whole: set[date] = set()  # months read whole at the month grain
    for month, month_end, first, last in pieces:
        if first == month and last == month_end:
            whole.add(month)
        else:
            segments.extend(_partial(month, month_end, first, last, today))
    # One range of month rows: the whole months, from the first (or the one after it) to the
    # last (or the one before it).
    range_from = first_month if first_month in whole else _next_month(first_month)
    range_to = last_month if last_month in whole else last_month - timedelta(days=1)
    if range_from <= range_to:
        segments.append(("m", range_from, range_to, 1))
    return segments


def _partial(month: date, last_day: date, first: date, last: date, today: date) -> list[Segment]:
    inside: list[Segment] = [("d", first, last, 1)]
    complement: list[Segment] = [("m", month, month, 1)]
    if first > month:
        complement.append(("d", month, first - timedelta(days=1), -1))
    if last < last_day:
        complement.append(("d", last + timedelta(days=1), last_day, -1))
    return inside if _cost(inside, today) <= _cost(complement, today) else complement


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _family(filters: Filters, by: str | None = None) -> str:
    """Which grains answer: by court (a court filter, or figures per court) or by province;
    the special-subject grains when a special subject is asked for."""
    court = filters.court is not None or by == "court"
    if filters.special_subject is not None or by == "special_subject":
        return "s" if court else "q"
    return "c" if court else "p"


def _where(filters: Filters) -> tuple[tuple[str, str | None], ...]:
    """The filters as (name, value): the statement's shape has their names, its execution
    their values."""
    pairs: list[tuple[str, str | None]] = []
    if filters.court is not None:
        pairs.append(("court", filters.court))
    if filters.province is not None:
        pairs.append(("province", filters.province))
    if filters.kind is not None:
        pairs.append(("kind", filters.kind))
    # At the special grains a special subject's rows have its category; those under '' (at
    # the province's, `q…`) count the listings that are no special subject.
    if filters.special_subject == ANY_SPECIAL:
        pairs.append(("any_special", None))
    elif filters.special_subject is not None:
        pairs.append(("special", filters.special_subject))
    return tuple(pairs)


def _clause(family: str, name: str) -> ColumnElement[bool]:
    if name == "court":
        return T.area == bindparam("court")
    if name == "province":
        return (T.area if family in ("p", "q") else T.province_code) == bindparam("province")
    if name == "kind":
        return T.debtor_kind == bindparam("kind")
    if name == "any_special":
        return T.special_subject != ""
    return T.special_subject == bindparam("special")


class Part(NamedTuple):
    """Segments read at one grain family, summing `columns` (count columns, or
    "listed-removed"); a part not `grouped` comes under the key None whatever the group."""

    family: str
    segments: Sequence[Segment]
    columns: Sequence[str] = COUNT_COLUMNS
    grouped: bool = True


Shape = tuple[tuple[str, tuple[tuple[str, int], ...], tuple[str, ...], bool], ...]


@lru_cache(maxsize=256)
def _statement(shape: Shape, where: tuple[str, ...], group: str | None) -> Select[Any]:
    """The statement for a shape of query (its parts' grains and signs, the filters it has,
    the group), built once: the dates and filter values are parameters (`a0`, `b0`…,
    `court`…). Building the SQL of a dozen arms of 19 sums cost more than running it."""
    key: ColumnElement[Any] | None = None
    if group == "period_start":
        key = T.period_start
    elif group is not None:
        # An expression, not the column: SQLite's planner (no statistics) would otherwise walk
        # a whole grain through the (grain, area) index to save the GROUP BY's sort, instead
        # of the range of days it needs in the key.
        key = func.coalesce(T[group], "")
    width = sum(len(columns) for _family, _signs, columns, _grouped in shape)
    zero: ColumnElement[Any] = literal_column("0")
    arms: list[Select[Any]] = []
    offset = 0
    for family, signs, columns, grouped in shape:
        values = [_value(expression) for expression in columns]
        clauses = [_clause(family, name) for name in where]
        if all(column.startswith(("removed", "reason_")) for column in columns):
            # A row's removal counts are parts of its `removed`: rows that only list add
            # nothing (at 1M listings, a third of a year's rows by court).
            clauses.append(T.removed != 0)
        for suffix, sign in signs:
            cells: list[ColumnElement[Any]] = [zero] * width
            for i, value in enumerate(values):
                cells[offset + i] = value if sign > 0 else -value
            keyed = [] if key is None else [(key if grouped else null()).label("k")]
            arm = len(arms)
            arms.append(
                select(*keyed, *(cell.label(f"v{i}") for i, cell in enumerate(cells))).where(
                    T.grain == family + suffix,
                    T.period_start >= bindparam(f"a{arm}", type_=Date()),
                    T.period_start <= bindparam(f"b{arm}", type_=Date()),
                    *clauses,
                )
            )
        offset += len(columns)
    both = (arms[0] if len(arms) == 1 else union_all(*arms)).subquery()
    # As BIGINT: PostgreSQL's sum of a bigint is a numeric, which its driver decodes into a
    # Decimal per cell (8,000 of them by court).
    sums = [cast(func.coalesce(func.sum(both.c[f"v{i}"]), 0), BigInteger) for i in range(width)]
    query = select(*([both.c.k] if key is not None else []), *sums)
    return query.group_by(both.c.k) if key is not None else query


def _read(
    conn: Connection, parts: Sequence[Part], filters: Filters, group: str | None = None
) -> dict[Any, Vector]:
    """Summed vectors by `group` (a column's name; None: one total), in one statement: each
    segment is a range of the key read with its sign, and the database adds them up. A
    vector is every part's sums, one part after the other."""
    parts = [part for part in parts if part.segments]
    if not parts:
        return {}
    where = _where(filters)
    shape = tuple(
        (
            part.family,
            tuple((segment[0], segment[3]) for segment in part.segments),
            tuple(part.columns),
            part.grouped,
        )
        for part in parts
    )
    params: dict[str, Any] = {name: value for name, value in where if value is not None}
    arm = 0
    for part in parts:
        for _suffix, first, last, _sign in part.segments:
            params[f"a{arm}"], params[f"b{arm}"] = first, last
            arm += 1
    totals: dict[Any, Vector] = {}
    for row in conn.execute(_statement(shape, tuple(name for name, _ in where), group), params):
        key = row[0] if group is not None else None
        vector = [int(value) for value in (row[1:] if group is not None else row)]
        if group is None and not any(vector):
            continue
        totals[key] = vector
    return totals


def _value(expression: str) -> ColumnElement[Any]:
    """A count column, or the difference of two ("listed-removed")."""
    left, _, right = expression.partition("-")
    return T[left] - T[right] if right else T[left]


def _net(vector: Vector) -> int:
    return vector[0] - vector[1]  # listed - removed


def _bucket(day: date, period: Period) -> date:
    if period.interval == "day":
        return day
    start = day - timedelta(days=day.weekday()) if period.interval == "week" else day.replace(day=1)
    return max(start, period.start)


def _bucket_end(start: date, period: Period) -> date:
    if period.interval == "day":
        end = start
    elif period.interval == "week":
        end = start - timedelta(days=start.weekday()) + timedelta(days=6)
    else:
        end = _next_month(start) - timedelta(days=1)
    return min(end, period.end)


NET = ("listed-removed",)


def _active(family: str, day: date, grouped: bool = True) -> Part:
    """Listings active at the end of `day`, as the net of: everything listed less everything
    removed (the all-time rows), less what was listed and removed after that day (the rows
    after it, few for a recent day)."""
    later = _segments(day + timedelta(days=1), FAR_FUTURE, True)
    segments = [("t", TOTAL_START, TOTAL_START, 1), *((g, a, b, -sign) for g, a, b, sign in later)]
    return Part(family, segments, NET, grouped)


@dataclass
class SeriesPoint:
    start: date
    end: date
    figures: Figures


@dataclass
class Series:
    period: Period
    filters: Filters
    points: list[SeriesPoint]
    totals: Figures


def series(conn: Connection, period: Period, filters: Filters) -> Series:
    """One point per day, week (Monday to Sunday) or month of the period, each cut to the
    period; the totals; the active count at the end of each point."""
    family = _family(filters)
    months = period.interval == "month"
    segments = _segments(period.start, period.end, months, years=False)
    # One statement: the period's rows by day or month, and the active count before it
    # (under the key None).
    sums = _read(
        conn,
        [Part(family, segments), _active(family, period.start - timedelta(days=1), grouped=False)],
        filters,
        "period_start",
    )
    width = len(COUNT_COLUMNS)
    buckets: dict[date, Vector] = {}
    cursor = period.start
    while cursor <= period.end:
        buckets[cursor] = _zero()
        cursor = _bucket_end(cursor, period) + timedelta(days=1)
    active = 0
    for start, vector in sums.items():
        if start is None:
            active = vector[width]
            continue
        target = buckets[_bucket(start, period)]
        for index, value in enumerate(vector[:width]):
            target[index] += value
    total = _zero()
    points = []
    for start, vector in buckets.items():
        active += _net(vector)
        for index, value in enumerate(vector):
            total[index] += value
        points.append(SeriesPoint(start, _bucket_end(start, period), _figures(vector, active)))
    return Series(period, filters, points, _figures(total, active))


@dataclass
class BreakdownRow:
    key: str
    figures: Figures


def breakdown(conn: Connection, period: Period, filters: Filters, by: str) -> list[BreakdownRow]:
    """Figures per province, court, debtor kind or special subject (and the active count at the
    period's end); per ground (listed with it) or removal reason (removed for it)."""
    family = _family(filters, by)
    segments = _segments(period.start, period.end, True)
    if by in ("ground", "reason"):
        vector = _read(conn, [Part(family, segments)], filters).get(None, _zero())
        figures = _figures(vector, 0)
        counts = figures.grounds if by == "ground" else figures.reasons
        return [
            BreakdownRow(key, Figures(listed=n) if by == "ground" else Figures(removed=n))
            for key, n in counts.items()
        ]
    group = {"province": "area" if family in ("p", "q") else "province_code", "court": "area"}.get(
        by, "debtor_kind" if by == "kind" else "special_subject"
    )
    width = len(COUNT_COLUMNS)
    # The period's counts and the active count at its end, in one statement.
    both = _read(conn, [Part(family, segments), _active(family, period.end)], filters, group)
    in_period = {key: vector[:width] for key, vector in both.items()}
    active = {key: vector[width] for key, vector in both.items()}
    if by == "special_subject" and filters.special_subject is None and family == "s":
        # By court, not a special subject ('' ): every listing less the special subjects (the
        # province's special grains keep that row themselves).
        common = "c" if filters.court is not None else "p"
        whole = _read(conn, [Part(common, segments), _active(common, period.end)], filters).get(
            None, [*_zero(), 0]
        )
        rest = [total - sum(v[i] for v in in_period.values()) for i, total in enumerate(whole[:width])]
        if any(rest):
            in_period[""] = rest
        active[""] = whole[width] - sum(active.values())
    rows = []
    for key in sorted(set(in_period) | set(active)):
        figures = _figures(in_period.get(key, _zero()), active.get(key, 0))
        # A key whose counts went back to zero (an amendment moved its listing) is left out.
        if figures.listed or figures.removed or figures.active_end:
            rows.append(BreakdownRow(key, figures))
    return rows


def removals_by_court(conn: Connection, period: Period, filters: Filters) -> dict[str, tuple[int, int, int]]:
    """Per court, the removals in the period: removed, on time, late (the oversight's
    timeliness table), reading three sums instead of a breakdown's every count."""
    segments = _segments(period.start, period.end, True)
    columns = ["removed", "removed_on_time", "removed_late"]
    sums = _read(conn, [Part(_family(filters, "court"), segments, columns)], filters, "area")
    return {key: (v[0], v[1], v[2]) for key, v in sorted(sums.items()) if v[0]}


PERFORMED_REASONS = ("performed", "settlement_performed")


def special_performance(
    conn: Connection, period: Period, filters: Filters
) -> dict[str, tuple[int, int, int, int]]:
    """Per special-subject category: listed and removed in the period, removed because the
    debtor performed, and active at the period's end (the oversight's special-subjects
    table), reading these five sums and no "not special" row instead of a breakdown."""
    family = _family(filters, "special_subject")
    if filters.special_subject is None:
        filters = replace(filters, special_subject=ANY_SPECIAL)
    columns = ["listed", "removed", *(f"reason_{reason}" for reason in PERFORMED_REASONS)]
    segments = _segments(period.start, period.end, True)
    parts = [Part(family, segments, columns), _active(family, period.end)]
    sums = _read(conn, parts, filters, "special_subject")
    return {key: (v[0], v[1], v[2] + v[3], v[4]) for key, v in sums.items()}

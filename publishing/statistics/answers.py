"""What the statistics answer: JSON structs, labels in the Provisions' wording, CSV.

Public figures hide small cells: a count from 1 to 4 reads "<5" (zero stays 0), so that no
published figure points at a person. Admins and courts (the oversight routes) read exact
counts.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

import msgspec

from publishing.statistics.params import StatisticsQuery
from publishing.statistics.queries import BreakdownRow, Figures, Series
from registry import csvsafe
from registry.identity.identifiers import PROVINCES
from registry.listings.wording import GROUNDS, KIND, REMOVAL_REASONS, SPECIAL_SUBJECTS
from registry.listings.wording import label as wording

SMALL = "<5"
SMALL_BELOW = 5
Cell = int | str
NOT_SPECIAL = "非特殊主体"
UNKNOWN_PROVINCE = "未知省份"


def cell(value: int, public: bool) -> Cell:
    return SMALL if public and 0 < value < SMALL_BELOW else value


class FiguresOut(msgspec.Struct, kw_only=True):
    """Counts in the period; `active_end`: listings active at the end of its last day.
    Public answers give "<5" for a count from 1 to 4."""

    listed: Cell
    removed: Cell
    removed_on_time: Cell
    removed_late: Cell
    active_end: Cell
    grounds: dict[str, Cell]
    reasons: dict[str, Cell]


class PeriodOut(msgspec.Struct, kw_only=True, rename={"start": "from", "end": "to"}):
    start: date
    end: date
    interval: str


class PointOut(msgspec.Struct, kw_only=True, rename={"start": "from", "end": "to"}):
    start: date
    end: date
    figures: FiguresOut


class SeriesOut(msgspec.Struct, kw_only=True):
    period: PeriodOut
    filters: dict[str, str | None]
    small_cells_hidden: bool
    points: list[PointOut]
    totals: FiguresOut


class RowOut(msgspec.Struct, kw_only=True):
    key: str
    label: str
    figures: FiguresOut


class BreakdownOut(msgspec.Struct, kw_only=True):
    period: PeriodOut
    filters: dict[str, str | None]
    by: str
    small_cells_hidden: bool
    rows: list[RowOut]


def figures_out(figures: Figures, public: bool) -> FiguresOut:
    if not public:  # exact: the counts as they are (a breakdown by court has 400 rows of 19)
        return FiguresOut(
            listed=figures.listed,
            removed=figures.removed,
            removed_on_time=figures.removed_on_time,
            removed_late=figures.removed_late,
            active_end=figures.active_end,
            grounds=dict(figures.grounds),
            reasons=dict(figures.reasons),
        )
    return FiguresOut(
        listed=cell(figures.listed, public),
        removed=cell(figures.removed, public),
        removed_on_time=cell(figures.removed_on_time, public),
        removed_late=cell(figures.removed_late, public),
        active_end=cell(figures.active_end, public),
        grounds={k: SMALL if 0 < v < SMALL_BELOW else v for k, v in figures.grounds.items()},
        reasons={k: SMALL if 0 < v < SMALL_BELOW else v for k, v in figures.reasons.items()},
    )


def _period(query: StatisticsQuery) -> PeriodOut:
    return PeriodOut(start=query.period.start, end=query.period.end, interval=query.period.interval)


def series_out(query: StatisticsQuery, series: Series, public: bool) -> SeriesOut:
    return SeriesOut(
        period=_period(query),
        filters=query.filters.as_dict(),
        small_cells_hidden=public,
        points=[
            PointOut(start=p.start, end=p.end, figures=figures_out(p.figures, public)) for p in series.points
        ],
        totals=figures_out(series.totals, public),
    )


def label(by: str, key: str, court_names: Mapping[str, str]) -> str:
    if by == "province":
        return PROVINCES.get(key, UNKNOWN_PROVINCE)
    if by == "court":
        return court_names.get(key, key)
    if by == "kind":
        return KIND.get(key, key)
    if by == "special_subject":
        return SPECIAL_SUBJECTS.get(key, key) if key else NOT_SPECIAL
    if by == "ground":
        return GROUNDS.get(key, key)
    return REMOVAL_REASONS.get(key, key)


def breakdown_out(
    query: StatisticsQuery,
    by: str,
    rows: Sequence[BreakdownRow],
    court_names: Mapping[str, str],
    public: bool,
) -> BreakdownOut:
    return BreakdownOut(
        period=_period(query),
        filters=query.filters.as_dict(),
        by=by,
        small_cells_hidden=public,
        rows=[
            RowOut(key=r.key, label=label(by, r.key, court_names), figures=figures_out(r.figures, public))
            for r in rows
        ],
    )


# ---- CSV ----
# For spreadsheets, read by people: Chinese headers and words, never a code (the JSON keeps
# the codes, for programs).

# A breakdown's leading columns: what its row is. A court keeps its code, which people read
# (case numbers, the filter form); the other keys are the registry's own codes.
BREAKDOWN_HEADER = {
    "province": ["省份"],
    "court": ["法院代码", "法院"],
    "kind": ["被执行人类型"],
    "special_subject": ["特殊主体类别"],
    "ground": ["失信情形"],
    "reason": ["删除原因"],
}


def _figure_columns(figures: FiguresOut) -> list[Cell]:
    return [
        figures.listed,
        figures.removed,
        figures.removed_on_time,
        figures.removed_late,
        figures.active_end,
        *figures.grounds.values(),
        *figures.reasons.values(),
    ]


def _figure_header(figures: FiguresOut) -> list[str]:
    return [
        "新纳入",
        "删除",
        "按期删除",
        "逾期删除",
        "期末在册",
        *(f"失信情形：{wording(GROUNDS, code)}" for code in figures.grounds),
        *(f"删除原因：{wording(REMOVAL_REASONS, code)}" for code in figures.reasons),
    ]


def csv_bytes(rows: Iterable[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    # The one CSV writer (registry.csvsafe): a cell a spreadsheet would run gets an apostrophe.
    csvsafe.Writer(out, lineterminator="\r\n").writerows(rows)
    # A byte-order mark: spreadsheet programs then read the Chinese labels as UTF-8.
    return ("\ufeff" + out.getvalue()).encode()


def series_csv(answer: SeriesOut) -> bytes:
    header = ["开始日期", "截止日期", *_figure_header(answer.totals)]
    lines = [[p.start.isoformat(), p.end.isoformat(), *_figure_columns(p.figures)] for p in answer.points]
    return csv_bytes([header, *lines])


def breakdown_csv(answer: BreakdownOut) -> bytes:
    leading = BREAKDOWN_HEADER[answer.by]
    if not answer.rows:
        return csv_bytes([leading])
    header = [*leading, *_figure_header(answer.rows[0].figures)]
    court = answer.by == "court"
    lines = ([*([r.key] if court else []), r.label, *_figure_columns(r.figures)] for r in answer.rows)
    return csv_bytes([header, *lines])

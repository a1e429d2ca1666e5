"""Statistics equal a brute-force count over the listings as they stand, for several periods,
intervals, filters and breakdowns; small cells are hidden on the public figures only; CSV
is in Chinese (the JSON keeps its codes) and its cells cannot run as formulas; bad queries
answer 400 with their code and parameter."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import random
import re
import subprocess
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from publishing.statistics.models import COUNT_COLUMNS, STATISTICS_COUNTS
from publishing.statistics.queries import _segments
from publishing.statistics.reader import CURSOR, FACTS, READER, recount, reset
from registry.db import create_sync_engine
from registry.eventlog.readers import (
    LogEvent,
    LogReader,
    Process,
    advance,
    claim_cursor,
    follow_prepared_sync,
    follow_sync,
    step,
    step_prepared,
)
from registry.listings import wording
from registry.listings.schemas import GROUNDS, REMOVAL_REASONS, TERM_EXPIRED
from registry.settings import Settings
from registry.timeutil import utcnow
from tests.publishing.statistics.test_statistics_pages import listed_today
from tests.support.checks import bank
from tests.support.harness import CourtHandle, Registry, cli_env, registry_bin
from tests.support.listings import (
    amended_body,
    ending_today,
    expire_tomorrow,
    post_amendment,
    post_removal,
    publish_many,
    publish_one,
    removal_body,
)

REASONS = (*REMOVAL_REASONS, TERM_EXPIRED)
PERSON_SPECIAL = ("party_member", "civil_servant", "npc_deputy", "cppcc_member")
ORG_SPECIAL = ("state_organ", "state_owned_enterprise", "public_institution")


@dataclass(frozen=True)
class Row:
    """A listing as the brute force sees it (straight from the tables)."""

    court: str
    province: str
    kind: str
    special: str
    listed_on: date
    grounds: tuple[str, ...]
    removed_on: date | None
    reason: str | None
    on_time: bool | None


def load_rows(engine: sa.Engine) -> list[Row]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT l.court_code, l.province_code, l.debtor_kind, l.special_subject, l.listed_on,"
                " l.grounds, l.status, l.removed_on, l.removal_reason, r.on_time"
                " FROM listings l LEFT JOIN removals r ON r.listing_id = l.id"
            )
        ).all()
    out = []
    for r in rows:
        grounds = r.grounds if isinstance(r.grounds, list) else json.loads(r.grounds)
        removed = r.status != "active"
        out.append(
            Row(
                r.court_code,
                r.province_code or "",
                r.debtor_kind,
                r.special_subject or "",
                _day(r.listed_on),
                tuple(grounds),
                _day(r.removed_on) if removed else None,
                r.removal_reason if removed else None,
                None if not removed or r.on_time is None else bool(r.on_time),
            )
        )
    return out


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def matches(row: Row, filters: dict[str, str]) -> bool:
    special = filters.get("special_subject")
    return (
        filters.get("province", row.province) == row.province
        and filters.get("court", row.court) == row.court
        and filters.get("kind", row.kind) == row.kind
        and (special is None or (row.special != "" if special == "any" else row.special == special))
    )


def brute(rows: list[Row], start: date, end: date) -> dict[str, Any]:
    removed = [r for r in rows if r.removed_on is not None and start <= r.removed_on <= end]
    listed = [r for r in rows if start <= r.listed_on <= end]
    return {
        "listed": len(listed),
        "removed": len(removed),
        "removed_on_time": sum(r.on_time is True for r in removed),
        "removed_late": sum(r.on_time is False for r in removed),
        "active_end": sum(r.listed_on <= end and (r.removed_on is None or r.removed_on > end) for r in rows),
        "grounds": {g: sum(g in r.grounds for r in listed) for g in GROUNDS},
        "reasons": {reason: sum(r.reason == reason for r in removed) for reason in REASONS},
    }


def buckets(start: date, end: date, interval: str) -> list[tuple[date, date]]:
    out = []
    day = start
    while day <= end:
        if interval == "day":
            last = day
        elif interval == "week":
            last = day + timedelta(days=6 - day.weekday())
        else:
            last = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        last = min(last, end)
        out.append((day, last))
        day = last + timedelta(days=1)
    return out


@pytest.fixture
def population(registry: Registry) -> tuple[list[CourtHandle], Callable[[], list[Row]]]:
    """About 120 listings over three years in three courts of two provinces, persons and
    organisations, special subjects, amendments, removals on time and late, one expiry."""
    rng = random.Random(7)
    courts = [
        registry.court(),
        registry.court("京0108", "北京市海淀区人民法院", "11"),
        registry.court("沪0115", "上海市浦东新区人民法院", "31"),
    ]
    today = registry.today
    ids: list[tuple[CourtHandle, str, dict[str, Any]]] = []
    for court in courts:
        bodies = []
        for _ in range(40):
            body = registry.listing(court)
            roll = rng.random()
            if roll < 0.35:
                choices = PERSON_SPECIAL if body["debtor"]["kind"] == "person" else ORG_SPECIAL
                body["special_subject"] = {"category": rng.choice(choices), "employer": "某某市某某局"}
            bodies.append(body)
        for listing_id, body in zip(publish_many(registry, court, bodies), bodies, strict=True):
            ids.append((court, listing_id, body))
    rng.shuffle(ids)
    # Amend some: new grounds where the term allows, a special subject added.
    for court, listing_id, body in ids[:6]:
        new = amended_body(body)
        if body["debtor"]["kind"] == "person":
            new["special_subject"] = {"category": "civil_servant"}
        response = post_amendment(registry, court, listing_id, new)
        assert response.status_code == 200, response.text
    # Remove a third: some on time, some late, several reasons and effective days.
    for index, (court, listing_id, body) in enumerate(ids[10:50]):
        listed_on = date.fromisoformat(body["listed_on"])
        effective = listed_on + timedelta(days=rng.randint(0, max(0, (today - listed_on).days)))
        triggered = today if index % 3 else max(listed_on, today - timedelta(days=40))
        removal = removal_body(
            listing_id,
            today,
            REMOVAL_REASONS[index % len(REMOVAL_REASONS)],
            {"effective_on": effective.isoformat(), "triggered_on": triggered.isoformat()},
        )
        response = post_removal(registry, court, listing_id, removal)
        assert response.status_code == 200, response.text
    publish_one(registry, courts[0], ending_today(registry, courts[0]))
    assert expire_tomorrow(registry) == 1
    return courts, lambda: load_rows(registry.engine)


def _exact(admin: httpx.Client, path: str, params: dict[str, str]) -> dict[str, Any]:
    response = admin.get(f"/v1/oversight/{path}", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _figures(answer: dict[str, Any]) -> dict[str, Any]:
    return {
        k: answer[k]
        for k in ("listed", "removed", "removed_on_time", "removed_late", "active_end", "grounds", "reasons")
    }


FILTERS: list[dict[str, str]] = [
    {},
    {"province": "11"},
    {"court": "沪0115"},
    {"kind": "person"},
    {"special_subject": "any"},
    {"province": "11", "kind": "organization"},
    {"court": "京0105", "special_subject": "civil_servant"},
]


def _kept(engine: sa.Engine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The statistics' two tables as sorted rows; count rows that hold only zeros (left by a
    listing the reader moved elsewhere) count for nothing and are left out."""
    with engine.connect() as conn:
        counts = [
            tuple(row)
            for row in conn.execute(sa.select(STATISTICS_COUNTS))
            if any(getattr(row, column) for column in COUNT_COLUMNS)
        ]
        facts = [tuple(row) for row in conn.execute(sa.select(FACTS))]
    return sorted(counts), sorted(facts)


def test_a_recount_in_sql_equals_reading_the_whole_log(
    registry: Registry, court: CourtHandle, population: tuple[list[CourtHandle], Callable[[], list[Row]]]
) -> None:
    """`registry statistics rebuild` counts the list in SQL: the same facts and counts as the
    reader's replay of the log, over listings amended, removed on time and late, expired and
    special subjects, and the reader goes on from the head without counting anything twice."""
    assert follow_sync(registry.engine, READER) > 0
    replayed = _kept(registry.engine)
    with registry.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM statistics_counts WHERE grain = 'pm'"))
        counted = recount(conn)
        listings = conn.execute(sa.text("SELECT count(*) FROM listings")).scalar_one()
        head = conn.execute(sa.text("SELECT last_seq FROM log_head")).scalar_one()
    assert counted == listings > 100
    assert _kept(registry.engine) == replayed
    assert follow_sync(registry.engine, READER) == 0
    with registry.engine.connect() as conn:
        position = conn.execute(
            sa.text("SELECT position FROM reader_cursors WHERE name = 'statistics'")
        ).scalar_one()
    assert position == head
    # After it, the reader counts what changes, once.
    publish_one(registry, court, registry.listing(court))
    assert follow_sync(registry.engine, READER) > 0
    after = _kept(registry.engine)
    assert after != replayed
    with registry.engine.begin() as conn:
        reset(conn)
    follow_sync(registry.engine, READER)
    assert _kept(registry.engine) == after


def test_the_scheduler_counts_from_what_it_read_before_its_claim_as_the_replay_does(
    registry: Registry,
    court: CourtHandle,
    settings: Settings,
    population: tuple[list[CourtHandle], Callable[[], list[Row]]],
) -> None:
    """The scheduler's step reads the listings and works out the counts before it claims the
    cursor (on SQLite without the write lock). Its counts equal the replay's; a listing
    removed between its reading and its writing is counted as removed by the next step; a
    batch whose facts were counted meanwhile, the cursor left where it was, counts once."""
    writer = create_sync_engine(settings.database.url)
    reader = create_sync_engine(settings.database.url, writer=False)

    def replayed() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        with registry.engine.begin() as conn:
            reset(conn)
        follow_sync(registry.engine, READER)
        return _kept(registry.engine)

    def meanwhile(then: Callable[[], object]) -> LogReader:
        def prepare(conn: sa.Connection, events: Sequence[LogEvent]) -> Process:
            assert READER.prepare is not None
            apply = READER.prepare(conn, events)
            then()
            return apply

        return dataclasses.replace(READER, prepare=prepare)

    try:
        assert follow_prepared_sync(writer, reader, READER) > 100
        prepared = _kept(registry.engine)
        assert prepared == replayed()

        listing_id = publish_one(registry, court, registry.listing(court))
        removal = removal_body(listing_id, registry.today)

        def remove() -> None:
            assert post_removal(registry, court, listing_id, removal).status_code == 200

        removed = meanwhile(remove)
        assert step_prepared(writer, reader, removed, utcnow()) == 1
        with registry.engine.connect() as conn:
            status = conn.execute(FACTS.select().where(FACTS.c.listing_id == listing_id)).one()
        assert status.removed_on is None  # counted as it was read: active
        follow_prepared_sync(writer, reader, READER)
        after_removal = _kept(registry.engine)
        assert after_removal == replayed()

        publish_one(registry, court, registry.listing(court))

        def counted_by_another() -> None:
            with writer.begin() as other:
                position = claim_cursor(other, CURSOR)
                step(other, READER, utcnow())
                advance(other, CURSOR, position)

        assert step_prepared(writer, reader, meanwhile(counted_by_another), utcnow()) == 1
        assert _kept(registry.engine) == replayed() != after_removal
    finally:
        writer.dispose()
        reader.dispose()


def test_the_series_equal_a_brute_force_count(
    registry: Registry, admin: httpx.Client, population: tuple[list[CourtHandle], Callable[[], list[Row]]]
) -> None:
    _, rows_now = population
    assert follow_sync(registry.engine, READER) > 0
    rows = rows_now()
    today = registry.today
    periods = [
        (today - timedelta(days=3 * 365), today, "month"),
        (date(today.year - 1, 3, 17), date(today.year, 1, 9), "month"),  # partial months at both ends
        (today - timedelta(days=200), today - timedelta(days=20), "week"),
        (today - timedelta(days=60), today, "day"),
    ]
    for start, end, interval in periods:
        for filters in FILTERS:
            params = {"from": start.isoformat(), "to": end.isoformat(), "interval": interval, **filters}
            answer = _exact(admin, "listings", params)
            chosen = [r for r in rows if matches(r, filters)]
            expected = [brute(chosen, a, b) for a, b in buckets(start, end, interval)]
            got = [_figures(p["figures"]) for p in answer["points"]]
            assert got == expected, (params, got, expected)
            assert [(p["from"], p["to"]) for p in answer["points"]] == [
                (a.isoformat(), b.isoformat()) for a, b in buckets(start, end, interval)
            ]
            assert _figures(answer["totals"]) == brute(chosen, start, end), params


def test_the_breakdowns_equal_a_brute_force_count(
    registry: Registry, admin: httpx.Client, population: tuple[list[CourtHandle], Callable[[], list[Row]]]
) -> None:
    follow_sync(registry.engine, READER)
    rows = load_rows(registry.engine)
    today = registry.today
    keys: dict[str, Callable[[Row], str]] = {
        "province": lambda r: r.province,
        "court": lambda r: r.court,
        "kind": lambda r: r.kind,
        "special_subject": lambda r: r.special,
    }
    for start, end in (
        (today - timedelta(days=2 * 365), today),
        (date(today.year - 1, 2, 10), date(today.year - 1, 11, 20)),
        (today - timedelta(days=364), today),  # a rolling year: a year row less its outside
        (date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)),  # one whole year
    ):
        for filters in FILTERS[:5]:
            for by, key in keys.items():
                params = {"from": start.isoformat(), "to": end.isoformat(), "by": by, **filters}
                answer = _exact(admin, "breakdown", params)
                chosen = [r for r in rows if matches(r, filters)]
                expected = {}
                for value in sorted({key(r) for r in chosen}):
                    figures = brute([r for r in chosen if key(r) == value], start, end)
                    if figures["listed"] or figures["removed"] or figures["active_end"]:
                        expected[value] = figures
                got = {row["key"]: _figures(row["figures"]) for row in answer["rows"]}
                assert got == expected, params
            whole = brute([r for r in rows if matches(r, filters)], start, end)
            grounds = _exact(
                admin,
                "breakdown",
                {"from": start.isoformat(), "to": end.isoformat(), "by": "ground", **filters},
            )
            assert {r["key"]: r["figures"]["listed"] for r in grounds["rows"]} == whole["grounds"]
            reasons = _exact(
                admin,
                "breakdown",
                {"from": start.isoformat(), "to": end.isoformat(), "by": "reason", **filters},
            )
            assert {r["key"]: r["figures"]["removed"] for r in reasons["rows"]} == whole["reasons"]
        # The summary's tables read their own sums: they agree with the brute-force count.
        summary = _exact(admin, "summary", {"from": start.isoformat(), "to": end.isoformat()})
        sections = {section["key"]: section for section in summary["sections"]}
        timeliness = {}
        for court_code in sorted({r.court for r in rows}):
            figures = brute([r for r in rows if r.court == court_code], start, end)
            if figures["removed"]:
                timeliness[court_code] = (
                    figures["removed"],
                    figures["removed_on_time"],
                    figures["removed_late"],
                )
        assert {
            row["court"]: (row["removed"], row["removed_on_time"], row["removed_late"])
            for row in sections["removal_timeliness"]["rows"]
        } == timeliness, (start, end)
        for row in sections["special_subjects"]["rows"]:
            figures = brute([r for r in rows if r.special == row["category"]], start, end)
            assert (row["listed"], row["removed"], row["active_end"]) == (
                figures["listed"],
                figures["removed"],
                figures["active_end"],
            ), (start, end, row["category"])


def test_counts_follow_changes_and_a_rebuild_gives_the_same(
    registry: Registry, admin: httpx.Client, court: CourtHandle
) -> None:
    body = registry.person_listing(
        court, special_subject={"category": "party_member", "employer": "某某县委"}
    )
    listing_id = publish_one(registry, court, body)
    follow_sync(registry.engine, READER)
    params = {"from": body["listed_on"], "to": registry.today.isoformat(), "by": "special_subject"}
    rows = {r["key"]: r["figures"] for r in _exact(admin, "breakdown", params)["rows"]}
    assert rows["party_member"]["listed"] == 1 and rows["party_member"]["active_end"] == 1
    # The court learns the debtor is a civil servant, not a party member: the count moves.
    amended = amended_body(body) | {"special_subject": {"category": "civil_servant"}}
    assert post_amendment(registry, court, listing_id, amended).status_code == 200
    # Read twice over (a batch read again after a crash): nothing counts twice.
    follow_sync(registry.engine, READER)
    with registry.engine.begin() as conn:
        conn.execute(sa.text("UPDATE reader_cursors SET position = 0 WHERE name = 'statistics'"))
    follow_sync(registry.engine, READER)
    rows = {r["key"]: r["figures"] for r in _exact(admin, "breakdown", params)["rows"]}
    assert "party_member" not in rows
    assert rows["civil_servant"]["listed"] == 1
    # The amendment's counts went into rows that held the listing already: their keys and
    # province stay as they were, only the counts move.
    with registry.engine.connect() as conn:
        counted = conn.execute(sa.text("SELECT DISTINCT province_code FROM statistics_counts")).scalars()
        listed = conn.execute(sa.text("SELECT DISTINCT province_code FROM listings")).scalars()
        provinces, of_listings = set(counted), {code or "" for code in listed}
    assert provinces and provinces <= of_listings
    before = _exact(admin, "listings", {"from": body["listed_on"], "interval": "month"})
    with registry.engine.begin() as conn:
        reset(conn)
    follow_sync(registry.engine, READER)
    assert _exact(admin, "listings", {"from": body["listed_on"], "interval": "month"}) == before


def test_public_figures_hide_small_cells_and_the_oversight_ones_do_not(
    registry: Registry, admin: httpx.Client, court: CourtHandle
) -> None:
    today = registry.today.isoformat()
    bodies = [registry.listing(court, listed_on=today, filed_on=today) for _ in range(3)]
    for body in bodies:
        body["case_number"] = registry.generator.case_number(court.code, registry.today.year)
        body["term_years"] = None
        body.pop("extension", None)  # no term, no extension
        body["grounds"] = ["able_but_refuses"]
    publish_many(registry, court, bodies)
    follow_sync(registry.engine, READER)
    params = {"from": today, "to": today, "interval": "day", "court": court.code}
    with registry.http() as anyone:
        public = anyone.get("/v1/statistics/listings", params=params).json()
        assert public["small_cells_hidden"] is True
        assert public["totals"]["listed"] == "<5"
        assert public["totals"]["removed"] == 0  # zero points at nobody
        assert public["totals"]["grounds"]["able_but_refuses"] == "<5"
        text = anyone.get("/v1/statistics/breakdown.csv", params=params | {"by": "court"}).text
        assert "<5" in text and ",3," not in text
    exact = _exact(admin, "listings", params)
    assert exact["small_cells_hidden"] is False and exact["totals"]["listed"] == 3
    # Five or more are shown as they are.
    more = [registry.listing(court, listed_on=today, filed_on=today) for _ in range(2)]
    for body in more:
        body["case_number"] = registry.generator.case_number(court.code, registry.today.year)
        body["term_years"] = None
        body.pop("extension", None)  # no term, no extension
        body["grounds"] = ["able_but_refuses"]
    publish_many(registry, court, more)
    follow_sync(registry.engine, READER)
    with registry.http() as anyone:
        assert anyone.get("/v1/statistics/listings", params=params).json()["totals"]["listed"] == 5


def test_a_court_reads_its_own_oversight_figures_only(registry: Registry, court: CourtHandle) -> None:
    other = registry.court("京0108", "北京市海淀区人民法院", "11")
    publish_one(registry, other, registry.listing(other))
    follow_sync(registry.engine, READER)
    with registry.http(court.api_key) as http:
        own = http.get("/v1/oversight/breakdown", params={"by": "court"})
        assert own.status_code == 200 and own.json()["rows"] == []
        assert own.json()["filters"]["court"] == court.code
        refused = http.get("/v1/oversight/listings", params={"court": other.code})
        assert refused.status_code == 403 and refused.json()["code"] == "not_your_court"
    with registry.http() as anyone:
        assert anyone.get("/v1/oversight/listings").status_code == 401


def test_csv_cells_cannot_run_as_formulas(registry: Registry, admin: httpx.Client) -> None:
    registry.court("京0101", '=HYPERLINK("http://x")法院', "11")
    other = registry.court("京0102", "+cmd|' /C calc'!A0", "11")
    publish_one(registry, other, registry.listing(other))
    follow_sync(registry.engine, READER)
    response = admin.get("/v1/oversight/breakdown.csv", params={"by": "court"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    # Every CSV names its charset once (it was sent twice: `charset=utf-8; charset=utf-8`).
    for path in (
        "/v1/statistics/listings.csv",
        "/v1/statistics/breakdown.csv?by=province",
        "/v1/oversight/listings.csv",
        "/v1/oversight/summary/bank_checks/csv",
    ):
        other_csv = admin.get(path)
        assert other_csv.status_code == 200, (path, other_csv.text)
        assert other_csv.headers["content-type"] == "text/csv; charset=utf-8", path
    cells = [c for row in csv.reader(io.StringIO(response.text.lstrip("\ufeff"))) for c in row]
    assert "'+cmd|' /C calc'!A0" in cells
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)


def _csv(response: httpx.Response) -> list[list[str]]:
    """The rows of a CSV answer, checked as a spreadsheet reads it: UTF-8 with a byte-order
    mark, and no letter in any cell (every header and word in Chinese, never a code)."""
    assert response.status_code == 200, response.text
    assert response.content.startswith(b"\xef\xbb\xbf")
    text = response.content.decode("utf-8-sig")
    assert not re.search(r"[A-Za-z]", text), text
    return list(csv.reader(io.StringIO(text)))


FIGURE_HEADER = [
    "新纳入",
    "删除",
    "按期删除",
    "逾期删除",
    "期末在册",
    *(f"失信情形：{wording.GROUNDS[code]}" for code in GROUNDS),
    *(f"删除原因：{wording.REMOVAL_REASONS[code]}" for code in REASONS),
]


def test_the_csvs_read_in_chinese_and_the_json_keeps_its_codes(
    registry: Registry, admin: httpx.Client, court: CourtHandle
) -> None:
    ids = listed_today(registry, court, 8, special=6)
    for listing_id in ids[:5]:
        removed = post_removal(registry, court, listing_id, removal_body(listing_id, registry.today))
        assert removed.status_code == 200, removed.text
    follow_sync(registry.engine, READER)
    today = registry.today.isoformat()
    params = {"from": today, "to": today, "interval": "day"}
    counts = FIGURE_HEADER[:5]
    expected = {  # by: (header, the first column of each row)
        "province": (["省份", *FIGURE_HEADER], {"北京"}),
        "court": (["法院代码", "法院", *FIGURE_HEADER], {court.code}),
        "kind": (["被执行人类型", *FIGURE_HEADER], set(wording.KIND.values())),
        "special_subject": (["特殊主体类别", *FIGURE_HEADER], {"公务员", "非特殊主体"}),
        # A row per ground or reason, with its own count only.
        "ground": (["失信情形", *counts], {wording.GROUNDS[code] for code in GROUNDS}),
        "reason": (["删除原因", *counts], {wording.REMOVAL_REASONS[code] for code in REASONS}),
    }
    with registry.http() as anyone:
        rows = _csv(anyone.get("/v1/statistics/listings.csv", params=params))
        assert rows == [
            ["开始日期", "截止日期", *FIGURE_HEADER],
            [today, today, "8", "5", "5", "0", "<5", "8", *["0"] * 5, "5", *["0"] * 8],
        ]
        for by, (header, firsts) in expected.items():
            got, *lines = _csv(anyone.get("/v1/statistics/breakdown.csv", params=params | {"by": by}))
            assert got == header, by
            assert lines and {line[0] for line in lines} <= firsts, by
        court_line = _csv(anyone.get("/v1/statistics/breakdown.csv", params=params | {"by": "court"}))[1]
        assert court_line[:3] == [court.code, court.name, "8"]
        # The JSON is for programs: its codes stay.
        totals = anyone.get("/v1/statistics/listings", params=params).json()["totals"]
        assert totals["grounds"]["able_but_refuses"] == 8 and totals["reasons"]["performed"] == 5
        kinds = anyone.get("/v1/statistics/breakdown", params=params | {"by": "kind"}).json()["rows"]
        assert "person" in {row["key"] for row in kinds}
    # The exact figures' CSV reads alike, with a small count as it is.
    exact = _csv(admin.get("/v1/oversight/breakdown.csv", params=params | {"by": "special_subject"}))
    assert exact[0] == ["特殊主体类别", *FIGURE_HEADER]
    assert sorted(line[:2] for line in exact[1:]) == [["公务员", "6"], ["非特殊主体", "2"]]
    # Nothing in the period: the header alone.
    nothing = {"by": "province", "from": "1990-01-01", "to": "1990-01-31"}
    assert _csv(admin.get("/v1/oversight/breakdown.csv", params=nothing)) == [["省份"]]


@pytest.mark.parametrize(
    ("params", "code", "pointer"),
    [
        ({"from": "2026-13-01"}, "invalid_date", "/query/from"),
        ({"to": "٢٠٢٦-01-01"}, "invalid_date", "/query/to"),
        ({"province": "١١"}, "unknown_province", "/query/province"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "period_invalid", "/query/to"),
        ({"from": "2020-01-01", "to": "2026-01-01", "interval": "day"}, "period_too_long", "/query/interval"),
        ({"interval": "year"}, "unknown_interval", "/query/interval"),
        ({"province": "99"}, "unknown_province", "/query/province"),
        ({"court": "XX12"}, "invalid_court_code", "/query/court"),
        # A court no one has answered zeros, read as "no listings there".
        ({"court": "沪9999"}, "unknown_court", "/query/court"),
        # A misspelt filter was dropped: every province's figures, read as Beijing's.
        ({"provnce": "11"}, "unknown_filter", "/query/provnce"),
        ({"kind": "robot"}, "unknown_kind", "/query/kind"),
        ({"special_subject": "king"}, "unknown_special_subject", "/query/special_subject"),
        ({"by": "name"}, "unknown_breakdown", "/query/by"),
    ],
)
def test_bad_queries_answer_their_code(
    registry: Registry, params: dict[str, str], code: str, pointer: str
) -> None:
    with registry.http() as anyone:
        path = "/v1/statistics/breakdown" if "by" in params else "/v1/statistics/listings"
        response = anyone.get(path, params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code and response.json()["pointer"] == pointer


def test_a_parameter_given_twice_is_refused_not_the_last_taken(registry: Registry) -> None:
    with registry.http() as anyone:
        response = anyone.get("/v1/statistics/listings?court=京0105&court=京0106")
        breakdown = anyone.get("/v1/statistics/breakdown?by=province&from=2026-01-01&from=2025-01-01")
    for answer, name in ((response, "court"), (breakdown, "from")):
        assert answer.status_code == 400, answer.text
        assert (answer.json()["code"], answer.json()["pointer"]) == ("repeated_parameter", f"/query/{name}")


def test_full_width_digits_read_as_their_ascii_selves(registry: Registry, court: CourtHandle) -> None:
    """NFKC first, as the search and the court code: a date or province typed with a Chinese
    input method's full-width digits asks for the same figures (they were refused)."""
    publish_one(registry, court, registry.listing(court))
    follow_sync(registry.engine, READER)
    with registry.http() as anyone:
        ascii_ = anyone.get("/v1/statistics/listings", params={"from": "2026-01-01", "province": "11"})
        wide_params = {"from": "２０２６-０１-０１", "province": "１１"}
        wide = anyone.get("/v1/statistics/listings", params=wide_params)
    assert ascii_.status_code == wide.status_code == 200, wide.text
    assert wide.json() == ascii_.json()


def test_prometheus_gauges(registry: Registry, admin: httpx.Client, court: CourtHandle) -> None:
    publish_one(registry, court, registry.listing(court))
    before = admin.get("/metrics/statistics").text
    lag = [line for line in before.splitlines() if line.startswith("registry_statistics_reader_lag_events ")]
    assert float(lag[0].split()[1]) >= 1
    follow_sync(registry.engine, READER)
    text = admin.get("/metrics/statistics").text
    assert 'registry_statistics_active_listings{province="11"} 1.0' in text
    assert "registry_statistics_reader_lag_events 0.0" in text
    with registry.http(court.api_key) as http:
        assert http.get("/metrics/statistics").status_code == 403


def test_counter_helpers_agree() -> None:
    assert Counter(b for a, b in buckets(date(2026, 1, 30), date(2026, 3, 2), "month")) == Counter(
        [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 2)]
    )


def test_the_cli_follows_and_rebuilds(
    registry: Registry, admin: httpx.Client, court: CourtHandle, settings: Settings
) -> None:
    publish_one(registry, court, registry.listing(court))
    env = cli_env(settings)
    followed = subprocess.run(
        [registry_bin(), "statistics", "follow"], env=env, capture_output=True, text=True, check=True
    )
    assert followed.stdout.startswith("read ")
    rows = _exact(admin, "breakdown", {"by": "court", "from": "2000-01-01", "interval": "month"})["rows"]
    assert [(r["key"], r["figures"]["active_end"]) for r in rows] == [(court.code, 1)]
    with registry.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM statistics_counts"))
    subprocess.run(
        [registry_bin(), "statistics", "rebuild"], env=env, capture_output=True, text=True, check=True
    )
    again = _exact(admin, "breakdown", {"by": "court", "from": "2000-01-01", "interval": "month"})["rows"]
    assert again == rows


def test_compact_puts_the_counts_in_key_order_and_changes_no_figure(
    registry: Registry, admin: httpx.Client, court: CourtHandle, settings: Settings
) -> None:
    for _ in range(3):
        publish_one(registry, court, registry.listing(court))
    follow_sync(registry.engine, READER)
    params = {"by": "court", "from": "2000-01-01", "interval": "month"}
    figures = _exact(admin, "breakdown", params)
    key = "grain, period_start, area, debtor_kind, special_subject"
    with registry.engine.begin() as conn:
        # Rewritten in reverse key order: the scattered layout a compaction is for.
        primary_key = [column.desc() for column in STATISTICS_COUNTS.primary_key.columns]
        rows = conn.execute(sa.select(STATISTICS_COUNTS).order_by(*primary_key)).mappings().all()
        conn.execute(sa.text("DELETE FROM statistics_counts"))
        conn.execute(sa.insert(STATISTICS_COUNTS), [dict(row) for row in rows])
    compacted = subprocess.run(
        [registry_bin(), "statistics", "compact"],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        check=True,
    )
    assert _exact(admin, "breakdown", params) == figures
    if registry.engine.dialect.name != "postgresql":
        assert compacted.stdout.startswith("nothing to do")
        return
    assert compacted.stdout.startswith(f"{len(rows)} rows: ")
    with registry.engine.connect() as conn:
        stored = conn.execute(sa.text(f"SELECT {key} FROM statistics_counts ORDER BY ctid")).all()
        ordered = conn.execute(sa.text(f"SELECT {key} FROM statistics_counts ORDER BY {key}")).all()
    assert stored == ordered


def test_the_summary_counts_bank_checks_by_purpose_without_naming_a_bank(
    registry: Registry, admin: httpx.Client, court: CourtHandle
) -> None:
    body = registry.person_listing(court)
    publish_one(registry, court, body)
    _, http = bank(registry, "某某银行股份有限公司")
    with http:
        subjects = [{"id_number": body["debtor"]["id_number"]}, {"id_number": "11010519491231002X"}]
        answer = http.post(
            "/v1/checks", json={"purpose": "loan_application", "reference": "r1", "subjects": subjects}
        )
        assert answer.status_code == 200, answer.text
    sections = {s["key"]: s for s in _exact(admin, "summary", {})["sections"]}
    assert sections["bank_checks"]["rows"] == [{"purpose": "loan_application", "subjects": 2, "listed": 1}]
    assert "某某银行" not in json.dumps(sections, ensure_ascii=False)
    # People read the purpose in words; the JSON above keeps its code.
    csv_text = admin.get("/v1/oversight/summary/bank_checks/csv").text
    assert "查询用途" in csv_text and "新增贷款或授信审批,2,1" in csv_text
    assert "loan_application" not in csv_text
    with registry.http(court.api_key) as own:
        keys = [s["key"] for s in own.get("/v1/oversight/summary").json()["sections"]]
    assert keys == ["removal_timeliness", "corrections", "notices_by_agency", "special_subjects"]


def test_the_segments_count_every_day_of_the_period_once() -> None:
    """Whatever the period and today, the signed year, month and day rows that a query reads
    add up to each day of the period once and to no day outside it."""
    rng = random.Random(17)

    def days(grain: str, first: date, last: date) -> list[date]:
        out: list[date] = []
        for start in (first + timedelta(days=n) for n in range((last - first).days + 1)):
            if grain == "d":
                out.append(start)
            elif grain == "m" and start.day == 1:
                end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
                out += [start + timedelta(days=n) for n in range((end - start).days)]
            elif grain == "y" and start.month == 1 and start.day == 1:
                out += [start + timedelta(days=n) for n in range((date(start.year + 1, 1, 1) - start).days)]
        return out

    base = date(2026, 12, 6)
    for _ in range(300):
        start = base - timedelta(days=rng.randint(0, 1500))
        end = start + timedelta(days=rng.randint(0, 1200))
        today = base - timedelta(days=rng.randint(0, 900))
        for years in (True, False):
            seen: Counter[date] = Counter()
            for grain, first, last, sign in _segments(start, end, True, today, years=years):
                assert years or grain != "y"
                for day in days(grain, first, last):
                    seen[day] += sign
            wanted = Counter(start + timedelta(days=n) for n in range((end - start).days + 1))
            assert +seen == wanted and not -seen, (start, end, today, years)

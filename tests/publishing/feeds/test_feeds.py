"""Atom, RSS and JSON feeds and the delta API, over a real server, read by feedparser."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any
from xml.etree import ElementTree

import feedparser
import httpx
import pytest
import sqlalchemy as sa

from publishing.feeds import entries
from registry.listings.services import expire_due
from registry.listings.wording import cn_date
from registry.settings import Settings
from registry.timeutil import utcnow
from tests.support.harness import CourtHandle, Registry, cli_env, registry_bin
from tests.support.listings import (
    ending_today,
    expire_tomorrow,
    passport_holder_named,
    publish_one,
)
from tests.support.publishing import publish, remove, sync_feeds

FEEDS = ("/feeds/atom.xml", "/feeds/rss.xml", "/feeds/feed.json")
# A removal names the entry by id and case number only: never the person again.
REMOVAL_FIELDS = {
    "id", "court_code", "court_name", "province_code", "province", "case_number", "reason", "effective_on",
}  # fmt: skip


def _json_feed(http: httpx.Client, **params: Any) -> dict[str, Any]:
    response = http.get("/feeds/feed.json", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/feed+json")
    feed: dict[str, Any] = response.json()
    return feed


def test_feeds_carry_publications_and_removals_newest_first(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    ids = publish(registry, court, 3)
    with registry.http(court.api_key) as http:
        removed = http.get(f"/v1/listings/{ids[0]}").json()
    removed_on = remove(registry, court, ids[0], reason="performed")
    sync_feeds(engine)
    # Newest first: the removal, then the two still published.
    expected_ids = [f"urn:defaulter-registry:listing:{i}" for i in (ids[0], ids[2], ids[1])]

    with registry.http() as http:
        for path in ("/feeds/atom.xml", "/feeds/rss.xml"):
            response = http.get(path)
            assert response.status_code == 200, response.text
            parsed = feedparser.parse(response.content)
            assert parsed.bozo == 0, parsed.get("bozo_exception")
            titles = [entry.title for entry in parsed.entries]
            assert len(titles) == 3, titles
            # Newest first: the removal, then the two listings still published.
            assert titles[0].startswith("移出："), titles
            assert all(t.startswith("发布：") for t in titles[1:]), titles
            removal_text = parsed.entries[0].get("content", [{}])[0].get("value") or parsed.entries[0].summary
            # The reason in the Provisions' words, the date as people write it in China.
            assert "移出原因：被执行人已履行义务或人民法院已执行完毕" in removal_text
            assert "performed" not in removal_text
            assert f"{removed_on.year}年{removed_on.month}月{removed_on.day}日" in removal_text
            # The removal names the case, never the person again (Art. 10: deleted, not published).
            assert removed["case_number"] in titles[0] and removed["case_number"] in removal_text
            for shown in (titles[0], removal_text):
                assert removed["debtor"]["name"] not in shown and "证件号码" not in shown
            # No doubled brackets around a case number, and the grounds in words.
            assert all("（（" not in t and "号）" not in t for t in titles), titles
            # Entries are named by listing: the removal replaces, in a reader, the entry it
            # fetched when the listing was published (one id per event kept both).
            assert [entry.id for entry in parsed.entries] == expected_ids
            published_text = (
                parsed.entries[1].get("content", [{}])[0].get("value") or parsed.entries[1].summary
            )
            assert "失信被执行人行为具体情形：" in published_text and "_" not in published_text
        feed = _json_feed(http)
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    items = feed["items"]
    assert [item["_registry"]["event"] for item in items] == ["removed", "published", "published"]
    # Tags in words, as the Atom categories' labels; `_registry` keeps the codes.
    assert [item["tags"] for item in items] == [["移出"], ["发布"], ["发布"]]
    assert [item["id"] for item in items] == expected_ids
    # The removal is a change to the entry, not a new publication.
    assert "date_published" not in items[0] and items[0]["date_modified"]
    assert all(item["date_published"] == item["date_modified"] for item in items[1:])
    seqs = [item["_registry"]["seq"] for item in items]
    assert seqs == sorted(seqs, reverse=True)
    removal = items[0]["_registry"]["removal"]
    assert set(removal) == REMOVAL_FIELDS
    assert removal["id"] == ids[0] and removal["reason"] == "performed"
    assert "entry" not in items[0]["_registry"] or items[0]["_registry"]["entry"] is None
    published = {item["_registry"]["entry"]["id"] for item in items[1:]}
    assert published == set(ids[1:])
    # Each removal field is one the publication itself carried; the JSON keeps the codes.
    assert REMOVAL_FIELDS - {"reason", "effective_on"} <= set(items[1]["_registry"]["entry"])
    assert removed["debtor"]["name"] not in json.dumps(items[0], ensure_ascii=False)
    # Nothing of the removed listing but its removal notice.
    assert all(item["_registry"].get("entry", {}) is None or item["_registry"]["entry"]["id"] != ids[0]
               for item in items)  # fmt: skip


@pytest.mark.slow
def test_conditional_get_answers_304_until_something_changes(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings
) -> None:
    publish(registry, court, 2)
    # The scheduler's job, as `registry feeds sync` runs it.
    synced = subprocess.run(
        [registry_bin(), "feeds", "sync"], env=cli_env(settings), capture_output=True, text=True, check=False
    )
    assert synced.returncode == 0, synced.stderr
    with registry.http() as http:
        http.get(FEEDS[0])
        # HTTP dates have whole seconds: a Last-Modified is one to send back once the page
        # has been as it is for a whole second (before, If-Modified-Since is answered 200).
        time.sleep(1.1)
        for path in FEEDS:
            first = http.get(path)
            assert first.status_code == 200
            etag, modified = first.headers["etag"], first.headers["last-modified"]
            again = http.get(path, headers={"If-None-Match": etag})
            assert again.status_code == 304 and again.content == b""
            assert again.headers["etag"] == etag
            since = http.get(path, headers={"If-Modified-Since": modified})
            assert since.status_code == 304
        # A date ahead of the server's clock is invalid (RFC 9110 13.1.3), so ignored: a reader
        # whose clock runs fast would otherwise be told 304 after every change.
        ahead = format_datetime(datetime.now(UTC) + timedelta(minutes=2), usegmt=True)
        assert http.get(FEEDS[0], headers={"If-Modified-Since": ahead}).status_code == 200
        publish(registry, court, 1)
        sync_feeds(engine)
        assert http.get(FEEDS[0], headers={"If-Modified-Since": ahead}).status_code == 200
        changed = http.get("/feeds/atom.xml", headers={"If-None-Match": etag})
        assert changed.status_code == 200
        assert http.get(FEEDS[-1], headers={"If-Modified-Since": modified}).status_code == 200
        assert changed.headers["etag"] != etag
        assert len(feedparser.parse(changed.content).entries) == 3
        # A different filter is a different document with its own validator.
        other = http.get("/feeds/atom.xml", params={"kind": "person"})
        assert other.headers["etag"] != changed.headers["etag"]


def test_filters_by_province_court_and_kind(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    shanghai = registry.court("沪0115", "上海市浦东新区人民法院", "31")
    beijing_ids = set(publish(registry, court, 6))
    shanghai_ids = set(publish(registry, shanghai, 4))
    sync_feeds(engine)
    with registry.http() as http:

        def ids(**params: Any) -> set[str]:
            return {item["_registry"]["entry"]["id"] for item in _json_feed(http, **params)["items"]}

        assert ids(province="31") == shanghai_ids
        assert ids(province="11") == beijing_ids
        # Full-width input is normalised like everything else.
        assert ids(court="沪０１１５") == shanghai_ids
        assert ids(province="44") == set()
        people = ids(kind="person")
        organisations = ids(kind="organization")
        assert people | organisations == beijing_ids | shanghai_ids and not people & organisations
        for item in _json_feed(http, kind="organization", court="京0105")["items"]:
            entry = item["_registry"]["entry"]
            assert entry["kind"] == "organization" and entry["court_code"] == "京0105"
        parsed = feedparser.parse(http.get("/feeds/atom.xml", params={"province": "31"}).content)
        assert parsed.bozo == 0 and len(parsed.entries) == 4


def test_pages_follow_rfc5005_next_links_without_gaps(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Any
) -> None:
    size = settings.feeds.feed_page_size
    publish(registry, court, size + 7)
    sync_feeds(engine)
    seen: list[str] = []
    pages = 0
    with registry.http() as http:
        url: str | None = f"{registry.url}/feeds/atom.xml"
        while url is not None:
            parsed = feedparser.parse(http.get(url).content)
            assert parsed.bozo == 0
            pages += 1
            seen += [entry.id for entry in parsed.entries]
            links = {link.rel: link.href for link in parsed.feed.links}
            assert links["first"].endswith("/feeds/atom.xml")
            url = links.get("next")
        json_pages = 0
        next_url: str | None = f"{registry.url}/feeds/feed.json"
        json_seen: list[str] = []
        json_seqs: list[int] = []
        while next_url is not None:
            feed = http.get(next_url).json()
            json_pages += 1
            json_seen += [item["id"] for item in feed["items"]]
            json_seqs += [item["_registry"]["seq"] for item in feed["items"]]
            next_url = feed.get("next_url")
    assert pages == json_pages == 2
    assert len(seen) == size + 7 == len(set(seen))
    assert seen == json_seen and json_seqs == sorted(json_seqs, reverse=True)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"colour": "red"}, "unknown_filter"),
        ({"province": "99"}, "unknown_province"),
        ({"province": "北京"}, "unknown_province"),
        ({"kind": "robot"}, "unknown_kind"),
        ({"court": "京9999"}, "unknown_court"),
        ({"court": ""}, "unknown_court"),
        ({"before": "abc"}, "invalid_cursor"),
        ({"before": "0"}, "invalid_cursor"),
        ({"before": str(2**70)}, "invalid_cursor"),
        ({"before": "9" * 5000}, "invalid_cursor"),
        # ASCII digits and nothing else: stripped, these read as 1 or 500 (200).
        ({"before": "1\u2028"}, "invalid_cursor"),
        ({"before": "\u2028500"}, "invalid_cursor"),
        ({"before": "\u0085500"}, "invalid_cursor"),
        ({"before": " 1"}, "invalid_cursor"),
        ({"before": "1 "}, "invalid_cursor"),
        ({"before": "１"}, "invalid_cursor"),
        ({"before": "٣"}, "invalid_cursor"),
        ([("kind", "person"), ("kind", "organization")], "repeated_parameter"),
        ([("before", "5"), ("before", "500")], "repeated_parameter"),
    ],
)
def test_bad_feed_requests_are_4xx_problems(
    registry: Registry, court: CourtHandle, params: Any, code: str
) -> None:
    with registry.http() as http:
        for path in FEEDS:
            response = http.get(path, params=params)
            assert response.status_code == 400, (path, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["code"] == code
            if code != "unknown_filter":  # the parameter at fault, as every query parameter is named
                [name] = {key for key, _ in (params.items() if isinstance(params, dict) else params)}
                assert response.json()["pointer"] == f"/query/{name}"


@pytest.mark.parametrize("excluded_in_sql", [500, 0], ids=["in-sql", "as-read"])
def test_delta_api_never_skips_or_repeats(
    registry: Registry,
    court: CourtHandle,
    engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
    excluded_in_sql: int,
) -> None:
    # The server runs in this process: the rows the tail replaces are left out by the
    # statement, or (past the bound) as they are read.
    monkeypatch.setattr(entries, "_EXCLUDED_IN_SQL", excluded_in_sql)
    ids = publish(registry, court, 5)
    sync_feeds(engine)
    got: list[dict[str, Any]] = []
    after = 0
    with registry.http() as http:
        while True:
            page = http.get("/v1/publications", params={"after": after, "limit": 2}).json()
            got += page["items"]
            if not page["items"]:
                break
            after = page["next_after"]
        assert [item["entry"]["id"] for item in got] == ids
        seqs = [item["seq"] for item in got]
        assert seqs == sorted(seqs) and len(set(seqs)) == 5

        # Changes after the reader's position show at once, read from the log itself; the
        # reader's later run changes nothing a client sees.
        remove(registry, court, ids[2])
        more = publish(registry, court, 1)
        page = http.get("/v1/publications", params={"after": after}).json()
        assert [(i["event"], (i["entry"] or i["removal"])["id"]) for i in page["items"]] == [
            ("removed", ids[2]),
            ("published", more[0]),
        ]
        assert page["items"][0]["entry"] is None and set(page["items"][0]["removal"]) == REMOVAL_FIELDS
        # From the start, the removed listing's publication (still in the reader's table) is
        # replaced by its removal, in log order.
        from_start = http.get("/v1/publications", params={"after": 0}).json()
        sync_feeds(engine)
        assert http.get("/v1/publications", params={"after": after}).json() == page
        assert http.get("/v1/publications", params={"after": 0}).json() == from_start
        assert [(i["event"], (i["entry"] or i["removal"])["id"]) for i in from_start["items"]] == [
            *[("published", listing_id) for listing_id in ids if listing_id != ids[2]],
            ("removed", ids[2]),
            ("published", more[0]),
        ]
        again = http.get("/v1/publications", params={"after": page["next_after"]}).json()
        assert again["items"] == [] and again["next_after"] == page["next_after"]


def test_a_removal_leaves_the_feeds_when_it_commits_before_the_reader_runs(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    ids = publish(registry, court, 3)
    sync_feeds(engine)
    with registry.http() as http:
        before = http.get("/feeds/feed.json")
        remove(registry, court, ids[1])
        with engine.connect() as conn:
            behind = conn.execute(
                sa.text("SELECT count(*) FROM publications WHERE listing_id = :id AND event = 'published'"),
                {"id": ids[1]},
            ).scalar_one()
        assert behind == 1  # the reader has not run
        feed = http.get("/feeds/feed.json")
        # A new page (not the cached one), whose validators moved with the log.
        assert feed.headers["etag"] != before.headers["etag"]
        stale_copy = {"If-None-Match": before.headers["etag"]}
        assert http.get("/feeds/feed.json", headers=stale_copy).status_code == 200
        items = feed.json()["items"]
        newest = items[0]["_registry"]
        assert newest["event"] == "removed" and newest["removal"]["id"] == ids[1]
        shown = [item["_registry"]["entry"]["id"] for item in items[1:]]
        assert shown == [ids[2], ids[0]]
        atom = http.get("/feeds/atom.xml").text
        assert atom.count("<entry>") == 3 and atom.count('<category term="removed"') == 1
        # The log moves on before the reader: the page extends the same tail with the new
        # events, the later removal replacing the listing's publication there too.
        (later,) = publish(registry, court, 1)
        remove(registry, court, ids[0])
        items = http.get("/feeds/feed.json").json()["items"]
        entries = [item["_registry"] for item in items]
        shown = [(entry["event"], (entry.get("entry") or entry["removal"])["id"]) for entry in entries]
        expected = [("removed", ids[0]), ("published", later), ("removed", ids[1]), ("published", ids[2])]
        assert shown == expected
        sync_feeds(engine)
        assert http.get("/feeds/feed.json").json()["items"] == items


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "100000"},
        {"after": "-1"},
        {"after": "abc"},
        {"after": str(2**64)},
        {"after": "999999"},
    ],
)
def test_bad_delta_requests_are_4xx(registry: Registry, params: dict[str, str]) -> None:
    with registry.http() as http:
        response = http.get("/v1/publications", params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] in {"invalid_parameter", "invalid_cursor"}


@pytest.mark.slow
def test_amendments_replace_and_expiries_remove_entries(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings
) -> None:
    fixed = ending_today(registry, court)
    body = registry.person_listing(court)
    with registry.http(court.api_key) as http:
        fixed_id = http.post("/v1/listings", json=registry.envelope(court, fixed)).json()["listing_id"]
        amended_id = http.post("/v1/listings", json=registry.envelope(court, body)).json()["listing_id"]
        new_obligations = "被执行人应向申请执行人支付人民币五千元。"
        amended = dict(body, submission_id=str(uuid.uuid4()), obligations=new_obligations)
        response = http.post(f"/v1/listings/{amended_id}/amendments", json=registry.envelope(court, amended))
        assert response.status_code == 200, response.text
    assert expire_tomorrow(registry) == 1
    sync_feeds(engine)

    with registry.http() as http:
        items = _json_feed(http)["items"]
        parsed = feedparser.parse(http.get("/feeds/atom.xml").content)
    events = [(item["_registry"]["event"], (item["_registry"]["entry"] or item["_registry"]["removal"])["id"])
              for item in items]  # fmt: skip
    # One entry per listing, at its latest event.
    assert events == [("expired", fixed_id), ("amended", amended_id)]
    assert items[1]["_registry"]["entry"]["obligations"] == new_obligations
    assert items[0]["_registry"]["removal"]["reason"] == "term_expired"
    # Its date is the term's last day, through which it was still shown: not a 移出日期.
    assert f"纳入期限届满日：{cn_date(registry.today)}" in items[0]["content_text"]
    assert "移出日期" not in items[0]["content_text"]
    assert parsed.bozo == 0
    assert [entry.title.split("：")[0] for entry in parsed.entries] == ["期满移出", "更正"]
    assert [item["tags"] for item in items] == [["期满移出"], ["更正"]]


def test_one_entry_that_xml_cannot_hold_is_left_out_not_the_whole_feed(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    good, poisoned = publish(registry, court, 2)
    # A name stored before every field passed the one text check (legacy data): XML 1.0
    # cannot hold U+0001.
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE listings SET debtor_name = :name WHERE id = :id"),
            {"name": "张\x01三", "id": poisoned},
        )
    sync_feeds(engine)
    with registry.http() as http:
        for path in ("/feeds/atom.xml", "/feeds/rss.xml"):
            response = http.get(path)
            assert response.status_code == 200, response.text
            parsed = feedparser.parse(response.content)
            assert parsed.bozo == 0 and len(parsed.entries) == 1
            assert parsed.entries[0].title.startswith("发布：")
        assert {i["_registry"]["entry"]["id"] for i in _json_feed(http)["items"]} == {good, poisoned}


MARKUP = '<img src=x onerror="alert(1)">&amp;<b>粗</b>'


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text += data


def _as_html(fragment: str) -> _Tags:
    parser = _Tags()
    parser.feed(fragment)
    parser.close()
    return parser


def test_court_supplied_markup_is_text_in_every_feed(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    publish(registry, court, 1, obligations=f"支付货款 {MARKUP}")
    sync_feeds(engine)
    with registry.http() as http:
        rss = ElementTree.fromstring(http.get("/feeds/rss.xml").content)
        atom = ElementTree.fromstring(http.get("/feeds/atom.xml").content)
        parsed = feedparser.parse(http.get("/feeds/rss.xml").content)
    [description] = [item.findtext("description") or "" for item in rss.iter("item")]
    # RSS readers render <description> as HTML: it must hold no element but line breaks,
    # and show the court's markup as the characters it is.
    shown = _as_html(description)
    assert set(shown.tags) <= {"br"}, shown.tags
    assert MARKUP in shown.text
    # feedparser (as a reader does) sees no img element either.
    assert "<img" not in parsed.entries[0].summary
    assert "&lt;img" in parsed.entries[0].summary
    # Atom: a text construct, never html.
    ns = {"a": "http://www.w3.org/2005/Atom"}
    [content] = atom.findall("a:entry/a:content", ns)
    assert content.get("type") == "text"
    assert list(content) == [] and MARKUP in (content.text or "")


def _second(header: str) -> int:
    return int(parsedate_to_datetime(header).timestamp())


def test_if_modified_since_never_keeps_a_removal_made_in_the_same_second(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    ids = publish(registry, court, 5)
    same_second = 0
    with registry.http() as http:
        for listing_id in ids:
            # Just past a second's start, so that the reader's run, the page and the removal
            # share one second: what a one-second date cannot tell apart.
            while time.time() % 1 > 0.05:
                time.sleep(0.005)
            sync_feeds(engine)
            copy = http.get("/feeds/feed.json")
            assert listing_id in copy.text
            remove(registry, court, listing_id)
            same_second += int(time.time()) == _second(copy.headers["last-modified"])
            again = http.get("/feeds/feed.json", headers={"If-Modified-Since": copy.headers["last-modified"]})
            assert again.status_code == 200
            assert again.json()["items"][0]["_registry"]["removal"]["id"] == listing_id
            assert _second(again.headers["last-modified"]) >= _second(copy.headers["last-modified"])
    assert same_second, "no removal fell in the second of the copy's Last-Modified"


def test_if_modified_since_never_keeps_a_change_stamped_before_the_reader_ran(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    listing_id = publish_one(registry, court, ending_today(registry, court))
    sync_feeds(engine)
    with registry.http() as http:
        http.get("/feeds/feed.json")
        time.sleep(1.1)
        copy = http.get("/feeds/feed.json")
        modified = copy.headers["last-modified"]
        assert http.get("/feeds/feed.json", headers={"If-Modified-Since": modified}).status_code == 304
        # An event is stamped when written, before it commits: here seconds before the
        # reader's run above, which went without it.
        stamped = utcnow() - timedelta(seconds=5)
        with engine.begin() as conn:
            assert expire_due(conn, today=registry.today + timedelta(days=1), now=stamped) == 1
        again = http.get("/feeds/feed.json", headers={"If-Modified-Since": modified})
        assert again.status_code == 200
        assert again.json()["items"][0]["_registry"]["removal"]["id"] == listing_id
        assert _second(again.headers["last-modified"]) >= _second(modified)


def test_a_field_the_entry_lacks_reads_a_dash_not_an_empty_label(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    """A passport gives neither sex nor age: the feed's text says so as the entry page does."""
    body = passport_holder_named(registry, court, "欧阳明")
    publish_one(registry, court, body)
    sync_feeds(engine)
    with registry.http() as http:
        [item] = _json_feed(http)["items"]
    assert "性别：—　公布时年龄：—" in item["content_text"]
    # The passport's country in words, as on the entry page, not its ISO code.
    assert "护照：加拿大 *********" in item["content_text"]
    assert "CAN" not in item["content_text"]
    assert "：　" not in item["content_text"] and not any(
        line.endswith("：") for line in item["content_text"].splitlines()
    )

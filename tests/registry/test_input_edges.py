"""Input at the edges of what a parameter or a field can hold, each answered by a 4xx problem
with its code before anything runs: statistics periods past today (near 9999-12-31 the
period arithmetic overflowed: 500), query-log times out of the calendar once in UTC (a 200
whose stream then broke) or given as numbers, push endpoints whose host the resolver's IDNA
step refuses (500), listing versions in other scripts' digits or with a sign, integer query
parameters written as floats, and format characters (U+200B, U+200F, U+FEFF...) that the
registry accepted in a name its own search then refused. Run with
REGISTRY_TEST_DATABASE_URL for PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import unicodedata
from datetime import timedelta
from urllib.parse import quote

import httpx
import pytest

from registry.clients.services import create_client
from registry.identity.crypto import BlindIndex
from registry.problems import Problem
from registry.settings import Settings
from registry.timeutil import utcnow
from tests.support.checks import bank
from tests.support.harness import CourtHandle, Registry
from tests.support.listings import person_named, publish_one, removal_body

PROBLEM = "application/problem+json"


def assert_problem(answer: httpx.Response, status: int, code: str, pointer: str | None = None) -> None:
    assert answer.status_code == status, (answer.request.url, answer.text)
    assert answer.headers["content-type"].startswith(PROBLEM)
    assert answer.json()["code"] == code, answer.text
    if pointer is not None:
        assert answer.json()["pointer"] == pointer, answer.text


# ---- statistics: a period ends today in China at the latest ----

STATISTICS_PUBLIC = [
    "/v1/statistics/listings",
    "/v1/statistics/listings.csv",
    "/v1/statistics/breakdown",
    "/v1/statistics/breakdown.csv",
    "/statistics/charts/series.svg",
]
STATISTICS_ADMIN = [
    "/v1/oversight/listings",
    "/v1/oversight/breakdown",
    "/v1/oversight/summary",
    "/oversight/charts/removal_timeliness.svg",
]


def _periods(registry: Registry) -> list[tuple[dict[str, str], str]]:
    tomorrow = (registry.today + timedelta(days=1)).isoformat()
    return [
        ({"to": "9999-12-31"}, "/query/to"),
        ({"from": "9999-12-01", "to": "9999-12-31", "interval": "day"}, "/query/from"),
        ({"from": registry.today.isoformat(), "to": tomorrow, "interval": "week"}, "/query/to"),
        ({"from": tomorrow}, "/query/from"),
    ]


def test_a_statistics_period_past_today_is_period_invalid(registry: Registry, admin: httpx.Client) -> None:
    with registry.http() as public:
        for params, pointer in _periods(registry):
            for path in STATISTICS_PUBLIC:
                assert_problem(public.get(path, params=params), 400, "period_invalid", pointer)
            for path in STATISTICS_ADMIN:
                assert_problem(admin.get(path, params=params), 400, "period_invalid", pointer)


def test_the_statistics_pages_refuse_a_period_past_today(registry: Registry, admin: httpx.Client) -> None:
    with registry.http() as public:
        refused = public.get("/statistics/", params={"to": "9999-12-31", "interval": "day"})
    assert refused.status_code == 400 and refused.headers["content-type"].startswith("text/html")
    oversight = admin.get("/oversight/", params={"to": "9999-12-31"})
    assert oversight.status_code == 400 and oversight.headers["content-type"].startswith("text/html")


# ---- the bank query-log export: times with their zone, inside the calendar in UTC ----


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("to", "0001-01-01T00:00:00+14:00"),
        ("from", "9999-12-31T23:59:59-14:00"),
        ("from", "1700000000"),
        ("from", "1e9"),
        ("to", "-1.5"),
        ("from", "0"),
    ],
)
@pytest.mark.parametrize("format", ["ndjson", "csv"])
def test_a_query_log_time_out_of_range_or_as_a_number_is_refused_before_streaming(
    registry: Registry, admin: httpx.Client, name: str, value: str, format: str
) -> None:
    client_id, http = bank(registry)
    http.close()
    answer = admin.get(f"/v1/admin/banks/{client_id}/query-log", params={name: value, "format": format})
    assert_problem(answer, 400, "invalid_parameter", f"/query/{name}")


# ---- push endpoints: a host the resolver cannot encode is refused when it is set ----

BAD_HOSTS = [
    "https://a..example.com/hook",
    "https://.example.com/",
    "https://" + "a" * 64 + ".example.com/hook",
    "https://example.com../hook",
]


@pytest.mark.parametrize("url", BAD_HOSTS)
def test_a_watchlist_endpoint_with_a_bad_host_label_is_422(registry: Registry, url: str) -> None:
    _, http = bank(registry)
    with http:
        assert_problem(http.put("/v1/watchlist/endpoint", json={"endpoint": url}), 422, "invalid_endpoint")


@pytest.mark.parametrize("url", BAD_HOSTS)
def test_a_push_subscription_with_a_bad_host_label_is_422(
    registry: Registry, admin: httpx.Client, url: str
) -> None:
    with registry.engine.begin() as conn:
        agency_id, _ = create_client(conn, "征信中心", "agency", None, actor="test", now=utcnow())
    body = {"client_id": agency_id, "profile": "credit_reference", "mode": "push", "endpoint_url": url}
    assert_problem(admin.post("/v1/sync/subscriptions", json=body), 422, "invalid_endpoint_url")


def test_a_stored_endpoint_whose_host_idna_refuses_is_refused_at_the_send() -> None:
    """One set before the check: its send is refused (nothing sent) rather than failing."""
    from registry.endpoints import EndpointRefused, PushPolicy

    with pytest.raises(EndpointRefused):
        asyncio.run(PushPolicy().permitted_addresses("https", "a..example.com", 443))


# ---- a listing version is ASCII digits ----


@pytest.mark.parametrize("version", ["١", "१", "๑", "𝟏", "+1", " 1", "1 "])
def test_a_listing_version_in_other_digits_or_with_a_sign_is_400(
    registry: Registry, court: CourtHandle, version: str
) -> None:
    listing_id = publish_one(registry, court, registry.person_listing(court))
    with registry.http(court.api_key) as http:
        answer = http.get(f"/v1/listings/{listing_id}/versions/{quote(version)}")
        assert_problem(answer, 400, "invalid_parameter")
        assert http.get(f"/v1/listings/{listing_id}/versions/1").status_code == 200


# ---- integer query parameters are ASCII digits on every route ----

# (who asks, path) for integer parameters of several routes and packages.
INTEGER_QUERIES = [
    ("admin", "/v1/events?after={v}"),
    ("admin", "/v1/events?limit={v}"),
    ("admin", "/v1/removals/late?offset={v}"),
    ("admin", "/v1/corrections?limit={v}"),
    ("admin", "/v1/corrections/events?after={v}"),
    ("public", "/v1/publications?after={v}"),
    ("public", "/v1/log/checkpoints?after_size={v}"),
    ("public", "/v1/log/checkpoints?limit={v}"),
    ("bank", "/v1/watchlist/changes?after={v}"),
    ("bank", "/v1/watchlist/changes?limit={v}"),
]


@pytest.mark.parametrize("value", ["1e1", "1E1", "10.0", "1e3"])
def test_an_integer_query_parameter_as_a_float_is_400(
    registry: Registry, admin: httpx.Client, value: str
) -> None:
    _, bank_http = bank(registry)
    clients = {"admin": admin, "public": registry.http(), "bank": bank_http}
    for who, path in INTEGER_QUERIES:
        name = path.split("?")[1].split("=")[0]
        answer = clients[who].get(path.replace("{v}", quote(value)))
        assert_problem(answer, 400, "invalid_parameter", f"/query/{name}")
        assert clients[who].get(path.replace("{v}", "1")).status_code == 200, path


# ---- a paging or cursor parameter is given once on every route ----

# (who asks, path): the path takes `name=1&name=2` for `{rep}`. Every integer query parameter of
# every route (the check is the app's hook, by the parameters' types), the snapshot's `after`
# (text, its handler's), the feeds' `before`, the search's `page`.
REPEATED_QUERIES = [
    ("admin", "/v1/events?{rep}", "after"),
    ("admin", "/v1/events?{rep}", "limit"),
    ("public", "/v1/publications?{rep}", "after"),
    ("public", "/v1/publications?{rep}", "limit"),
    ("public", "/v1/log/checkpoints?{rep}", "after_size"),
    ("public", "/v1/log/checkpoints?{rep}", "limit"),
    ("public", "/v1/log/checkpoint?{rep}", "size"),
    ("public", "/v1/log/proof/consistency?first=1&{rep}", "second"),
    ("public", "/v1/log/proof/inclusion?{rep}", "seq"),
    ("admin", "/v1/corrections/events?{rep}", "after"),
    ("admin", "/v1/corrections/events?{rep}", "limit"),
    ("admin", "/v1/corrections?{rep}", "limit"),
    ("admin", "/v1/corrections?{rep}", "offset"),
    ("admin", "/v1/removals/late?{rep}", "limit"),
    ("admin", "/v1/removals/late?{rep}", "offset"),
    ("bank", "/v1/watchlist/changes?{rep}", "after"),
    ("bank", "/v1/watchlist/changes?{rep}", "limit"),
    ("agency", "/v1/sync/{sub}/events?{rep}", "after"),
    ("agency", "/v1/sync/{sub}/events?{rep}", "limit"),
    ("agency", "/v1/sync/{sub}/snapshot?{rep}", "after"),
    ("agency", "/v1/sync/{sub}/snapshot?{rep}", "limit"),
    ("public", "/feeds/atom.xml?{rep}", "before"),
    ("public", "/v1/public/defaulters?q=张&province=11&{rep}", "page"),
]


@pytest.mark.parametrize(("who", "route", "name"), REPEATED_QUERIES)
def test_a_repeated_paging_or_cursor_parameter_is_400_repeated_parameter(
    registry: Registry, court: CourtHandle, admin: httpx.Client, who: str, route: str, name: str
) -> None:
    """Litestar took the last of `after=1&after=300` (a pull or a delta read skipping events):
    which one was meant is a guess, refused as the search refuses it. Given once, it is read."""
    listing_id = publish_one(registry, court, registry.person_listing(court))
    with registry.engine.begin() as conn:
        agency_id, agency_key = create_client(conn, "征信中心", "agency", None, actor="test", now=utcnow())
    sub = admin.post(
        "/v1/sync/subscriptions", json={"client_id": agency_id, "profile": "credit_reference", "mode": "pull"}
    ).json()["id"]
    _, bank_http = bank(registry)
    http = {
        "admin": admin,
        "public": registry.http(),
        "bank": bank_http,
        "agency": registry.http(agency_key),
    }[who]
    path = route.replace("{sub}", sub)
    # A value each route takes once: a listing id for the snapshot's cursor, a number elsewhere.
    value = listing_id if name == "after" and "snapshot" in path else "1"
    answer = http.get(path.replace("{rep}", f"{name}={value}&{name}={value}"))
    assert_problem(answer, 400, "repeated_parameter", f"/query/{name}")
    once = http.get(path.replace("{rep}", f"{name}={value}"))
    assert once.status_code in {200, 404}, (path, once.text)  # 404: no checkpoint yet


def test_every_route_checks_its_integer_query_parameters(settings: Settings) -> None:
    """The check is the app's `before_request` hook; Litestar keeps a layer's own hook
    instead, so no route may set one."""
    from litestar.handlers import HTTPRouteHandler

    from registry.http.params import strict_query_integers
    from service.app import create_app

    app = create_app(settings, run_scheduler=False)
    handlers = [h for route in app.routes for h in getattr(route, "route_handlers", [])]
    http_handlers = [h for h in handlers if isinstance(h, HTTPRouteHandler)]
    assert http_handlers
    for handler in http_handlers:
        assert handler.resolve_before_request() is strict_query_integers, handler


# ---- format characters: one rule for the registry and its search ----

FORMAT_NAMES = {
    "zwsp": "张\u200b伟",
    "rlm": "张伟\u200f",
    "alm": "\u061c张伟",
    "shy": "张\u00ad伟",
    "bom": "\ufeff张伟",
    "tag": "张\U000e0041伟",
    "word_joiner": "张\u2060伟",
    "line_separator": "张\u2028伟",
}


@pytest.mark.parametrize("ascii_only", [False, True], ids=["utf8", "escaped"])
@pytest.mark.parametrize("name", sorted(FORMAT_NAMES))
def test_a_debtor_name_with_a_format_character_is_refused(
    registry: Registry, court: CourtHandle, name: str, ascii_only: bool
) -> None:
    """Raw in the UTF-8 and as a JSON escape (`\\u200b`, a surrogate pair for a tag)."""
    envelope = registry.envelope(court, person_named(registry, court, FORMAT_NAMES[name]))
    body = json.dumps(envelope, ensure_ascii=ascii_only).encode()
    with registry.http(court.api_key) as http:
        answer = http.post("/v1/listings", content=body, headers={"content-type": "application/json"})
    assert_problem(answer, 422, "invalid_field", "/listing/debtor/name")


def test_obligations_may_break_lines_but_not_with_a_line_separator(
    registry: Registry, court: CourtHandle
) -> None:
    body = registry.person_listing(court)
    body["obligations"] = "偿还借款本金\u2028及利息"
    with registry.http(court.api_key) as http:
        answer = http.post("/v1/listings", json=registry.envelope(court, body))
    assert_problem(answer, 422, "invalid_field", "/listing/obligations")


# Blank by design, of other categories: a name holding one looks like the name without it.
BLANKS = ("\u034f", "\u115f", "\u1160", "\u17b4", "\u17b5", "\u2800", "\u3164", "\uffa0")


def _format_and_controls() -> list[str]:
    return [
        chr(c)
        for c in range(0x110000)
        if unicodedata.category(chr(c)) in ("Cc", "Cf") or c in (0x2028, 0x2029)
    ] + list(BLANKS)


def test_every_control_and_format_character_is_forbidden() -> None:
    from registry.text import IDENTIFIER_PATTERN, forbidden_character

    assert [ch for ch in _format_and_controls() if forbidden_character(ch) != ch] == []
    in_text = [ch for ch in _format_and_controls() if ch != "\n"]
    assert [ch for ch in in_text if forbidden_character(ch, multiline=True) != ch] == []
    # Not refused: what names and texts hold, the middle dot of a transliterated name, the
    # ideographic space, and the variation selectors that pick an ideograph's form (Mn).
    for ch in ("张", "A", "1", "\u00b7", "\u3000", "\ufe00", "\U000e0100", " "):
        assert forbidden_character(ch) is None, ascii(ch)
    # Path ids are held to the same rule by their pattern (msgspec searches with it).
    assert re.search(IDENTIFIER_PATTERN, "sub_01\u200b") is None
    assert re.search(IDENTIFIER_PATTERN, "sub_01\U000e0041") is None


@pytest.mark.parametrize("ascii_only", [False, True], ids=["utf8", "escaped"])
def test_every_body_with_a_control_or_format_character_is_refused(ascii_only: bool) -> None:
    """Whichever character, raw or escaped: a body whose bytes show no sign of one skips the
    walk over its strings, so that sign must be there for each."""
    from registry.http.body import decode_json

    for ch in _format_and_controls():
        body = json.dumps({"name": f"张{ch}伟"}, ensure_ascii=ascii_only).encode()
        with pytest.raises(Problem) as refused:
            decode_json(body)
        assert refused.value.code == "invalid_field" and refused.value.pointer == "/name", ascii(ch)


def test_search_refuses_exactly_what_the_registry_refuses() -> None:
    from registry.text import forbidden_character
    from search.query import parse_query

    blind = BlindIndex(os.urandom(32))
    samples = [*_format_and_controls(), "\u00b7", "\u3000", "\ufe0f", "\U000e0100", "\ue000", "\U00020bb7"]
    for ch in samples:
        try:
            parse_query({"q": f"张{ch}伟", "province": "11"}, blind)
            refused = False
        except Problem as exc:
            assert exc.code == "control_characters", (ascii(ch), exc.code)
            refused = True
        assert refused == (forbidden_character(ch) is not None), ascii(ch)


def test_a_search_with_a_line_separator_is_refused(registry: Registry) -> None:
    with registry.http() as http:
        answer = http.get("/v1/public/defaulters", params={"q": "张\u2028伟", "province": "11"})
    assert_problem(answer, 400, "control_characters", "/query/q")


# ---- the web search form shows a refused query back without its invisible characters ----


def test_the_search_page_echoes_a_refused_query_cleaned(registry: Registry) -> None:
    with registry.http() as http:
        page = http.get("/", params={"q": "张\u202e\x01伟"})
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
    assert "\u202e" not in page.text and "\x01" not in page.text
    assert 'value="张伟"' in page.text


def test_a_refused_path_parameter_is_named_without_repeating_the_url(registry: Registry) -> None:
    """Litestar's own detail repeats the request's URL, which can carry an ID number."""
    number = "110105194912310021"
    with registry.http() as http:
        answer = http.get(f"/v1/public/defaulters/{number[:6]}%0A{number[6:]}")
    assert answer.status_code == 400
    problem = answer.json()
    assert (problem["code"], problem["pointer"]) == ("invalid_parameter", "/path/listing_id")
    assert problem["detail"].startswith("listing_id: ")
    assert number[6:] not in answer.text and "defaulters" not in answer.text


def test_a_member_beside_the_signed_body_and_its_signature_is_refused(
    registry: Registry, court: CourtHandle
) -> None:
    """Unsigned, it would be stored with the signed bytes as if the court had sent it signed
    (the docs: an unknown member is 422 `invalid_field`). A resend with one is refused too."""
    body = person_named(registry, court, "邓超")
    with registry.http(court.api_key) as http:
        envelope = registry.envelope(court, body)
        answer = http.post("/v1/listings", json=envelope | {"comment": "hello"})
        assert_problem(answer, 422, "invalid_field", "/comment")
        batch = http.post("/v1/listings/batch", json={"envelopes": [envelope | {"a/b": 1}, envelope]})
        assert batch.status_code == 200, batch.text
        refused, stored = batch.json()["results"]
        assert refused["problem"]["code"] == "invalid_field" and refused["problem"]["pointer"] == "/a~1b"
        assert stored["outcome"] == "created"
        resent = http.post("/v1/listings", json=envelope | {"foo": 1})
        assert_problem(resent, 422, "invalid_field", "/foo")
        removal = registry.envelope(court, removal_body(stored["listing_id"], registry.today), "removal")
        answer = http.post(f"/v1/listings/{stored['listing_id']}/removal", json=removal | {"note": "x"})
        assert_problem(answer, 422, "invalid_field", "/note")
        assert http.get(f"/v1/listings/{stored['listing_id']}").json()["status"] == "active"

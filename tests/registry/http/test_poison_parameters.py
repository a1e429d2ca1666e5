"""No input answers 500 (issue 18 #4): control characters (U+0000 first: PostgreSQL text
cannot hold it), bidi overrides and non-ASCII digits (U+1369 ETHIOPIC DIGIT ONE, which
`str.isdigit()` and `int()` accept and NFKC does not fold) in every path id, query parameter
and body field, answered by the same 4xx problem on SQLite and PostgreSQL, decided before
the database sees the value. Run with REGISTRY_TEST_DATABASE_URL for PostgreSQL.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support.checks import bank, publish_person, unlisted_id
from tests.support.harness import CourtHandle, Registry

NUL, SOH, BIDI, ETHIOPIC = "\x00", "\x01", "a\u202eb", "\u1369"
POISON = {"nul": NUL, "soh": SOH, "bidi": BIDI, "ethiopic": ETHIOPIC}
CONTROL = {"nul", "soh", "bidi"}


def _q(value: str) -> str:
    return quote(value, safe="")


# (audience, method, path with {v} for the poisoned value)
PUBLIC_GETS = [
    "/v1/public/defaulters/{v}",
    "/defaulters/{v}",
    "/v1/public/defaulters?id_number={v}",
    "/v1/public/defaulters?id_number=1101051949123100{v}",
    "/v1/public/defaulters?credit_code={v}",
    "/v1/public/defaulters?q={v}",
    "/v1/public/defaulters?court={v}",
    "/v1/public/defaulters?province={v}",
    "/v1/public/defaulters?kind={v}",
    "/v1/public/defaulters?ground={v}",
    "/v1/public/defaulters?q=%E5%BC%A0%E4%BC%9F&page={v}",
    "/v1/public/defaulters?q=%E5%BC%A0%E4%BC%9F&per_page={v}",
    "/v1/public/defaulters?q=%E5%BC%A0%E4%BC%9F&published_from=2024-01-0{v}",
    "/?q={v}",
    "/?q=%E5%BC%A0%E4%BC%9F&province={v}",
    "/?q=%E5%BC%A0%E4%BC%9F&page={v}",
    "/feeds/atom.xml?before={v}",
    "/feeds/rss.xml?before=1{v}",
    "/feeds/feed.json?before={v}",
    "/feeds/atom.xml?court={v}",
    "/feeds/rss.xml?province={v}",
    "/feeds/feed.json?kind={v}",
    "/v1/publications?after={v}",
    "/v1/publications?limit={v}",
    "/v1/log/entries/{v}",
    "/v1/log/checkpoint?size={v}",
    "/v1/log/checkpoints?after_size={v}",
    "/v1/log/proof/inclusion?seq={v}&tree_size=1",
    "/v1/log/proof/consistency?first=1&second={v}",
    "/v1/exports/{v}/manifest.json",
    "/v1/exports/2026-01-01/{v}",
]

COURT_REQUESTS = [
    ("GET", "/v1/listings/{v}"),
    ("GET", "/v1/listings/{v}/versions/1"),
    ("POST", "/v1/listings/{v}/removal"),
    ("POST", "/v1/listings/{v}/amendments"),
    ("GET", "/v1/removals/late?court={v}"),
    ("GET", "/v1/removals/late?limit={v}"),
    ("GET", "/v1/events?after={v}"),
]

ADMIN_REQUESTS = [
    ("GET", "/v1/admin/banks/{v}/query-log"),
    ("GET", "/v1/admin/banks/x/query-log?from={v}"),
    ("GET", "/v1/sync/subscriptions/{v}"),
    ("GET", "/v1/sync/subscriptions/{v}/drift"),
    ("POST", "/v1/sync/subscriptions/{v}/pause"),
    ("POST", "/v1/sync/subscriptions/{v}/resume"),
]

AGENCY_REQUESTS = [
    ("GET", "/v1/notices/{v}"),
    ("GET", "/v1/notices/{v}/print"),
    ("GET", "/v1/sync/{v}/events"),
    ("GET", "/v1/sync/{v}/snapshot"),
    ("GET", "/v1/sync/{v}/drift"),
    ("POST", "/v1/sync/{v}/ack"),
    ("POST", "/v1/notices/{v}/acknowledge"),
    ("POST", "/v1/notices/{v}/objection"),
]

BANK_REQUESTS = [("GET", "/v1/watchlist/changes?after={v}"), ("GET", "/v1/watchlist/changes?limit={v}")]


def _refused(answer: httpx.Response, poison: str) -> None:
    """Never a 500; a control character always a 4xx problem. A foreign digit in a filter may
    find nothing (200): it is a value no stored thing has, like any other."""
    assert answer.status_code < 500, (answer.request.method, answer.request.url, answer.text)
    if poison not in CONTROL and answer.status_code < 400:
        return
    assert answer.status_code >= 400, (answer.request.url, answer.status_code)
    assert answer.headers["content-type"].startswith(("application/problem+json", "text/html")), answer.text


@pytest.mark.parametrize("poison", sorted(POISON))
@pytest.mark.parametrize("path", PUBLIC_GETS)
def test_public_parameters(registry: Registry, path: str, poison: str) -> None:
    with registry.http() as http:
        answer = http.get(path.replace("{v}", _q(POISON[poison])), headers={"accept": "application/json"})
    _refused(answer, poison)
    if poison in CONTROL and "{v}" in path.split("?", maxsplit=1)[0]:
        # 400 `invalid_parameter`, or 404 where the id is checked for its form (`is_id`) or
        # against a fixed set of names before any lookup: either way, no query ran.
        assert answer.status_code in {400, 404}, (path, answer.text)


def _send(http: httpx.Client, method: str, path: str, poison: str) -> httpx.Response:
    url = path.replace("{v}", _q(POISON[poison]))
    if method == "POST":
        return http.post(url, json={})
    return http.get(url)


@pytest.mark.parametrize("poison", sorted(POISON))
def test_authenticated_parameters(
    registry: Registry, court: CourtHandle, admin: httpx.Client, poison: str
) -> None:
    _, bank_http = bank(registry)
    agency = registry.http(registry.client("agency"))
    clients = [
        (registry.http(court.api_key), COURT_REQUESTS),
        (admin, ADMIN_REQUESTS),
        (agency, AGENCY_REQUESTS),
        (bank_http, BANK_REQUESTS),
    ]
    for http, requests in clients:
        for method, path in requests:
            answer = _send(http, method, path, poison)
            _refused(answer, poison)
            if poison in CONTROL and "/{v}" in path.split("?")[0]:
                # A POST's empty body may be refused first (422): a 4xx before any query either way.
                assert answer.status_code in ({400, 422} if method == "POST" else {400}), (path, answer.text)


@pytest.mark.parametrize("field", ["id_number", "credit_code", "name"])
def test_a_bank_check_subject_with_foreign_digits_fails_alone(
    registry: Registry, court: CourtHandle, field: str
) -> None:
    _, body = publish_person(registry, court)
    number = body["debtor"]["id_number"]
    poisoned: dict[str, Any] = {"id_number": number[:6] + "\u1369" + number[7:]}
    if field == "credit_code":
        poisoned = {"credit_code": "91110000600037341" + "\u1369"}
    elif field == "name":
        poisoned = {"id_number": unlisted_id(registry), "name": "张\u1369"}
    _, http = bank(registry)
    with http:
        answer = http.post(
            "/v1/checks",
            json={
                "subjects": [{"id_number": number}, poisoned],
                "purpose": "loan_application",
                "reference": "r",
            },
        )
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert results[0]["listed"] is True
        if field != "name":
            assert results[1]["error"]["code"].startswith("invalid_"), results[1]
        else:
            assert results[1].get("error") is None or results[1]["error"]["code"].startswith("invalid_")
        watched = http.post("/v1/watchlist/subjects", json={"subjects": [{"id_number": number}, poisoned]})
        if field == "name":  # taken as a check subject's, and not used: the identifier is watched
            assert watched.status_code == 200, watched.text
            assert [r.get("error") for r in watched.json()["results"]] == [None, None]
        else:
            assert watched.status_code == 200, watched.text
            assert watched.json()["results"][1]["error"]["code"].startswith("invalid_")


@pytest.mark.parametrize("poison", ["nul", "soh", "bidi"])
def test_a_bank_check_subject_with_a_control_character_fails_alone(registry: Registry, poison: str) -> None:
    _, http = bank(registry)
    with http:
        answer = http.post(
            "/v1/checks",
            json={
                "subjects": [{"id_number": POISON[poison]}, {"id_number": unlisted_id(registry)}],
                "purpose": "loan_application",
                "reference": "r",
            },
        )
        assert answer.status_code == 200, answer.text
        refused, answered = answer.json()["results"]
        assert refused["error"]["code"] == "invalid_id_number" and answered["listed"] is False
        # Outside the subjects, the whole request is refused as before.
        whole = http.post(
            "/v1/checks",
            json={
                "subjects": [{"id_number": unlisted_id(registry)}],
                "purpose": "loan_application",
                "reference": POISON[poison],
            },
        )
        assert whole.status_code == 422 and whole.json()["pointer"] == "/reference"


def _bodies(registry: Registry, court: CourtHandle, listing_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Signed court documents and admin bodies with a NUL in an id-like field."""
    listing = registry.person_listing(court, submission_id="sub" + NUL)
    envelope = registry.envelope(court, listing)
    bad_key = dict(envelope, signature=dict(envelope["signature"], key_id="k" + NUL))
    today = registry.today.isoformat()
    removal = {
        "listing_id": listing_id,
        "reason": "performed",
        "effective_on": today,
        "triggered_on": today,
        "basis_document": "（2024）京0105执恢12号" + NUL,
    }
    return [
        ("court", "/v1/listings", envelope),
        ("court", "/v1/listings", bad_key),
        ("court", "/v1/listings/batch", {"envelopes": [envelope]}),
        ("court", f"/v1/listings/{listing_id}/removal", registry.envelope(court, removal, "removal")),
        ("admin", "/v1/sync/subscriptions", {"client_id": "c" + NUL, "profile": "housing", "mode": "pull"}),
    ]


def test_a_nul_in_any_body_field_is_the_same_422_on_both_databases(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    listing_id, _ = publish_person(registry, court)
    with registry.http(court.api_key) as court_http:
        for who, path, body in _bodies(registry, court, listing_id):
            answer = (court_http if who == "court" else admin).post(path, json=body)
            if path.endswith("/batch") and answer.status_code == 200:
                [result] = answer.json()["results"]
                assert result["outcome"] == "rejected" and result["problem"]["code"] == "invalid_field", (
                    result
                )
                continue
            assert answer.status_code == 422, (path, answer.text)
            assert answer.json()["code"] == "invalid_field", answer.text

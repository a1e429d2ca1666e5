"""Issue 18 item 2: digits of other scripts (Arabic-Indic U+0660-0669, Ethiopic U+1369-1371...)
are decimal digits to `\\d`, `str.isdigit()` and `int()`, and NFKC does not fold them, so
they would make a second spelling of one person or one case. Identifiers, case numbers, dates
and numeric query parameters accept ASCII digits only (full-width digits are folded by NFKC
first, and so stay accepted). Through the live server, on the database under test."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from registry.identity.identifiers import IdentifierError, parse_case_number, parse_id_number
from tests.support.harness import CourtHandle, Registry

ASCII = "422326196801259010"
ARABIC_INDIC = "422326١٩٦٨01259010"  # the same number with 1968 in Arabic-Indic digits
ETHIOPIC = "42232619680125901\u1369"[:17] + "0"  # ፩ (U+1369, ETHIOPIC DIGIT ONE) inside
FULL_WIDTH = "".join(chr(ord(c) + 0xFEE0) for c in ASCII)


def _count(registry: Registry) -> int:
    with registry.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM listings")).scalar_one())


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["code"] == code, problem
    return problem


@pytest.mark.parametrize("raw", [ARABIC_INDIC, "42232619680125901\u1369", "4223261968012590\u0661\u0660"])
def test_parse_id_number_refuses_other_scripts_digits(raw: str) -> None:
    with pytest.raises(IdentifierError):
        parse_id_number(raw)
    assert parse_id_number(FULL_WIDTH).number == ASCII  # NFKC folds full-width digits


@pytest.mark.parametrize(
    "raw",
    ["（2026）辽0202执١٧٨٣号", "（٢٠٢٦）辽0202执1783号", "（2026）辽٠٢٠٢执1783号", "（2015）朝执字第0١234号"],
)
def test_case_numbers_with_other_scripts_digits_are_refused(raw: str) -> None:
    with pytest.raises(IdentifierError):
        parse_case_number(raw)


def test_a_listing_with_arabic_indic_digits_in_the_id_number_is_refused(
    registry: Registry, court: CourtHandle
) -> None:
    body = registry.person_listing(court)
    before = _count(registry)
    for raw in (ARABIC_INDIC, "42232619680125901\u1369"):
        body["debtor"] = {**body["debtor"], "id_number": raw}
        with registry.http(court.api_key) as http:
            response = http.post("/v1/listings", json=registry.envelope(court, body))
        problem = _problem(response, 422, "invalid_id_number")
        assert problem["pointer"] == "/listing/debtor/id_number"
    assert _count(registry) == before


def test_a_case_number_with_arabic_indic_digits_is_refused(registry: Registry) -> None:
    court = registry.court("辽0202", "大连市中山区人民法院", "21")
    body = registry.person_listing(court)
    body["case_number"] = "（2026）辽0202执١٧٨٣号"
    before = _count(registry)
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings", json=registry.envelope(court, body))
    problem = _problem(response, 422, "invalid_case_number")
    assert problem["pointer"] == "/listing/case_number"
    assert _count(registry) == before


def test_a_bank_check_refuses_the_subject_and_answers_the_rest(
    registry: Registry, court: CourtHandle
) -> None:
    from tests.support.checks import bank, publish_person

    _, listed = publish_person(registry, court)
    _, http = bank(registry)
    with http:
        response = http.post(
            "/v1/checks",
            json={
                "subjects": [{"id_number": ARABIC_INDIC}, {"id_number": "42232619680125901\u1369"},
                             {"id_number": listed["debtor"]["id_number"]}],
                "purpose": "loan_application",
                "reference": "LA-1",
            },
        )  # fmt: skip
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert [r.get("error", {}).get("code") for r in results] == ["invalid_id_number"] * 2 + [None]
        assert results[2]["listed"] is True
        watch = http.post("/v1/watchlist/subjects", json={"subjects": [{"id_number": ARABIC_INDIC}]})
        assert watch.status_code == 200, watch.text
        assert watch.json()["results"][0]["error"]["code"] == "invalid_id_number"


@pytest.mark.parametrize(
    "params",
    [
        {"id_number": ARABIC_INDIC},
        {"id_number": "42232619680125901\u1369"},
        {"q": ARABIC_INDIC},
        {"q": "张伟", "page": "\u0661"},
        {"q": "张伟", "per_page": "\u1369\u1369"},
        {"q": "张伟", "published_from": "٢٠٢٤-01-01"},
    ],
)
def test_public_search_refuses_other_scripts_digits(registry: Registry, params: dict[str, str]) -> None:
    with registry.http() as http:
        response = http.get("/v1/public/defaulters", params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("value", ["\u0661", "\u1369", "1\u0660", "١٢"])
def test_numeric_query_parameters_refuse_other_scripts_digits(
    registry: Registry, admin: httpx.Client, value: str
) -> None:
    for path, name in (("/v1/events", "after"), ("/v1/events", "limit"), ("/v1/publications", "after")):
        response = admin.get(path, params={name: value})
        assert response.status_code == 400, (path, name, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    with registry.http() as http:
        feed = http.get("/feeds/atom.xml", params={"before": value})
    assert feed.status_code in (400, 404, 422), feed.text

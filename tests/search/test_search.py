"""Public search over HTTP on the embedded index: real listings, the real indexer, the real API.

Listings are published through the court API with real signatures; the indexer is run as
the scheduler would run it (`run_search_indexer`); queries go to the public endpoint.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from registry.db import create_sync_engine
from registry.eventlog.readers import (
    LogEvent,
    Process,
    advance,
    claim_cursor,
    follow_prepared_sync,
    step_prepared,
)
from registry.settings import Settings
from registry.timeutil import utcnow
from search.documents import hit
from search.embedded import CURSOR, FACET_BITS, EmbeddedIndex, _page_above_cuts, doc_row
from search.indexer import index_follower, prepare_events, reconcile, reconcile_with
from search.interface import SearchQuery
from search.parallel import document_rows
from search.recent import ScanTally
from service.app import create_app
from tests.support.harness import (
    CourtHandle,
    Registry,
    cli_env,
    registry_bin,
    run_search_indexer,
    serve_app,
)
from tests.support.listings import (
    ending_today,
    expire_tomorrow,
    organization_named,
    person_named,
    publish_many,
)
from tests.support.publishing import remove

API = "/v1/public/defaulters"


def _search(registry: Registry, **params: Any) -> dict[str, Any]:
    with registry.http() as http:
        response = http.get(API, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _names(answer: dict[str, Any]) -> list[str]:
    return sorted(hit["name"] for hit in answer["hits"])


@pytest.fixture
def people(registry: Registry, court: CourtHandle, engine: sa.Engine) -> dict[str, str]:
    """Names that share characters, so that a wrong tokenisation would show."""
    names = ["张伟", "张伟明", "李张伟", "张明", "伟张", "王芳", "单田芳", "阿卜杜·艾力"]
    ids = publish_many(registry, court, [person_named(registry, court, name) for name in names])
    org_ids = publish_many(
        registry,
        court,
        [
            organization_named(registry, court, "北京恒信达科技有限公司"),
            organization_named(registry, court, "ABC国际贸易（上海）有限公司"),
        ],
    )
    run_search_indexer(engine)
    return dict(zip([*names, "恒信达", "ABC"], ids + org_ids, strict=True))


def test_a_two_character_name_is_found_as_a_substring(registry: Registry, people: dict[str, str]) -> None:
    answer = _search(registry, q="张伟")
    assert _names(answer) == ["张伟", "张伟明", "李张伟"]
    assert answer["total"] == 3


def test_a_single_character_finds_every_name_holding_it(
    registry: Registry, court: CourtHandle, people: dict[str, str]
) -> None:
    # One character is a broad query: the API takes it with a province or a court.
    assert _names(_search(registry, q="芳", province=court.province_code)) == ["单田芳", "王芳"]
    assert _names(_search(registry, q="明", court=court.code)) == ["张伟明", "张明"]


@pytest.mark.parametrize("text", ["芳", "Ｗ", "wang", "zw"])
def test_a_broad_text_alone_is_refused_and_narrowed_is_answered(
    registry: Registry, court: CourtHandle, people: dict[str, str], text: str
) -> None:
    with registry.http() as http:
        alone = http.get(API, params={"q": text})
        narrowed = http.get(API, params={"q": text, "province": court.province_code})
        by_court = http.get(API, params={"q": text, "court": court.code})
    assert alone.status_code == 400, alone.text
    assert alone.json()["code"] == "query_too_broad"
    assert narrowed.status_code == 200, narrowed.text
    assert by_court.status_code == 200, by_court.text


@pytest.mark.parametrize("text", ["有限公司", "有限", "责任公司", "分公司", "（有限公司）"])
def test_only_the_words_of_a_legal_form_name_no_one_and_are_refused_even_narrowed(
    registry: Registry, court: CourtHandle, people: dict[str, str], text: str
) -> None:
    with registry.http() as http:
        for params in (
            {"q": text},
            {"q": text, "province": court.province_code},
            {"q": text, "court": court.code},
        ):
            answer = http.get(API, params=params)
            assert answer.status_code == 400, answer.text
            assert answer.json()["code"] == "query_names_no_one"
    # Beside a full number (valid, not listed), the text only narrows: answered, not refused.
    assert _search(registry, q="有限公司", credit_code="91110000600037341L")["total"] == 0


def test_a_text_with_one_distinctive_character_is_not_broad(
    registry: Registry, people: dict[str, str]
) -> None:
    assert _names(_search(registry, q="达科技有限公司")) == ["北京恒信达科技有限公司"]
    assert _names(_search(registry, q="张伟")) == ["张伟", "张伟明", "李张伟"]
    assert _search(registry, q="zhangwei")["total"] == 3


def test_a_three_character_query_needs_the_characters_in_order(
    registry: Registry, people: dict[str, str]
) -> None:
    # 伟张 and 张明 hold the bigrams' characters but not the sequence.
    assert _names(_search(registry, q="张伟明")) == ["张伟明"]
    assert _names(_search(registry, q="伟明")) == ["张伟明"]


def test_full_width_and_punctuation_are_normalised(registry: Registry, people: dict[str, str]) -> None:
    assert _names(_search(registry, q="阿卜杜艾力")) == ["阿卜杜·艾力"]
    assert _names(_search(registry, q="ＡＢＣ国际")) == ["ABC国际贸易(上海)有限公司"]
    # A private-use character (rare name characters live there in some systems) is not
    # refused; like punctuation, it is not part of the compared form.
    assert _names(_search(registry, q="张\ue000伟")) == ["张伟", "张伟明", "李张伟"]


def test_pinyin_finds_chinese_names(registry: Registry, people: dict[str, str]) -> None:
    assert _names(_search(registry, q="zhangwei")) == ["张伟", "张伟明", "李张伟"]
    assert _names(_search(registry, q="Zhang Wei Ming")) == ["张伟明"]
    assert _names(_search(registry, q="zwm")) == ["张伟明"]
    # A surname's own reading: 单 is shan as a surname, dan elsewhere.
    assert _names(_search(registry, q="shantianfang")) == ["单田芳"]


def test_a_given_name_with_several_readings_is_found_by_each(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    """长 is zhang in pypinyin's context reading of 长伟, but most people say chang; 乐 le/yue,
    行 xing/hang: each reading finds the name, and nothing else."""
    names = ["陈长伟", "李乐行", "陈章伟"]
    publish_many(registry, court, [person_named(registry, court, name) for name in names])
    run_search_indexer(engine)
    assert _names(_search(registry, q="chenchangwei")) == ["陈长伟"]
    assert _names(_search(registry, q="chenzhangwei")) == ["陈章伟", "陈长伟"]
    assert _names(_search(registry, q="liyuehang")) == ["李乐行"]
    assert _names(_search(registry, q="lilexing")) == ["李乐行"]
    assert _names(_search(registry, q="ccw")) == ["陈长伟"]


def test_pinyin_typed_with_tone_marks_or_u_umlaut_finds_the_name(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    """The index spells pinyin without tone marks and ü as v (lvxiaohong); a query written
    as pinyin is written (lǚ, chén) or as keyboards spell ü (lyu, nyu) finds the same names."""
    names = ["吕小红", "女娲", "陈长伟", "陈宇"]
    publish_many(registry, court, [person_named(registry, court, name) for name in names])
    run_search_indexer(engine)
    for typed in ("lvxiaohong", "lüxiaohong", "LÜ XIAOHONG", "Lǚ Xiǎohóng", "lyuxiaohong"):
        assert _names(_search(registry, q=typed)) == ["吕小红"], typed
    for typed in ("nvwa", "nüwa", "Nǚwā", "nyuwa"):
        assert _names(_search(registry, q=typed)) == ["女娲"], typed
    assert _names(_search(registry, q="chén chángwěi")) == ["陈长伟"]
    assert _names(_search(registry, q="chenyu")) == ["陈宇"]  # chen-yu, not che-nyu
    # One syllable is as broad with its marks as without.
    with registry.http() as http:
        broad = http.get(API, params={"q": "lǚ"})
    assert broad.status_code == 400 and broad.json()["code"] == "query_too_broad"
    assert _names(_search(registry, q="lǚ", province=court.province_code)) == ["吕小红"]


def test_organisations_are_found_by_part_of_their_name(registry: Registry, people: dict[str, str]) -> None:
    answer = _search(registry, q="恒信达")
    assert _names(answer) == ["北京恒信达科技有限公司"]
    hit = answer["hits"][0]
    assert hit["kind"] == "organization" and hit["legal_representative"]
    assert hit["sex"] is None and hit["age_at_publication"] is None
    assert hit["id_type"] == "credit_code" and len(hit["identifier_masked"]) == 18  # shown in full
    assert _names(_search(registry, q="abc")) == ["ABC国际贸易(上海)有限公司"]


def test_a_hit_carries_the_art6_fields_and_nothing_else(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    body = person_named(registry, court, "赵敏", creditor="某某银行股份有限公司北京分行")
    (listing_id,) = publish_many(registry, court, [body])
    run_search_indexer(engine)
    with registry.http() as http:
        listed = http.get(API, params={"q": "赵敏"})
        single = http.get(f"{API}/{listing_id}")
    assert listed.status_code == single.status_code == 200
    hit = listed.json()["hits"][0]
    assert hit == single.json()
    assert set(hit) == {
        "id", "kind", "name", "sex", "age_at_publication", "id_type", "identifier_masked",
        "legal_representative", "court_code",
        "court_name", "province_code", "province", "case_number", "basis_document_number", "basis_issuer",
        "obligations", "amount_cents", "performance", "grounds", "filed_on", "published_on",
    }  # fmt: skip
    number = body["debtor"]["id_number"]
    # Age reached in the publication year: nothing narrows the birth date below its year.
    assert hit["age_at_publication"] == date.fromisoformat(hit["published_on"]).year - int(number[6:10])
    assert hit["identifier_masked"] == number[:2] + "****" + number[6:10] + "********"
    for text in (listed.text, single.text):
        assert number not in text
        assert number[2:6] not in text.replace(number[:2] + "****", "")  # not the county
        assert number[10:14] not in text and number[14:] not in text  # not the day, nor the sequence
        assert "某某银行" not in text
        assert court.key_id not in text
        assert "signature" not in text


def test_a_full_id_number_or_credit_code_finds_exactly_its_holder(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    person = person_named(registry, court, "孙丽")
    organization = organization_named(registry, court, "广州市远航物流有限公司")
    other = person_named(registry, court, "孙丽")
    person_id, organization_id, _ = publish_many(registry, court, [person, organization, other])
    run_search_indexer(engine)
    number = person["debtor"]["id_number"]
    by_id = _search(registry, id_number=number)
    assert [h["id"] for h in by_id["hits"]] == [person_id]
    assert by_id["facets"] == {
        "province": {court.province_code: 1},
        "ground": dict.fromkeys(person["grounds"], 1),
    }
    assert _search(registry, id_number=number, kind="organization")["total"] == 0
    # Lower-case x and full-width digits are the same number.
    assert _search(registry, id_number=number.lower().replace("1", "１"))["total"] == 1
    by_code = _search(registry, credit_code=organization["debtor"]["credit_code"])
    assert [h["id"] for h in by_code["hits"]] == [organization_id]
    # Name and number together narrow; a number and the wrong name find nothing.
    assert _search(registry, q="孙丽", id_number=number)["total"] == 1
    assert _search(registry, q="远航", id_number=number)["total"] == 0
    # The URL held the full number: kept out of shared caches and other sites' referrers, as
    # on the search page; the entry's own answer too (a removed entry must not linger).
    with registry.http() as http:
        for path, params in (
            ("/v1/public/defaulters", {"id_number": number}),
            (f"/v1/public/defaulters/{person_id}", {}),
        ):
            answer = http.get(path, params=params)
            assert answer.status_code == 200, answer.text
            assert answer.headers["cache-control"] == "no-store"
            assert answer.headers["referrer-policy"] == "no-referrer"


def test_a_number_typed_into_q_is_looked_up_exactly_or_refused(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    """As on the web page: a full number in `q` is checked and found exactly; a partial,
    masked or invalid one is refused with a problem, never a silent empty answer."""
    person = person_named(registry, court, "孙丽")
    organization = organization_named(registry, court, "广州市远航物流有限公司")
    person_id, organization_id = publish_many(registry, court, [person, organization])
    run_search_indexer(engine)
    number = person["debtor"]["id_number"]
    assert [h["id"] for h in _search(registry, q=number)["hits"]] == [person_id]
    assert [h["id"] for h in _search(registry, q=f" {number.lower()} ")["hits"]] == [person_id]
    code = organization["debtor"]["credit_code"]
    assert [h["id"] for h in _search(registry, q=code)["hits"]] == [organization_id]
    with registry.http() as http:
        for q, expected in (
            (number[:10], "incomplete_identifier"),
            (number[:2] + "****" + number[6:10] + "********", "incomplete_identifier"),
            (f"孙丽 {number[:8]}", "incomplete_identifier"),
            (number[:17] + ("0" if number[17] != "0" else "1"), "invalid_id_number"),
        ):
            answer = http.get(API, params={"q": q})
            assert answer.status_code == 400, q
            assert (answer.json()["code"], answer.json()["pointer"]) == (expected, "/query/q"), q
        both = http.get(API, params={"q": number, "credit_code": code})
        assert both.status_code == 400 and both.json()["code"] == "conflicting_identifiers"


def test_an_organisation_code_typed_into_q_is_looked_up_as_organization_code_does(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    """GB 11714 codes, with or without the hyphen, were searched as names (200, total 0) or
    refused as incomplete numbers; a wrong check is refused as organization_code refuses it."""
    letters = "MAKPWBYQX"  # GB 11714: X is MAKPWBYQ's check character
    bodies = []
    for code in (f"{letters[:8]}-{letters[8]}", "60003734-1"):
        body = organization_named(registry, court, f"代码测试{code}有限公司")
        debtor = body["debtor"]
        body["debtor"] = {
            "kind": "organization",
            "name": debtor["name"],
            "legal_representative": debtor["legal_representative"],
            "organization_code": code,
        }
        bodies.append(body)
    letters_id, digits_id = publish_many(registry, court, bodies)
    run_search_indexer(engine)
    for typed in ("MAKPWBYQ-X", "MAKPWBYQX", "makpwbyq-x"):
        assert [h["id"] for h in _search(registry, q=typed)["hits"]] == [letters_id], typed
    assert [h["id"] for h in _search(registry, q="60003734-1")["hits"]] == [digits_id]
    assert _search(registry, q="60003734-1") == _search(registry, organization_code="60003734-1")
    with registry.http() as http:
        in_q = http.get(API, params={"q": "60003734-2"})
        given = http.get(API, params={"organization_code": "60003734-2"})
        nine_digits = http.get(API, params={"q": "600037341"})
    assert in_q.status_code == given.status_code == 400
    assert (in_q.json()["code"], in_q.json()["pointer"]) == ("invalid_organization_code", "/query/q")
    assert given.json()["code"] == "invalid_organization_code"
    # Nine digits without the hyphen may be a passport's: refused as before, saying how to write a code.
    assert nine_digits.status_code == 400 and nine_digits.json()["code"] == "incomplete_identifier"
    assert "60003734-1" in nine_digits.json()["detail"]


def test_filters_narrow_and_facets_count_the_filtered_matches(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    shanghai = registry.court("沪0115", "上海市浦东新区人民法院", "31")
    beijing_bodies = [
        person_named(registry, court, "陈静", grounds=["able_but_refuses"], term_years=None),
        person_named(
            registry, court, "陈静怡", grounds=["evades_enforcement", "able_but_refuses"], term_years=2
        ),
        organization_named(registry, court, "陈静建材有限公司"),
    ]
    shanghai_bodies = [
        person_named(registry, shanghai, "陈静", grounds=["breaches_settlement"], term_years=2),
    ]
    beijing_ids = publish_many(registry, court, beijing_bodies)
    publish_many(registry, shanghai, shanghai_bodies)
    run_search_indexer(engine)

    everything = _search(registry, q="陈静")
    assert everything["total"] == 4
    bodies = beijing_bodies + shanghai_bodies
    assert everything["facets"]["province"] == {"11": 3, "31": 1}
    expected_grounds = Counter(g for body in bodies for g in body["grounds"])
    assert everything["facets"]["ground"] == dict(expected_grounds)

    assert _search(registry, q="陈静", province="31")["total"] == 1
    # The pinyin branch of a text narrows by province too (on PostgreSQL, a term of its own).
    assert _search(registry, q="chenjing", province="31")["total"] == 1
    assert _search(registry, q="chenjing", province="11")["facets"]["province"] == {"11": 2}
    assert _search(registry, q="chenjing", province="12")["total"] == 0
    only_beijing = _search(registry, q="陈静", court="京0105")
    assert sorted(h["id"] for h in only_beijing["hits"]) == sorted(beijing_ids)
    assert only_beijing["facets"]["province"] == {"11": 3}
    assert _names(_search(registry, q="陈静", kind="organization")) == ["陈静建材有限公司"]
    assert _names(_search(registry, q="陈静", kind="person")) == ["陈静", "陈静", "陈静怡"]
    # Every filter the facets are made of at once, and facets that count only what remains.
    narrowed = _search(registry, q="陈静", kind="person", province="11", ground="able_but_refuses")
    assert _names(narrowed) == ["陈静", "陈静怡"]
    assert narrowed["facets"] == {
        "province": {"11": 2},
        "ground": {"able_but_refuses": 2, "evades_enforcement": 1},
    }
    assert _search(registry, q="陈静", kind="organization", province="31")["total"] == 0
    evading = _search(registry, q="陈静", ground="evades_enforcement")
    assert _names(evading) == sorted(
        body["debtor"]["name"] for body in bodies if "evades_enforcement" in body["grounds"]
    )
    today = registry.today.isoformat()
    assert _search(registry, q="陈静", published_from=today, published_to=today)["total"] == 4
    tomorrow = (registry.today + timedelta(days=1)).isoformat()
    assert _search(registry, q="陈静", published_from=tomorrow)["total"] == 0
    yesterday = (registry.today - timedelta(days=1)).isoformat()
    assert _search(registry, q="陈静", published_to=yesterday)["total"] == 0


def test_paging_walks_every_hit_once_newest_first(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    ids = publish_many(registry, court, [person_named(registry, court, f"刘洋{c}") for c in "一二三四五六七"])
    run_search_indexer(engine)
    pages = [_search(registry, q="刘洋", per_page=3, page=page) for page in (1, 2, 3)]
    assert [p["total"] for p in pages] == [7, 7, 7]
    seen = [hit["id"] for page in pages for hit in page["hits"]]
    assert seen == list(reversed(ids))
    past_the_end = _search(registry, q="刘洋", per_page=3, page=4)
    assert past_the_end["hits"] == [] and past_the_end["total"] == 7


def test_past_the_exact_count_limit_the_total_is_a_lower_bound_and_the_pages_stay_exact(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings
) -> None:
    """Counting reads a row per match on PostgreSQL, so a search counts up to
    REGISTRY_SEARCH_EXACT_COUNT_LIMIT matches: past it, the answer says so (`total_exact`
    false, the total as a lower bound, no facets, which would need every match counted),
    and its pages are still every match once, newest first."""
    ids = publish_many(registry, court, [person_named(registry, court, f"孟凡{c}") for c in "一二三四五六七"])
    run_search_indexer(engine)
    limited = settings.override(search={"exact_count_limit": 5})
    with serve_app(create_app(limited, run_scheduler=False)) as url, httpx.Client(base_url=url) as http:

        def search(**params: Any) -> dict[str, Any]:
            response = http.get(API, params=params)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

        pages = [search(q="孟凡", per_page=3, page=page) for page in (1, 2, 3)]
        assert [(p["total"], p["total_exact"]) for p in pages] == [(5, False)] * 3
        assert all(p["facets"] == {"province": {}, "ground": {}} for p in pages)
        assert [hit["id"] for page in pages for hit in page["hits"]] == list(reversed(ids))
        assert search(q="孟凡", per_page=3, page=4)["hits"] == []
        # At the limit or under it, counted exactly, with facets.
        narrowed = search(q="孟凡一")
        assert (narrowed["total"], narrowed["total_exact"]) == (1, True)
        assert narrowed["facets"]["province"] == {"11": 1}
        assert [hit["id"] for hit in narrowed["hits"]] == [ids[0]]
    # The default limit counts these seven exactly.
    exact = _search(registry, q="孟凡")
    assert (exact["total"], exact["total_exact"], exact["facets"]["province"]) == (7, True, {"11": 7})


def test_a_page_read_from_above_a_cut_is_the_page_whatever_density_was_guessed(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    """PostgreSQL, past the count limit with sparse matches: the page is read from the
    matches above a cut in the primary key, placed by the density the counted ids suggest
    and moved down while the page comes back short. A guess too dense (a cut too high, the
    page short), too sparse (no cut) or right gives the page of the whole query."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the cut is PostgreSQL's way to a page past the count limit (SQLite reads FTS5's rowids)")
    given = "甲乙丙丁戊己庚辛壬癸子丑"
    bodies = [
        person_named(registry, court, ("孟凡" if n % 3 == 0 else "赵") + given[n // 3]) for n in range(36)
    ]
    publish_many(registry, court, bodies)
    run_search_indexer(engine)
    index = EmbeddedIndex(engine)
    for page_number in (1, 2, 4, 5):
        query = SearchQuery(text="孟凡", per_page=3, page=page_number)
        _, (above_cut, page), params = index._statements(query)
        params |= {"limit": 3, "offset": (page_number - 1) * 3}
        with engine.connect() as conn:
            whole = [entry for (entry,) in conn.exec_driver_sql(page, params)]
            newest = int(conn.exec_driver_sql("SELECT max(id) FROM search_docs").scalar_one()) >> FACET_BITS
        assert len(whole) == (3 if page_number <= 4 else 0)
        for density in (4.0, 1.0, 1 / 3, 0.01):
            with engine.connect() as conn:
                got = _page_above_cuts(conn, (above_cut, page), params, (density, newest), 3)
            assert [hit(e).id for e in got] == [hit(e).id for e in whole], (page_number, density)


def _pair(floor: int) -> list[str]:
    return [f"search_fts_recent_{column}_{floor}" for column in ("pinyin", "terms")]


def _recent_indexes(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(
            conn.exec_driver_sql(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'search_docs' "
                "AND starts_with(indexname, 'search_fts_recent_')"
            ).scalars()
        )


def test_the_newest_documents_own_indexes_are_counted_first_and_change_no_answer(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    """PostgreSQL: past twice the segment, the newest documents get partial GIN indexes of
    their own, a text query counts there first, every answer (totals, facets, pages, past
    the count limit too) is the one the whole indexes gave, and once the pair covers more
    than twice the segment a new pair replaces it. (Whether the planner picks the pair is a
    matter of cost, which on a few dozen rows is a toss-up: the bench shows it at 5,000,000,
    docs/benchmarks.md.)"""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite counts on FTS5's doclists; the partial GIN indexes are PostgreSQL's")
    given = "甲乙丙丁戊己庚辛壬癸子丑"
    names = [("孟凡" if n % 2 else "赵") + given[n // 2] for n in range(24)]
    publish_many(registry, court, [person_named(registry, court, name) for name in names])
    run_search_indexer(engine)
    queries = [
        SearchQuery(text=text, per_page=per_page, page=page)
        for text in ("孟凡", "mengfan", "孟凡甲", "赵")
        for per_page, page in ((3, 1), (3, 2), (5, 3))
    ]

    def answers(limit: int) -> list[tuple[list[str], int, bool, dict[str, dict[str, int]]]]:
        index = EmbeddedIndex(engine, exact_count_limit=limit, recent_segment=4)
        found = [index.search_sync(query) for query in queries]
        return [([h.id for h in r.hits], r.total, r.total_exact, r.facets) for r in found]

    # No pair left behind by an earlier test that failed half-way (the database outlives it).
    EmbeddedIndex(engine, recent_segment=1_000_000).maintain_recent()
    assert _recent_indexes(engine) == []
    before = {limit: answers(limit) for limit in (1000, 5, 3)}
    assert before[1000][0][1] == 12 and before[5][0][1:3] == (5, False)

    index = EmbeddedIndex(engine, recent_segment=4)
    with engine.connect() as conn:
        newest = int(conn.exec_driver_sql("SELECT max(id) FROM search_docs").scalar_one()) >> FACET_BITS
    done = index.maintain_recent()
    assert done == {"floor": newest - 4, "created": True, "dropped": 0}
    floor = newest - 4
    assert _recent_indexes(engine) == [
        f"search_fts_recent_{column}_{floor}" for column in ("pinyin", "terms")
    ]
    assert index.maintain_recent() == {"floor": floor, "created": False, "dropped": 0}
    assert {limit: answers(limit) for limit in (1000, 5, 3)} == before

    # Another session at it (the job, or the command elsewhere): this one does nothing.
    with engine.connect() as other:
        other.exec_driver_sql("SELECT pg_advisory_lock(hashtext('search.recent'))")
        assert index.maintain_recent() == {"floor": floor, "created": False, "dropped": 0, "busy": True}
        other.exec_driver_sql("SELECT pg_advisory_unlock(hashtext('search.recent'))")
        other.commit()

    # Twice the segment more: a new pair from the newest serial less the segment, the old dropped.
    publish_many(registry, court, [person_named(registry, court, "孟凡" + given[n]) for n in range(9)])
    run_search_indexer(engine)
    with engine.connect() as conn:
        newest = int(conn.exec_driver_sql("SELECT max(id) FROM search_docs").scalar_one()) >> FACET_BITS
    assert index.maintain_recent() == {"floor": newest - 4, "created": True, "dropped": 2}
    assert _recent_indexes(engine) == [
        f"search_fts_recent_{column}_{newest - 4}" for column in ("pinyin", "terms")
    ]
    assert _search(registry, q="孟凡", per_page=50)["total"] == 21
    # A segment set larger than half the list: the whole indexes suffice, the pair goes.
    larger = EmbeddedIndex(engine, recent_segment=newest)
    assert larger.maintain_recent() == {"floor": None, "created": False, "dropped": 2}
    assert _recent_indexes(engine) == []


def test_a_removed_listing_is_gone_once_the_indexer_runs(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    kept, removed = publish_many(
        registry, court, [person_named(registry, court, "黄磊"), person_named(registry, court, "黄磊")]
    )
    run_search_indexer(engine)  # court, key and client events, then the two publications
    assert _search(registry, q="黄磊")["total"] == 2
    remove(registry, court, removed)
    assert run_search_indexer(engine) == 1
    answer = _search(registry, q="黄磊")
    assert [h["id"] for h in answer["hits"]] == [kept]
    with registry.http() as http:
        gone = http.get(f"{API}/{removed}")
    assert gone.status_code == 404 and gone.json()["code"] == "entry_not_found"
    # Running again is harmless: nothing pending, nothing changes.
    assert run_search_indexer(engine) == 0
    assert _search(registry, q="黄磊")["total"] == 1


def test_a_removed_or_expired_listing_leaves_search_and_its_pages_when_it_commits_before_the_index(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    ending = ending_today(registry, court)
    ending["debtor"] = {**ending["debtor"], "name": "黄蓉"}
    bodies = [person_named(registry, court, "黄蓉"), person_named(registry, court, "黄蓉"), ending]
    kept, removed, expired = publish_many(registry, court, bodies)
    run_search_indexer(engine)
    assert _search(registry, q="黄蓉")["total"] == 3
    remove(registry, court, removed)
    assert expire_tomorrow(registry) == 1
    # The index has not run since: it still holds both documents.
    with engine.connect() as conn:
        stale = conn.execute(
            sa.text("SELECT count(*) FROM search_docs WHERE listing_id IN (:a, :b)"),
            {"a": removed, "b": expired},
        ).scalar_one()
    assert stale == 2
    assert [h["id"] for h in _search(registry, q="黄蓉")["hits"]] == [kept]
    with registry.http() as http:
        for gone in (removed, expired):
            assert http.get(f"{API}/{gone}").json()["code"] == "entry_not_found"
            assert http.get(f"/defaulters/{gone}").status_code == 404
        assert http.get(f"{API}/{kept}").status_code == 200
    # The index catches up on its next step, and the total with it.
    assert run_search_indexer(engine) >= 2
    assert _search(registry, q="黄蓉")["total"] == 1


def test_a_listing_row_that_cannot_make_a_document_does_not_stop_the_indexer(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    broken, fine = publish_many(
        registry, court, [person_named(registry, court, "冯刚"), person_named(registry, court, "冯刚")]
    )
    with engine.begin() as conn:
        # A hand edit that breaks what the public entry needs (its basis document).
        conn.execute(sa.text("UPDATE listings SET details = '{}' WHERE id = :id"), {"id": broken})
    run_search_indexer(engine)
    answer = _search(registry, q="冯刚")
    assert [h["id"] for h in answer["hits"]] == [fine]
    with registry.http() as http:
        assert http.get(f"{API}/{broken}").status_code == 404
    # Later events are still indexed: the cursor went past the bad one.
    (later,) = publish_many(registry, court, [person_named(registry, court, "冯刚")])
    run_search_indexer(engine)
    assert {h["id"] for h in _search(registry, q="冯刚")["hits"]} == {fine, later}


def test_an_amendment_replaces_the_entry(registry: Registry, court: CourtHandle, engine: sa.Engine) -> None:
    body = person_named(registry, court, "周杰")
    (listing_id,) = publish_many(registry, court, [body])
    run_search_indexer(engine)
    amended = copy.deepcopy(body)
    amended["submission_id"] = body["submission_id"] + "-2"
    amended["obligations"] = "被执行人应支付申请执行人货款人民币一万元。"
    with registry.http(court.api_key) as http:
        response = http.post(f"/v1/listings/{listing_id}/amendments", json=registry.envelope(court, amended))
    assert response.status_code == 200, response.text
    run_search_indexer(engine)
    (hit,) = _search(registry, q="周杰")["hits"]
    assert hit["obligations"] == "被执行人应支付申请执行人货款人民币一万元。"


def test_an_expired_listing_is_gone_once_the_indexer_runs(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings
) -> None:
    body = ending_today(registry, court)
    body["debtor"] = {**body["debtor"], "name": "郭涛"}
    publish_many(registry, court, [body])
    run_search_indexer(engine)
    assert _search(registry, q="郭涛")["total"] == 1
    assert expire_tomorrow(registry) == 1
    run_search_indexer(engine)
    assert _search(registry, q="郭涛")["total"] == 0


def test_reconcile_repairs_missing_stale_and_extra_documents(
    registry: Registry, court: CourtHandle, engine: sa.Engine, people: dict[str, str]
) -> None:
    removed = people["王芳"]
    remove(registry, court, removed)
    with engine.begin() as conn:
        # Drift as a bug or a hand edit would leave it: one document lost, one altered, and one
        # removed listing still indexed (its removal never applied: the cursor is moved past it).
        conn.execute(sa.text("DELETE FROM search_docs WHERE listing_id = :id"), {"id": people["张伟"]})
        conn.execute(
            sa.text("UPDATE search_docs SET version = 7, province_code = '65' WHERE listing_id = :id"),
            {"id": people["张明"]},
        )
        conn.execute(sa.text("UPDATE reader_cursors SET position = (SELECT last_seq FROM log_head)"))
    assert _names(_search(registry, q="张伟")) == ["张伟明", "李张伟"]
    assert _search(registry, q="王芳")["total"] == 1

    with engine.begin() as conn:
        result = reconcile(conn, EmbeddedIndex(engine))
    assert (result.missing, result.stale, result.extra) == (1, 1, 1)
    assert result.checked == len(people) - 1
    assert _names(_search(registry, q="张伟")) == ["张伟", "张伟明", "李张伟"]
    assert _search(registry, q="王芳")["total"] == 0
    assert _search(registry, q="张明")["facets"]["province"] == {"11": 1}
    with engine.begin() as conn:
        again = reconcile(conn, EmbeddedIndex(engine))
    assert (again.missing, again.stale, again.extra) == (0, 0, 0)


def test_a_reconcile_compares_without_the_cursor_and_leaves_the_followers_work_to_it(
    registry: Registry, engine: sa.Engine, settings: Settings, people: dict[str, str]
) -> None:
    """The comparison reads the whole list (minutes at millions of listings): the follower,
    and with it every removal's way out of public search, must not wait for it. So it runs
    without the cursor; a listing the follower has yet to take is not drift."""
    with engine.begin() as conn:
        # Real drift: a document lost behind the index's back.
        conn.execute(sa.text("DELETE FROM search_docs WHERE listing_id = :id"), {"id": people["张伟"]})
        # The follower one event behind: the newest listing event's listing is not indexed yet.
        seq, behind = conn.execute(
            sa.text(
                "SELECT seq, listing_id FROM events WHERE listing_id IS NOT NULL ORDER BY seq DESC LIMIT 1"
            )
        ).one()
        conn.execute(sa.text("DELETE FROM search_docs WHERE listing_id = :id"), {"id": behind})
        conn.execute(
            sa.text("UPDATE reader_cursors SET position = :position WHERE name = :name"),
            {"position": seq - 1, "name": CURSOR},
        )
    writer = create_sync_engine(settings.database.url)
    reader = create_sync_engine(settings.database.url, writer=False)
    claimed_meanwhile: list[int] = []

    class Watched(EmbeddedIndex):
        def stored_versions(self, conn: sa.Connection) -> Iterable[tuple[str, int]]:
            # In the middle of the comparison, a follower's step claims the cursor; were the
            # reconcile holding it, this would wait (and fail after the lock timeout).
            with writer.begin() as other:
                if other.dialect.name == "postgresql":
                    other.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
                claimed_meanwhile.append(claim_cursor(other, CURSOR))
            return super().stored_versions(conn)

    try:
        counts = reconcile_with(writer, Watched(engine), reader=reader)
    finally:
        writer.dispose()
        reader.dispose()
    assert claimed_meanwhile == [seq - 1]
    assert (counts["missing"], counts["stale"], counts["extra"]) == (1, 0, 0)
    with engine.connect() as conn:
        indexed = set(conn.execute(sa.text("SELECT listing_id FROM search_docs")).scalars())
    assert people["张伟"] in indexed
    assert behind not in indexed  # the follower's, when it takes its event


def _behind_by_two(engine: sa.Engine) -> tuple[str, str, int]:
    """The index two listing events behind: the last two listings' documents dropped, the
    cursor put back before their events. Returns (older, newer, the older event's seq)."""
    with engine.begin() as conn:
        (_, newer), (older_seq, older) = conn.execute(
            sa.text(
                "SELECT seq, listing_id FROM events WHERE listing_id IS NOT NULL ORDER BY seq DESC LIMIT 2"
            )
        ).all()
        conn.execute(
            sa.text("DELETE FROM search_docs WHERE listing_id IN (:a, :b)"), {"a": older, "b": newer}
        )
        if conn.dialect.name == "sqlite":
            conn.execute(sa.text("INSERT INTO search_fts(search_fts) VALUES ('rebuild')"))
        conn.execute(
            sa.text("UPDATE reader_cursors SET position = :position WHERE name = :name"),
            {"position": older_seq - 1, "name": CURSOR},
        )
    return older, newer, older_seq


def test_the_follower_builds_documents_before_its_write_and_indexes_no_listing_removed_meanwhile(
    registry: Registry, engine: sa.Engine, settings: Settings, people: dict[str, str]
) -> None:
    """The scheduler's follower builds its documents (pinyin, public entries: most of its
    time) on a read connection, holding neither the cursor nor, on SQLite, the write lock,
    so the chunks of a batch being ingested go on meanwhile. A listing removed in between is
    seen under the claim and not indexed."""
    removed, kept, _ = _behind_by_two(engine)
    writer = create_sync_engine(settings.database.url)
    reader = create_sync_engine(settings.database.url, writer=False)
    follower = index_follower(EmbeddedIndex(engine))
    meanwhile: list[int] = []

    def prepare(conn: sa.Connection, events: Sequence[LogEvent]) -> Process:
        apply = prepare_events(EmbeddedIndex(engine), conn, events)
        with writer.begin() as other:
            if other.dialect.name == "postgresql":
                other.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
            # Were the documents built under the claim, this would wait for it.
            meanwhile.append(claim_cursor(other, CURSOR))
            other.execute(
                sa.text("UPDATE listings SET status = 'removed', version = version + 1 WHERE id = :id"),
                {"id": removed},
            )
        return apply

    try:
        read = follow_prepared_sync(writer, reader, dataclasses.replace(follower, prepare=prepare))
        with engine.connect() as conn:
            head = conn.execute(sa.text("SELECT last_seq FROM log_head")).scalar_one()
            position = conn.execute(
                sa.text("SELECT position FROM reader_cursors WHERE name = :name"), {"name": CURSOR}
            ).scalar_one()
            indexed = set(conn.execute(sa.text("SELECT listing_id FROM search_docs")).scalars())
    finally:
        writer.dispose()
        reader.dispose()
    assert len(meanwhile) == 1 and read >= 2
    assert position == head
    assert kept in indexed
    assert removed not in indexed
    assert people["张伟"] in indexed


def test_a_prepared_step_whose_cursor_moved_meanwhile_applies_nothing(
    registry: Registry, engine: sa.Engine, settings: Settings, people: dict[str, str]
) -> None:
    """Two processes' followers (or a rebuild) may prepare the same batch: the one that finds
    the cursor moved when it claims it applies nothing and reads again from there."""
    _, newer, older_seq = _behind_by_two(engine)
    writer = create_sync_engine(settings.database.url)
    reader = create_sync_engine(settings.database.url, writer=False)
    follower = index_follower(EmbeddedIndex(engine))

    def prepare(conn: sa.Connection, events: Sequence[LogEvent]) -> Process:
        apply = prepare_events(EmbeddedIndex(engine), conn, events)
        with writer.begin() as other:
            claim_cursor(other, CURSOR)
            advance(other, CURSOR, older_seq)
        return apply

    try:
        step = step_prepared(writer, reader, dataclasses.replace(follower, prepare=prepare), utcnow())
        with engine.connect() as conn:
            indexed = set(conn.execute(sa.text("SELECT listing_id FROM search_docs")).scalars())
        assert step is None
        assert newer not in indexed  # nothing applied: the other's step owns the batch
        assert (step_prepared(writer, reader, follower, utcnow()) or 0) >= 1
        with engine.connect() as conn:
            indexed = set(conn.execute(sa.text("SELECT listing_id FROM search_docs")).scalars())
        assert newer in indexed
    finally:
        writer.dispose()
        reader.dispose()


def test_deep_reconcile_repairs_an_altered_entry(
    registry: Registry, engine: sa.Engine, people: dict[str, str]
) -> None:
    with engine.begin() as conn:
        stored = conn.execute(
            sa.text("SELECT entry FROM search_docs WHERE listing_id = :id"), {"id": people["伟张"]}
        ).scalar_one()
        altered = dict(json.loads(bytes(stored)), obligations="篡改的内容")
        conn.execute(
            sa.text("UPDATE search_docs SET entry = :entry WHERE listing_id = :id"),
            {"entry": json.dumps(altered).encode(), "id": people["伟张"]},
        )
    assert _search(registry, q="伟张")["hits"][0]["obligations"] == "篡改的内容"
    with engine.begin() as conn:
        # Same version and filters: only the deep check, which rebuilds documents, sees it.
        assert reconcile(conn, EmbeddedIndex(engine)).stale == 0
        assert reconcile(conn, EmbeddedIndex(engine), deep=True).stale == 1
    assert _search(registry, q="伟张")["hits"][0]["obligations"] != "篡改的内容"

    # A document whose id no longer carries its own facet key (its province, 11, became 12):
    # the filters and facets read that key, so the deep check compares it too.
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE search_docs SET id = id + 64 WHERE listing_id = :id"), {"id": people["伟张"]}
        )
        if conn.dialect.name == "sqlite":
            conn.execute(sa.text("INSERT INTO search_fts(search_fts) VALUES ('rebuild')"))
    assert _search(registry, q="伟张")["facets"]["province"] == {"12": 1}
    with engine.begin() as conn:
        assert reconcile(conn, EmbeddedIndex(engine), deep=True).stale == 1
    assert _search(registry, q="伟张", province="12")["total"] == 0
    assert _search(registry, q="伟张")["facets"]["province"] == {"11": 1}
    assert _search(registry, q="伟张", province="11")["total"] == 1

    # Terms that are not the document's (on PostgreSQL, the province's term is gone, so the
    # province filter misses it): the deep check compares the terms as the database renders them.
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            altered = "UPDATE search_docs SET terms = terms || ' 篡改' WHERE listing_id = :id"
        else:
            altered = "UPDATE search_docs SET terms = ts_delete(terms, '~p11') WHERE listing_id = :id"
        conn.execute(sa.text(altered), {"id": people["伟张"]})
    if engine.dialect.name == "postgresql":
        assert _search(registry, q="伟张", province="11")["total"] == 0
    with engine.begin() as conn:
        assert reconcile(conn, EmbeddedIndex(engine), deep=True).stale == 1
        assert reconcile(conn, EmbeddedIndex(engine), deep=True).stale == 0
    assert _search(registry, q="伟张", province="11")["total"] == 1


@pytest.mark.slow
def test_reindex_command_rebuilds_the_index_from_scratch(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings
) -> None:
    publish_many(
        registry,
        court,
        [person_named(registry, court, "马超"), organization_named(registry, court, "马超贸易有限公司")],
    )
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE search_docs SET entry = :junk"), {"junk": b"{}"})
    done = subprocess.run(
        [registry_bin(), "search", "reindex"],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        check=True,
    )
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["backend"] == "embedded" and summary["documents"] == 2
    assert "reindexing" in done.stderr and "2/2" in done.stderr, "a progress bar on stderr"
    assert _names(_search(registry, q="马超")) == ["马超", "马超贸易有限公司"]
    check = subprocess.run(
        [registry_bin(), "search", "reconcile"],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        check=True,
    )
    counts = json.loads(check.stdout.strip().splitlines()[-1])
    assert counts == {"backend": "embedded", "checked": 2, "missing": 0, "stale": 0, "extra": 0}
    assert "reconciling" in check.stderr and "2/2" in check.stderr


def test_the_recent_index_command_builds_the_pair_when_due_and_only_on_postgresql(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings
) -> None:
    publish_many(registry, court, [person_named(registry, court, name) for name in ("马超", "马云", "马东")])
    run_search_indexer(engine)

    bars: list[str] = []

    def command(segment: int) -> dict[str, Any]:
        env = cli_env(settings) | {"REGISTRY_SEARCH_RECENT_SEGMENT": str(segment)}
        done = subprocess.run(
            [registry_bin(), "search", "recent-index"], env=env, capture_output=True, text=True, check=True
        )
        bars.append(done.stderr)
        answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return answer

    if engine.dialect.name != "postgresql":
        # SQLite counts on FTS5's doclists: nothing to build.
        assert command(1) == {"floor": None, "created": False, "dropped": 0}
        return
    with engine.connect() as conn:
        newest = int(conn.exec_driver_sql("SELECT max(id) FROM search_docs").scalar_one()) >> FACET_BITS
    built = command(1)
    assert built == {"floor": newest - 1, "created": True, "dropped": 0}
    assert _recent_indexes(engine) == _pair(newest - 1)
    # The bar counts the table's blocks, scanned twice by each of the two builds, to the end.
    with engine.connect() as conn:
        blocks = int(
            conn.exec_driver_sql(
                "SELECT pg_relation_size('search_docs') / current_setting('block_size')::bigint"
            ).scalar_one()
        )
    assert "building the newest documents' indexes" in bars[-1]
    assert f"{4 * blocks}/{4 * blocks}" in bars[-1], bars[-1]
    assert _names(_search(registry, q="马超")) == ["马超"]
    assert command(newest) == {"floor": None, "created": False, "dropped": 2}
    assert _recent_indexes(engine) == []


def test_the_recent_index_bar_counts_both_scans_of_each_build_in_order() -> None:
    """What pg_stat_progress_create_index shows of two CONCURRENTLY builds of a 100-block
    table, sampled: the bar reaches 400 blocks and never goes back."""
    scan, validate = "building index", "index validation: scanning table"
    samples = [
        ("initializing", 0, 0),
        (scan, 10, 100),
        (scan, 100, 100),
        ("waiting for writers before validation", 0, 0),
        (validate, 40, 100),
        (None, 0, 0),  # between the builds: no row
        (scan, 30, 100),
        (validate, 5, 100),  # the first scan's end was not sampled
        (validate, 100, 100),
        (None, 0, 0),
    ]
    tally = ScanTally()
    assert [tally.observe(*sample) for sample in samples] == [0, 10, 100, 100, 140, 200, 230, 305, 400, 400]


@pytest.mark.slow
def test_documents_built_by_a_process_pool_are_those_built_in_process(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    names = ["赵敏", "赵敏敏", "钱多多", "孙悟空", "李逍遥", "周芷若", "吴用", "郑和", "王重阳", "冯宝宝"]
    ids = publish_many(registry, court, [person_named(registry, court, name) for name in names])
    publish_many(registry, court, [organization_named(registry, court, "赵氏建材有限公司")])
    for listing_id in ids[2:9:3]:  # inactive listings inside the ranges are left out
        remove(registry, court, listing_id)
    with engine.connect() as conn:
        in_process = [row for rows in document_rows(conn, 1, doc_row) for row in rows]
        # Ranges of three listings each over two worker processes, as at a million listings.
        pooled = list(document_rows(conn, 2, doc_row, min_listings=0, range_listings=3))
    assert len(pooled) > 3
    assert [row for rows in pooled for row in rows] == in_process
    assert len(in_process) == len(names) + 1 - 3

    # A reindex numbers documents in listing-id order (time-ordered ids), highest first out.
    assert EmbeddedIndex(engine).rebuild(engine, workers=2)["documents"] == len(in_process)
    hits = _search(registry, q="赵敏")["hits"]
    assert sorted(h["name"] for h in hits) == ["赵敏", "赵敏敏"]
    assert [h["id"] for h in hits] == sorted((h["id"] for h in hits), reverse=True)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "query_required"),
        ({"province": "11"}, "query_required"),
        ({"q": "   "}, "query_required"),
        ({"q": "!!!"}, "invalid_query"),
        ({"q": "张" * 65}, "query_too_long"),
        ({"q": "张" * 201}, "parameter_too_long"),
        ({"q": "张\x00伟"}, "control_characters"),
        ({"q": "张\u202e伟"}, "control_characters"),
        ({"id_number": "11010519491231002"}, "invalid_id_number"),
        ({"id_number": "110105194912310021"}, "invalid_id_number"),
        ({"credit_code": "91110000600037341A"}, "invalid_credit_code"),
        ({"id_number": "11010519491231002X", "credit_code": "91110000600037341L"}, "conflicting_identifiers"),
        ({"q": "张伟", "province": "99"}, "unknown_province"),
        ({"q": "张伟", "province": '11" OR 1=1'}, "unknown_province"),
        ({"q": "张伟", "kind": "robot"}, "unknown_kind"),
        ({"q": "张伟", "ground": "able_but_refuses OR grounds EXISTS"}, "unknown_ground"),
        ({"q": "张伟", "court": "京0105' OR '1'='1"}, "invalid_court"),
        ({"q": "张伟", "published_from": "2024-13-01"}, "invalid_date"),
        ({"q": "张伟", "published_from": "20240101"}, "invalid_date"),
        ({"q": "张伟", "published_from": "2025-01-02", "published_to": "2025-01-01"}, "invalid_date_range"),
        ({"q": "张伟", "page": "0"}, "invalid_page"),
        ({"q": "张伟", "page": "-1"}, "invalid_page"),
        ({"q": "张伟", "page": "1e3"}, "invalid_page"),
        ({"q": "张伟", "per_page": "101"}, "invalid_per_page"),
        ({"q": "张伟", "page": "501", "per_page": "20"}, "page_out_of_range"),
    ],
)
def test_bad_input_is_a_400_problem_with_a_stable_code(
    registry: Registry, people: dict[str, str], params: dict[str, str], code: str
) -> None:
    with registry.http() as http:
        response = http.get(API, params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    # The index is untouched by what was refused.
    assert _search(registry, q="张伟")["total"] == 3


@pytest.mark.parametrize(
    ("params", "code", "pointer"),
    [
        ({"q": "zhangwei", "court": "沪9999"}, "unknown_court", "/query/court"),
        ({"q": "zhangwei", "provnce": "11"}, "unknown_filter", "/query/provnce"),
        ({"q": "zhangwei", "utm_source": "x"}, "unknown_filter", "/query/utm_source"),
        ({"q": "zhangwei", "a/b~c": "1"}, "unknown_filter", "/query/a~1b~0c"),  # RFC 6901
    ],
)
def test_a_court_no_court_has_or_a_parameter_the_search_does_not_take_is_refused(
    registry: Registry, people: dict[str, str], params: dict[str, str], code: str, pointer: str
) -> None:
    """As the feeds refuse them: answered, each was an empty list or a filter silently left out."""
    with registry.http() as http:
        response = http.get(API, params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (response.json()["code"], response.json()["pointer"]) == (code, pointer)


def test_a_court_that_exists_still_narrows(
    registry: Registry, court: CourtHandle, people: dict[str, str]
) -> None:
    assert _search(registry, q="zhangwei", court=court.code)["total"] == 3
    assert _search(registry, q="zhangwei", court=f" {court.code} ")["total"] == 3  # cached, spaced


def test_the_feeds_name_an_unknown_parameter_in_the_pointer_as_the_search_does(registry: Registry) -> None:
    with registry.http() as http:
        for path in ("/feeds/atom.xml", "/feeds/rss.xml", "/feeds/feed.json"):
            response = http.get(path, params={"colour": "red"})
            assert response.status_code == 400, response.text
            assert (response.json()["code"], response.json()["pointer"]) == (
                "unknown_filter",
                "/query/colour",
            )


def test_a_repeated_parameter_is_refused(registry: Registry, people: dict[str, str]) -> None:
    with registry.http() as http:
        response = http.get(f"{API}?q=张伟&q=王芳")
    assert response.status_code == 400 and response.json()["code"] == "repeated_parameter"


@pytest.mark.parametrize(
    ("params", "pointer"),
    [
        ({"id_type": "resident_id"}, "/query/id_type"),
        ({"nationality": "CAN"}, "/query/nationality"),
        ({"q": "张伟", "id_type": "passport"}, "/query/id_type"),
    ],
)
def test_an_id_type_or_nationality_without_an_id_number_names_itself(
    registry: Registry, people: dict[str, str], params: dict[str, str], pointer: str
) -> None:
    with registry.http() as http:
        response = http.get(API, params=params)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert (problem["code"], problem["pointer"]) == ("invalid_parameter", pointer)
    assert "id_number" in problem["detail"]


def test_fts_syntax_in_a_query_is_only_text(registry: Registry, people: dict[str, str]) -> None:
    for attack in ('张伟" OR "王', "张伟 NOT 王芳", "terms : 张*", "张伟'); DROP TABLE search_docs; --"):
        answer = _search(registry, q=attack)
        assert answer["total"] == 0, attack
    assert _search(registry, q="张伟")["total"] == 3


def test_an_unknown_or_removed_entry_is_404(registry: Registry, people: dict[str, str]) -> None:
    with registry.http() as http:
        for path in ("01J0000000000000000000NONE", "x" * 300, "%27%20OR%201%3D1"):
            response = http.get(f"{API}/{path}")
            assert response.status_code == 404
            assert response.json()["code"] == "entry_not_found"
        # A control or format character is refused before any lookup, as on every route.
        for path in ("01J0000000000000000000NON%E2%80%AE", "01J0000000000000000000NON%00"):
            response = http.get(f"{API}/{path}")
            assert response.status_code == 400, path
            assert response.json()["code"] == "invalid_parameter"


def test_the_search_api_needs_no_credentials(registry: Registry, people: dict[str, str]) -> None:
    with httpx.Client(base_url=registry.url) as http:
        assert http.get(API, params={"q": "王芳"}).status_code == 200


@pytest.mark.slow
def test_the_scheduled_indexer_takes_a_removal_out_of_search_within_two_seconds(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings
) -> None:
    import asyncio
    import time

    from registry.runtime import Services
    from search.plugin import plugin
    from service.app import process_resources
    from service.scheduler import build_scheduler

    (listing_id,) = publish_many(registry, court, [person_named(registry, court, "韩梅")])

    async def time_removal() -> float:
        async with httpx.AsyncClient(base_url=registry.url) as http:
            while (await http.get(f"{API}/{listing_id}")).status_code != 200:
                await asyncio.sleep(0.05)
            started = time.monotonic()
            await asyncio.to_thread(remove, registry, court, listing_id)
            while (await http.get(f"{API}/{listing_id}")).status_code != 404:
                assert time.monotonic() - started < 5, "still searchable 5 s after its removal"
                await asyncio.sleep(0.05)
            return time.monotonic() - started

    async def scenario() -> float:
        services = Services.create(settings)
        try:
            async with process_resources(services, [plugin]):
                # The search plugin's jobs, as `registry serve` runs them.
                scheduler = build_scheduler(services, [plugin])
                scheduler.start()
                try:
                    return await time_removal()
                finally:
                    scheduler.shutdown(wait=False)
        finally:
            await services.close()

    assert settings.search.index_interval_seconds == 0.5
    assert asyncio.run(scenario()) < 2

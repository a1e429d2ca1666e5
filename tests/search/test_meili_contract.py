"""The Meilisearch adapter against recorded request/response pairs: for each call the adapter
makes, the request it must send (method, path, JSON body) and the answer Meilisearch's API
documentation gives for it (the page is cited beside each pair). A local HTTP server plays
the script (tests/support/meili_server.py) and records every request that differs. In front of
it, `refusing` makes the checks Meilisearch makes before it answers, which a script cannot
show: the rights of the request's key, and the index's filterable and sortable attributes.

No server can be installed on the build machines; `test_search_meilisearch.py` runs the same
adapter against a real one when MEILISEARCH_URL is set.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import meilisearch
import msgspec
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from registry.ids import new_id
from registry.listings.details import PublicPerformance
from registry.listings.disclosure import PublicEntry
from registry.settings import Settings
from search.cli import search
from search.interface import SearchQuery, SearchUnavailable
from search.meili import (
    BASE_SETTINGS,
    SETTINGS_FROM_1_6,
    SETTINGS_FROM_1_8,
    SETTINGS_FROM_1_12,
    MeiliIndex,
    _merged_page,
    _Served,
    parse_version,
    settings_for,
    spell,
)
from search.runtime import FOLLOW_JOB, Backoff, open_engine
from service.app import create_app
from tests.support.harness import CourtHandle, Registry, free_port, serve_app
from tests.support.meili_server import Pair, Recorded, done, error, serving, task
from tests.support.publishing import publish, remove

INDEX = "defaulters"
VERSION_PAGE = "https://www.meilisearch.com/docs/reference/api/version/get-version"
TASK_PAGE = "https://www.meilisearch.com/docs/reference/api/async-task-management/get-task"
CREATE_PAGE = "https://www.meilisearch.com/docs/reference/api/indexes/create-index"
GET_INDEX_PAGE = "https://www.meilisearch.com/docs/reference/api/indexes/get-index"
SETTINGS_PAGE = "https://www.meilisearch.com/docs/reference/api/settings/update-all-settings"
GET_SETTINGS_PAGE = "https://www.meilisearch.com/docs/reference/api/settings/list-all-settings"
ADD_PAGE = "https://www.meilisearch.com/docs/reference/api/documents/add-or-replace-documents"
DELETE_PAGE = "https://www.meilisearch.com/docs/changelog/v1.2.md"  # delete by filter
SEARCH_PAGE = "https://www.meilisearch.com/docs/reference/api/search/search-with-post"
ERRORS_PAGE = "https://www.meilisearch.com/docs/reference/errors/overview"
ERROR_CODES_PAGE = "https://www.meilisearch.com/docs/reference/errors/error_codes"
HEALTH_PAGE = "https://www.meilisearch.com/docs/reference/api/health"
KEYS_PAGE = "https://www.meilisearch.com/docs/capabilities/security/how_to/manage_api_keys"
FILTER_PAGE = "https://www.meilisearch.com/docs/learn/advanced/filtering_and_faceted_search"

Respond = Callable[[str, str, Any, dict[str, str]], tuple[int, Any]]
# The keys of these tests: the admin key has every action; the public's is a search key
# (actions ["search"]: KEYS_PAGE), which cannot read documents (`documents.get`).
KEY_ACTIONS = {"Bearer admin-key": {"*"}, "Bearer search-key": {"search"}}
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
# The attribute of each condition, in the filter forms the adapter writes (`a = v`, `a > n`,
# `a IN [...]`).
_CONDITION = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)\s*(?:!=|>=|<=|=|>|<|\sIN\s)")


def _filtered_attributes(expression: Any) -> list[str]:
    if expression is None:
        return []
    if isinstance(expression, list):
        return [name for part in expression for name in _filtered_attributes(part)]
    return _CONDITION.findall(_QUOTED.sub('""', str(expression)))


def refusing(respond: Respond, settings: dict[str, Any]) -> Respond:
    """`respond` behind Meilisearch's documented refusals: a request whose key lacks the
    route's action is 403 `invalid_api_key` (KEYS_PAGE: reading a document needs
    `documents.get`, searching `search`); a search filtering on an attribute missing from the
    index's `filterableAttributes`, or sorting on one missing from `sortableAttributes`, is 400
    (FILTER_PAGE). The index's settings: `settings`, then any the adapter sends."""
    index_settings = dict(settings)

    def action_of(method: str, route: str) -> str | None:
        if method == "GET" and re.fullmatch(rf"/indexes/{INDEX}/documents/[^/]+", route):
            return "documents.get"
        return "search" if route == f"/indexes/{INDEX}/search" else None

    def checked(method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        route = urlsplit(path).path
        action = action_of(method, route)
        allowed = KEY_ACTIONS.get(headers.get("Authorization") or "", set())
        if action is not None and not allowed & {"*", action, action.partition(".")[0] + ".*"}:
            return 403, {**error("invalid_api_key", "The provided API key is invalid."), "type": "auth"}
        if action == "search":
            filterable = index_settings["filterableAttributes"]
            for name in _filtered_attributes(body.get("filter")):
                if name not in filterable:
                    message = (
                        f"Attribute `{name}` is not filterable. Available filterable attributes are: "
                        f"`{', '.join(sorted(filterable))}`."
                    )
                    return 400, error("invalid_search_filter", message)
            for rule in body.get("sort") or []:
                name = rule.partition(":")[0]
                if name not in index_settings["sortableAttributes"]:
                    return 400, error("invalid_search_sort", f"Attribute `{name}` is not sortable.")
        status, answer = respond(method, path, body, headers)
        if method == "PATCH" and route == f"/indexes/{INDEX}/settings" and status == 202:
            index_settings.update(body)
        return status, answer

    return checked


def version(pkg: str) -> Pair:
    # The page's example, its pkgVersion set to the server version under test.
    answer = {"commitSha": "b46889b5f0f2f8b91438a08a358ba8f05fc09fc1", "commitDate": "2021-07-08"}
    return Pair("GET", "/version", None, 200, {**answer, "pkgVersion": pkg}, VERSION_PAGE)


def waited(uid: int, kind: str) -> Pair:
    return Pair("GET", f"/tasks/{uid}", None, 200, done(uid, kind, INDEX), TASK_PAGE)


def index_missing() -> Pair:
    answer = error("index_not_found", f"Index `{INDEX}` not found.")
    return Pair("GET", f"/indexes/{INDEX}", None, 404, answer, ERRORS_PAGE)


def index_found() -> Pair:
    answer = {
        "uid": INDEX,
        "createdAt": "2022-02-10T07:45:15.628261Z",
        "updatedAt": "2022-02-21T15:28:43.496574Z",
        "primaryKey": "id",
    }
    return Pair("GET", f"/indexes/{INDEX}", None, 200, answer, GET_INDEX_PAGE)


def creation(settings: dict[str, Any], first_task: int = 0) -> list[Pair]:
    return [
        Pair(
            "POST",
            "/indexes",
            {"uid": INDEX, "primaryKey": "id"},
            202,
            task(first_task, "indexCreation", INDEX),
            CREATE_PAGE,
        ),
        waited(first_task, "indexCreation"),
        Pair(
            "PATCH",
            f"/indexes/{INDEX}/settings",
            settings,
            202,
            task(first_task + 1, "settingsUpdate", INDEX),
            SETTINGS_PAGE,
        ),
        waited(first_task + 1, "settingsUpdate"),
    ]


@pytest.fixture
def script() -> Iterator[tuple[str, Recorded]]:
    """The script, behind `refusing` for an index with the adapter's settings."""
    recording = Recorded()
    with serving(refusing(recording.respond, BASE_SETTINGS)) as url:
        yield url, recording
        recording.check()


def answered_settings(sent: dict[str, Any]) -> dict[str, Any]:
    """What `GET /indexes/{uid}/settings` answers once `sent` is applied, in the shape of the
    example of GET_SETTINGS_PAGE: every setting, the server's defaults filled in (nested
    objects too), filterable and sortable attributes in its own (sorted) order."""
    answer = {
        "displayedAttributes": sent["displayedAttributes"],
        "searchableAttributes": sent["searchableAttributes"],
        "filterableAttributes": sorted(sent["filterableAttributes"]),
        "sortableAttributes": sorted(sent["sortableAttributes"]),
        "rankingRules": sent["rankingRules"],
        "stopWords": [],
        "nonSeparatorTokens": [],
        "separatorTokens": [],
        "dictionary": [],
        "synonyms": {},
        "distinctAttribute": None,
        "typoTolerance": {
            "enabled": True,
            "minWordSizeForTypos": {"oneTypo": 5, "twoTypos": 9},
            "disableOnWords": [],
            "disableOnAttributes": [],
            "disableOnNumbers": False,
            **sent["typoTolerance"],
        },
        "faceting": {"maxValuesPerFacet": 100, "sortFacetValuesBy": {"*": "alpha"}, **sent["faceting"]},
        "pagination": {"maxTotalHits": 1000, **sent["pagination"]},
        "proximityPrecision": sent.get("proximityPrecision", "byWord"),
        "searchCutoffMs": sent.get("searchCutoffMs"),
        "localizedAttributes": None,
        "embedders": {},
    }
    if "prefixSearch" in sent:  # from 1.12
        answer.update(prefixSearch=sent["prefixSearch"], facetSearch=sent["facetSearch"])
    return answer


def settings_read(answer: dict[str, Any]) -> Pair:
    return Pair("GET", f"/indexes/{INDEX}/settings", None, 200, answer, GET_SETTINGS_PAGE)


def _index(url: str, settings: Settings, *, search_key: str | None = "search-key") -> MeiliIndex:
    from registry.db import create_sync_engine

    return MeiliIndex(
        meilisearch.Client(url, "admin-key"),
        INDEX,
        create_sync_engine(settings.database.url, writer=False),
        searcher=meilisearch.Client(url, search_key),
    )


@pytest.mark.parametrize(
    ("server_version", "sent"),
    [
        ("1.3.0", BASE_SETTINGS),
        ("1.5.2", BASE_SETTINGS),
        ("1.6.0", {**BASE_SETTINGS, **SETTINGS_FROM_1_6}),
        ("1.7.6", {**BASE_SETTINGS, **SETTINGS_FROM_1_6}),
        ("1.8.0", {**BASE_SETTINGS, **SETTINGS_FROM_1_6, **SETTINGS_FROM_1_8}),
        ("1.11.0", {**BASE_SETTINGS, **SETTINGS_FROM_1_6, **SETTINGS_FROM_1_8}),
        ("1.12.0", {**BASE_SETTINGS, **SETTINGS_FROM_1_6, **SETTINGS_FROM_1_8, **SETTINGS_FROM_1_12}),
    ],
)
def test_the_index_is_made_with_the_settings_its_server_version_knows(
    script: tuple[str, Recorded],
    settings: Settings,
    engine: sa.Engine,
    server_version: str,
    sent: dict[str, Any],
) -> None:
    """Each setting goes only to servers that know it (an older one refuses the whole update
    for an unknown field): `proximityPrecision` (pinned to `byWord`: the phrase check relies on
    it) from 1.6, `searchCutoffMs` from 1.8 (unset, a search is cut at 1,500 ms and answers
    partial results silently), `prefixSearch` and `facetSearch` from 1.12 (SETTINGS_PAGE)."""
    url, recording = script
    recording.expect(version(server_version), index_missing(), *creation(sent))
    index = _index(url, settings)
    index.ensure()
    index.close()
    assert ("prefixSearch" in sent) == (server_version == "1.12.0")
    assert sent["pagination"] == {"maxTotalHits": 10_001}, "one past the deepest page: past it is not counted"
    if "searchCutoffMs" in sent:
        assert sent["searchCutoffMs"] > 10_000, "above the client's timeout: never a partial answer"
    assert all(key == "Bearer admin-key" for key in recording.keys), "settings need the key with index rights"


def test_a_server_older_than_the_supported_range_is_reported_and_left_alone(
    script: tuple[str, Recorded], settings: Settings
) -> None:
    url, recording = script
    recording.expect(version("1.2.0"))
    index = _index(url, settings)
    with pytest.raises(SearchUnavailable) as raised:
        index.ensure()
    index.close()
    assert "older than the supported 1.3" in raised.value.reason


def test_a_write_ensures_the_index_first_and_deletes_by_filter(
    script: tuple[str, Recorded], settings: Settings, engine: sa.Engine
) -> None:
    """Before any document is written, the index is checked and its settings compared (here
    they are right: nothing is sent); deletions use the filter route, not the deprecated id
    list (`delete-batch`)."""
    url, recording = script
    wanted = settings_for((1, 12, 0))
    gone = [new_id(), new_id()]
    recording.expect(
        version("1.12.0"),
        index_found(),
        settings_read(answered_settings(wanted)),
        *_deletion(gone),
    )
    index = _index(url, settings)
    with engine.connect() as conn:
        index.apply(conn, [], gone)
    index.close()


def _deletion(gone: list[str]) -> list[Pair]:
    answer = task(242, "documentDeletion", INDEX)
    body = {"filter": "id IN [" + ", ".join(f'"{listing_id}"' for listing_id in gone) + "]"}
    deleted = Pair("POST", f"/indexes/{INDEX}/documents/delete", body, 202, answer, DELETE_PAGE)
    return [deleted, waited(242, "documentDeletion")]


@pytest.mark.parametrize("server_version", ["1.11.0", "1.12.0"])
def test_settings_in_place_are_not_sent_again(
    script: tuple[str, Recorded], settings: Settings, engine: sa.Engine, server_version: str
) -> None:
    """The server answers its settings whole (defaults filled in, nested objects too) and
    lists such as the filterable attributes in its own order: the settings the adapter sent
    at creation count as in place, so neither a second ensure nor a write sends them again
    (each update would be a task awaited before every follower batch)."""
    url, recording = script
    sent = settings_for(parse_version(server_version))
    on_server = answered_settings(sent)
    assert on_server["filterableAttributes"] != sent["filterableAttributes"], "another order"
    gone = [new_id()]
    recording.expect(
        version(server_version),
        index_missing(),
        *creation(sent),
        version(server_version),
        index_found(),
        settings_read(on_server),
        version(server_version),
        index_found(),
        settings_read(on_server),
        *_deletion(gone),
    )
    index = _index(url, settings)
    index.ensure()
    index.ensure()
    with engine.connect() as conn:
        index.apply(conn, [], gone)
    index.close()
    assert recording.mismatches == [], "no settings update after the creation"


def _reversed(name: str) -> Callable[[dict[str, Any]], None]:
    return lambda answer: answer.update({name: answer[name][::-1]})


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(_reversed("searchableAttributes"), id="searchable-order"),
        pytest.param(_reversed("rankingRules"), id="ranking-rules-order"),
        pytest.param(lambda answer: answer["filterableAttributes"].remove("kind"), id="filterable-missing"),
        pytest.param(lambda answer: answer["typoTolerance"].update(enabled=True), id="typo-tolerance"),
        pytest.param(lambda answer: answer["pagination"].update(maxTotalHits=1000), id="pagination"),
        pytest.param(lambda answer: answer.update(searchCutoffMs=None), id="search-cutoff-unset"),
        pytest.param(lambda answer: answer.update(proximityPrecision="byAttribute"), id="proximity"),
    ],
)
def test_settings_that_differ_where_it_matters_are_sent(
    script: tuple[str, Recorded], settings: Settings, change: Callable[[dict[str, Any]], None]
) -> None:
    """Searchable attributes and ranking rules are ordered (the order is their meaning); a
    missing attribute or a nested value that differs is a difference too."""
    url, recording = script
    wanted = settings_for((1, 12, 0))
    on_server = answered_settings(wanted)
    change(on_server)
    recording.expect(
        version("1.12.0"),
        index_found(),
        settings_read(on_server),
        Pair(
            "PATCH",
            f"/indexes/{INDEX}/settings",
            wanted,
            202,
            task(7, "settingsUpdate", INDEX),
            SETTINGS_PAGE,
        ),
        waited(7, "settingsUpdate"),
    )
    index = _index(url, settings)
    index.ensure()
    index.close()


def _hit(listing_id: str, name: str, rank: int) -> dict[str, Any]:
    """A stored document as the adapter writes it (its entry: a real public entry)."""
    entry = PublicEntry(
        id=listing_id,
        kind="person",
        name=name,
        sex="M",
        age_at_publication=42,
        id_type="resident_id",
        identifier_masked="11****1984********",
        legal_representative=None,
        court_code="京0105",
        court_name="北京市朝阳区人民法院",
        province_code="11",
        province="北京",
        case_number="（2024）京0105执1号",
        basis_document_number="（2024）京0105民初1号",
        basis_issuer="北京市朝阳区人民法院",
        obligations="支付货款",
        amount_cents=100,
        performance=PublicPerformance(status="none"),
        grounds=["able_but_refuses"],
        filed_on=date(2024, 1, 2),
        published_on=date(2024, 1, 3),
    )
    return {"id": listing_id, "rank": rank, "entry": msgspec.to_builtins(entry)}


def test_a_page_asks_for_that_page_only_with_the_public_key(
    script: tuple[str, Recorded], settings: Settings, registry: Registry, court: CourtHandle
) -> None:
    """Page 3 of 20 asks Meilisearch for page 3 of 20 (not 60 hits), most recently changed
    first (`rank`), with the search-only key."""
    url, recording = script
    ids = publish(registry, court, 2)
    body = {
        "q": '"' + " ".join(spell(t) for t in ("张伟",)) + '"',
        "filter": ['province_code = "11"'],
        "sort": ["rank:desc"],
        "attributesToRetrieve": ["id", "rank", "entry"],
        "attributesToSearchOn": ["terms"],
        "facets": ["province_code", "grounds"],
        "page": 3,
        "hitsPerPage": 20,
    }
    # The page's response shape in page form (hits, page, hitsPerPage, totalHits, totalPages).
    answer = {
        "hits": [_hit(ids[0], "张伟", 9), _hit(ids[1], "李张伟", 8)],
        "query": body["q"],
        "processingTimeMs": 35,
        "hitsPerPage": 20,
        "page": 3,
        "totalPages": 3,
        "totalHits": 42,
        "facetDistribution": {"province_code": {"11": 42}, "grounds": {"able_but_refuses": 42}},
    }
    recording.expect(Pair("POST", f"/indexes/{INDEX}/search", body, 200, answer, SEARCH_PAGE))
    index = _index(url, settings, search_key="search-key")
    result = index.search_sync(SearchQuery(text="张伟", province="11", page=3, per_page=20))
    index.close()
    assert [h.name for h in result.hits] == ["张伟", "李张伟"] and result.total == 42
    assert result.facets == {"province": {"11": 42}, "ground": {"able_but_refuses": 42}}
    assert recording.keys == ["Bearer search-key"]


def _first_page(hits: list[dict[str, Any]]) -> Pair:
    """The search call for page 1, answered with `hits` (all in province 11), in page form."""
    answer = {
        "hits": hits,
        "totalHits": len(hits),
        "page": 1,
        "hitsPerPage": 20,
        "totalPages": 1,
        "facetDistribution": {"province_code": {"11": len(hits)}},
    }
    return Pair("POST", f"/indexes/{INDEX}/search", lambda body: body["page"] == 1, 200, answer, SEARCH_PAGE)


CANDIDATE_FIELDS = ["id", "rank", "entry.name", "entry.province_code", "entry.grounds"]


def _facet_distribution(hits: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    provinces: dict[str, int] = {}
    grounds: dict[str, int] = {}
    for item in hits:
        entry = item["entry"]
        provinces[entry["province_code"]] = provinces.get(entry["province_code"], 0) + 1
        for ground in entry["grounds"]:
            grounds[ground] = grounds.get(ground, 0) + 1
    return {"province_code": provinces, "grounds": grounds}


def candidates(hits: list[dict[str, Any]], total: int | None = None) -> Pair:
    """The read of a long phrase's candidates: page form, CHECK_LIMIT + 1 of them, each its id,
    rank and the entry's name, province and grounds (nested fields by dot notation: SEARCH_PAGE,
    `attributesToRetrieve`); the facets of all of them."""

    def fits(body: dict[str, Any]) -> bool:
        return (body["page"], body["hitsPerPage"], body["attributesToRetrieve"]) == (
            1,
            1001,
            CANDIDATE_FIELDS,
        )

    shown = [
        {
            "id": item["id"],
            "rank": item["rank"],
            "entry": {k: item["entry"][k] for k in ("name", "province_code", "grounds")},
        }
        for item in hits
    ]
    answer = {
        "hits": shown,
        "query": "",
        "processingTimeMs": 3,
        "hitsPerPage": 1001,
        "page": 1,
        "totalPages": 1,
        "totalHits": len(hits) if total is None else total,
        "facetDistribution": _facet_distribution(hits),
    }
    return Pair("POST", f"/indexes/{INDEX}/search", fits, 200, answer, SEARCH_PAGE)


def entries_by_id(hits: list[dict[str, Any]]) -> Pair:
    """The entries of a page of checked hits, by their ids (offset/limit form of SEARCH_PAGE)."""
    body = {
        "q": "",
        "filter": ["id IN [" + ", ".join(f'"{item["id"]}"' for item in hits) + "]"],
        "limit": len(hits),
        "attributesToRetrieve": ["id", "entry"],
    }
    answer = {
        "hits": [{"id": item["id"], "entry": item["entry"]} for item in hits],
        "query": "",
        "processingTimeMs": 1,
        "limit": len(hits),
        "offset": 0,
        "estimatedTotalHits": len(hits),
    }
    return Pair("POST", f"/indexes/{INDEX}/search", body, 200, answer, SEARCH_PAGE)


def test_a_long_phrase_hit_that_is_not_a_true_substring_is_dropped(
    script: tuple[str, Recorded], settings: Settings, registry: Registry, court: CourtHandle
) -> None:
    """From five characters on, Meilisearch's phrase (word pairs near each other) can match a
    name holding the pairs apart: such a hit is checked against the name, and dropped, from
    the hits, the total and the facets alike."""
    url, recording = script
    ids = publish(registry, court, 2)
    good, bad = _hit(ids[0], "北京恒信达科技有限公司", 2), _hit(ids[1], "恒信科技达信达科技", 1)
    recording.expect(candidates([good, bad]), entries_by_id([good]))
    index = _index(url, settings)
    result = index.search_sync(SearchQuery(text="恒信达科技"))
    index.close()
    assert [h.name for h in result.hits] == ["北京恒信达科技有限公司"] and result.total == 1
    assert result.total_exact and result.facets == {"province": {"11": 1}, "ground": {"able_but_refuses": 1}}


def _entry_search(listing_id: str, stored: dict[str, Any] | None) -> Pair:
    """The search for one entry by its id, answered with `stored` (None: no hit), in the
    offset/limit form of SEARCH_PAGE."""
    body = {"q": "", "filter": [f'id = "{listing_id}"'], "limit": 1, "attributesToRetrieve": ["entry"]}
    hits = [] if stored is None else [{"entry": stored["entry"]}]
    answer = {
        "hits": hits,
        "query": "",
        "processingTimeMs": 1,
        "limit": 1,
        "offset": 0,
        "estimatedTotalHits": len(hits),
    }
    return Pair("POST", f"/indexes/{INDEX}/search", body, 200, answer, SEARCH_PAGE)


def test_an_entry_is_read_by_a_valid_id_only(
    script: tuple[str, Recorded], settings: Settings, registry: Registry, court: CourtHandle
) -> None:
    """With the public's search key, which cannot read a document (`documents.get`): one
    entry is a search filtered on its (quoted) id, one hit at most."""
    url, recording = script
    (found,), missing = publish(registry, court, 1), new_id()
    recording.expect(_entry_search(found, _hit(found, "王芳", 1)), _entry_search(missing, None))
    index = _index(url, settings)
    entry = index.get_sync(found)
    assert entry is not None and entry.name == "王芳" and entry.age_at_publication is not None
    assert index.get_sync(missing) is None
    assert recording.keys == ["Bearer search-key"] * 2
    # Never put into a URL: no request is made for these (the script has none left).
    for hostile in ("a?b=1", "x#y", "../keys", found.lower(), found + "0"):
        assert index.get_sync(hostile) is None
    index.close()


def test_a_hit_or_entry_whose_listing_has_left_the_list_is_not_shown(
    script: tuple[str, Recorded], settings: Settings, registry: Registry, court: CourtHandle
) -> None:
    """Meilisearch trails the log by the follower's step: a removal committed since is taken
    out of what it answers, by the registry's own listings table."""
    url, recording = script
    kept, removed = publish(registry, court, 2)
    remove(registry, court, removed)
    recording.expect(
        _first_page([_hit(removed, "张伟", 2), _hit(kept, "张伟", 1)]),
        _entry_search(removed, _hit(removed, "张伟", 2)),
    )
    index = _index(url, settings)
    result = index.search_sync(SearchQuery(text="张伟"))
    assert [h.id for h in result.hits] == [kept]
    assert index.get_sync(removed) is None
    index.close()


def _merge_server(a: list[int], b: list[int]) -> tuple[Respond, list[dict[str, Any]]]:
    """Two disjoint result lists by rank, answering the adapter's search calls as Meilisearch
    does (page form with totals, offset/limit form, a `rank > N` filter)."""
    requests: list[dict[str, Any]] = []

    def respond(method: str, path: str, params: Any, headers: dict[str, str]) -> tuple[int, Any]:
        requests.append(params)
        ranks = a if params["attributesToSearchOn"] == ["terms"] else b
        ranks = sorted(ranks, reverse=True)
        for clause in params["filter"]:
            if found := re.fullmatch(r"rank > (\d+)", clause):
                ranks = [r for r in ranks if r > int(found[1])]
        if "hitsPerPage" in params:
            return 200, {"hits": [], "totalHits": len(ranks), "facetDistribution": {}}
        window = ranks[params["offset"] : params["offset"] + params["limit"]]
        return 200, {"hits": [{"rank": r} for r in window]}

    return respond, requests


@pytest.mark.parametrize("offset", [0, 2, 5, 6, 9, 12])
def test_two_disjoint_searches_are_merged_by_rank_a_page_at_a_time(offset: int, settings: Settings) -> None:
    """A Latin query is a pinyin search and a substring search; their union, most recent
    first, is paged by asking each for one page after finding where the page starts. The
    server filters on `rank` only if the adapter's settings make it filterable."""
    a, b = [15, 12, 11, 7, 3, 2, 1], [14, 13, 10, 9, 8, 6]
    respond, requests = _merge_server(a, b)
    base = {"filter": [], "sort": ["rank:desc"]}
    searches = [
        ("x", {**base, "attributesToSearchOn": ["terms"]}),
        ("y", {**base, "attributesToSearchOn": ["pinyin"]}),
    ]
    with serving(refusing(respond, BASE_SETTINGS)) as url:
        meili = _index(url, settings)
        index = meili.searcher.index(INDEX)
        parts = [
            _Served(len(ranks), True, index=index, q=q, params=params)
            for ranks, (q, params) in zip((a, b), searches, strict=True)
        ]
        page = _merged_page(parts[0], parts[1], offset, 3)
        meili.close()
    assert [hit["rank"] for hit in page] == sorted(a + b, reverse=True)[offset : offset + 3]
    assert all(r.get("limit", 0) <= 3 for r in requests), "no request asks for more than a page"


def test_public_search_answers_503_with_retry_after_while_meilisearch_is_down(
    settings: Settings, engine: sa.Engine
) -> None:
    """Server unreachable: the service starts, /healthz says it lives, /readyz says search is
    down, the JSON API answers 503 problem+json `search_unavailable` with Retry-After, and the
    web page says so in Chinese; never a 500."""
    down = f"http://127.0.0.1:{free_port()}"
    meili = settings.override(
        search={"backend": "meilisearch"}, meilisearch={"url": down, "api_key": "a", "search_key": "s"}
    )
    with serve_app(create_app(meili, run_scheduler=False)) as url:
        assert httpx.get(f"{url}/healthz").status_code == 200
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["search"] != "ok"
        assert ready.json()["checks"]["database"] == "ok"
        api = httpx.get(f"{url}/v1/public/defaulters", params={"q": "张伟"})
        assert api.status_code == 503 and api.headers["content-type"] == "application/problem+json"
        assert api.json()["code"] == "search_unavailable" and int(api.headers["retry-after"]) > 0
        entry = httpx.get(f"{url}/v1/public/defaulters/{new_id()}")
        assert entry.status_code == 503 and entry.json()["code"] == "search_unavailable"
        page = httpx.get(f"{url}/", params={"q": "张伟"})
        assert page.status_code == 503 and "查询服务暂不可用" in page.text and page.headers["retry-after"]
        # A bad id is refused before the engine is asked: 404, even with the engine down.
        assert httpx.get(f"{url}/v1/public/defaulters/a%3Fb%3D1").status_code == 404


def test_the_admin_key_without_a_search_key_is_refused_at_start(settings: Settings) -> None:
    meili = settings.override(
        search={"backend": "meilisearch"}, meilisearch={"url": "http://127.0.0.1:9", "api_key": "admin"}
    )
    with pytest.raises(ValueError, match="REGISTRY_MEILISEARCH_SEARCH_KEY"):
        MeiliIndex.from_settings(meili)


# ---- a server that refuses this service's keys, or another service at the URL ----


def auth_error(code: str, message: str) -> dict[str, str]:
    """An error of type `auth`, in the error format of ERRORS_PAGE."""
    return {**error(code, message), "type": "auth"}


def protected() -> Respond:
    """A Meilisearch started with a master key that knows none of this service's keys
    (ERROR_CODES_PAGE, KEYS_PAGE): a request with a key it does not know is 403
    `invalid_api_key`; `GET /health` needs no key (HEALTH_PAGE)."""

    def respond(method: str, path: str, _body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        if method == "GET" and urlsplit(path).path == "/health":
            return 200, {"status": "available"}
        return 403, auth_error("invalid_api_key", "The provided API key is invalid.")

    return respond


def without_the_header(_method: str, _path: str, _body: Any, _headers: dict[str, str]) -> tuple[int, Any]:
    """What Meilisearch answers a request that reaches it without an `Authorization` header
    (ERROR_CODES_PAGE), here every request (a proxy in front that drops the header)."""
    message = "The Authorization header is missing. It must use the bearer authorization method."
    return 401, auth_error("missing_authorization_header", message)


@contextmanager
def protected_server() -> Iterator[str]:
    with serving(protected()) as url:
        yield url


@contextmanager
def header_dropped() -> Iterator[str]:
    with serving(without_the_header) as url:
        yield url


_NOT_FOUND_PAGE = b"<html><head><title>Not Found</title></head><body><h1>Not Found</h1></body></html>"


@contextmanager
def another_service(status: int = 404) -> Iterator[str]:
    """Another HTTP service: an HTML page with `status` (404: a web server's default site;
    200: a site that answers every path), whatever the request."""
    with serving(lambda *_: (status, _NOT_FOUND_PAGE)) as url:
        yield url


@dataclass(frozen=True)
class Refusal:
    server: Callable[[], AbstractContextManager[str]]
    api_key: str | None
    search_key: str | None
    named: tuple[str, ...]  # what the operator's reason names: the status, Meilisearch's code


REFUSALS = [
    pytest.param(
        Refusal(header_dropped, "admin-key", "search-key", ("401", "missing_authorization_header")),
        id="no-header-401",
    ),
    pytest.param(
        Refusal(protected_server, "admin-key-unknown", "search-key-unknown", ("403", "invalid_api_key")),
        id="unknown-key-403",
    ),
    pytest.param(Refusal(another_service, "admin-key", "search-key", ("404",)), id="not-meilisearch-404"),
    pytest.param(
        Refusal(partial(another_service, 200), "admin-key", "search-key", ("other than JSON",)),
        id="not-meilisearch-200-html",
    ),
]


def _at(settings: Settings, url: str, refusal: Refusal) -> Settings:
    return settings.override(
        search={"backend": "meilisearch"},
        meilisearch={"url": url, "api_key": refusal.api_key, "search_key": refusal.search_key},
    )


def _says(text: str, refusal: Refusal) -> None:
    for name in refusal.named:
        assert name in text, text
    for key in (refusal.api_key, refusal.search_key):
        assert key is None or key not in text, "a key is never logged"


@pytest.mark.parametrize("refusal", REFUSALS)
def test_a_refused_key_or_another_service_is_the_engine_unavailable(
    settings: Settings, engine: sa.Engine, caplog: pytest.LogCaptureFixture, refusal: Refusal
) -> None:
    """Not a 4xx about the adapter's own request (a bug to see), but the engine unusable until
    an operator fixes its key or URL: the process starts (one line), readiness says why, a
    search is 503, the follower backs off with one line, as for a server that is down."""
    caplog.set_level(logging.WARNING)
    with refusal.server() as url:
        index = open_engine(_at(settings, url, refusal))  # what `registry serve` and `worker` open
        assert isinstance(index, MeiliIndex)
        try:
            [started] = caplog.records
            _says(started.getMessage(), refusal)
            assert started.exc_info is None
            caplog.clear()

            reason = index.ready_sync()
            assert reason is not None
            _says(reason, refusal)
            with pytest.raises(SearchUnavailable) as searched:
                index.search_sync(SearchQuery(text="张伟"))
            _says(searched.value.reason, refusal)
            with pytest.raises(SearchUnavailable):
                index.get_sync(new_id())

            # The follower: its write ensures the index first; three attempts, one line.
            backoff = Backoff(FOLLOW_JOB)
            with engine.connect() as conn:

                async def work() -> None:
                    await anyio.to_thread.run_sync(index.apply, conn, [], [new_id()])

                for _ in range(3):
                    backoff.retry_at = 0.0
                    assert asyncio.run(backoff.run(work)) is None
            assert backoff.failures == 3
            # One line from the follower (readiness said its own once, above).
            [followed] = [record for record in caplog.records if record.name == "search.runtime"]
            _says(followed.getMessage(), refusal)
        finally:
            index.close()


@pytest.mark.parametrize("refusal", REFUSALS)
def test_serve_starts_and_answers_503_when_meilisearch_refuses_or_is_another_service(
    settings: Settings, engine: sa.Engine, refusal: Refusal
) -> None:
    with refusal.server() as url:
        app = create_app(_at(settings, url, refusal), run_scheduler=False)
        with serve_app(app) as served:
            assert httpx.get(f"{served}/healthz").status_code == 200
            ready = httpx.get(f"{served}/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["search"] != "ok"
            api = httpx.get(f"{served}/v1/public/defaulters", params={"q": "张伟"})
            assert api.status_code == 503 and api.headers["content-type"] == "application/problem+json"
            assert api.json()["code"] == "search_unavailable" and int(api.headers["retry-after"]) > 0


@pytest.mark.parametrize("refusal", REFUSALS)
def test_reindex_says_the_engine_is_unavailable_in_one_line(
    settings: Settings, engine: sa.Engine, refusal: Refusal
) -> None:
    with refusal.server() as url:
        env: dict[str, str | None] = {
            "REGISTRY_SEARCH_BACKEND": "meilisearch",
            "REGISTRY_MEILISEARCH_URL": url,
        }
        env |= {
            "REGISTRY_MEILISEARCH_API_KEY": refusal.api_key,
            "REGISTRY_MEILISEARCH_SEARCH_KEY": refusal.search_key,
        }
        result = CliRunner().invoke(search, ["reindex"], env=env)
    assert result.exit_code == 1 and not isinstance(result.exception, AssertionError), result.exception
    [line] = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert line.startswith("Error: search engine unavailable: "), line
    _says(line, refusal)

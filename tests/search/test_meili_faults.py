"""The Meilisearch adapter where a server, an operator or another process gets in its way: an
index lost or replaced behind the registry's back, a task that fails inside Meilisearch, a
request over the payload limit, counts past `maxTotalHits`, a server or settings readiness
must refuse, a hit deleted between two searches of a page, long phrases checked on every
page alike. Recorded request/response pairs from Meilisearch's API documentation (the pages
cited in test_meili_contract.py), as there; the whole restore runs against the in-memory
stand-in of tests/support/meili_server.py, as the follower's tests do (test_indexer.py)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import anyio
import meilisearch
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from registry.db import create_sync_engine
from registry.eventlog.readers import follow_sync
from registry.ids import new_id
from registry.settings import Settings
from search.cli import search
from search.indexer import index_follower
from search.interface import SearchQuery, SearchUnavailable
from search.meili import (
    BASE_SETTINGS,
    LOST,
    PROBE,
    RESTORE_JOB,
    MeiliIndex,
    _merged_page,
    _Served,
    identity,
    settings_for,
)
from search.plugin import plugin
from search.runtime import FOLLOW_JOB, Backoff
from tests.search.test_meili_contract import (
    ADD_PAGE,
    CREATE_PAGE,
    DELETE_PAGE,
    ERROR_CODES_PAGE,
    GET_INDEX_PAGE,
    HEALTH_PAGE,
    INDEX,
    SEARCH_PAGE,
    SETTINGS_PAGE,
    TASK_PAGE,
    _hit,
    _index,
    answered_settings,
    candidates,
    entries_by_id,
    index_found,
    index_missing,
    refusing,
    script,
    settings_read,
    version,
    waited,
)
from tests.support.harness import CourtHandle, Registry
from tests.support.meili_server import Pair, Recorded, error, serving, stand_in, task
from tests.support.publishing import publish

__all__ = ["script"]  # the fixture, shared with the contract tests

DELETE_INDEX_PAGE = "https://www.meilisearch.com/docs/reference/api/indexes/delete-index"
CREATED = "2022-02-10T07:45:15.628261Z"  # index_found()'s createdAt (GET_INDEX_PAGE)
WANTED = settings_for((1, 12, 0))


@pytest.fixture
def writer(settings: Settings, engine: sa.Engine) -> Iterator[sa.Engine]:
    made = create_sync_engine(settings.database.url)
    yield made
    made.dispose()


def _row(engine: sa.Engine, name: str) -> int | None:
    with engine.connect() as conn:
        found = conn.execute(sa.text("SELECT position FROM reader_cursors WHERE name = :n"), {"n": name})
        value = found.scalar()
        return None if value is None else int(value)


def _put_row(engine: sa.Engine, name: str, position: int) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM reader_cursors WHERE name = :n"), {"n": name})
        conn.execute(
            sa.text(
                "INSERT INTO reader_cursors (name, position, updated_at) VALUES (:n, :p, CURRENT_TIMESTAMP)"
            ),
            {"n": name, "p": position},
        )


def failed(
    uid: int, kind: str, index: str | None, code: str, kind_of_error: str, message: str
) -> dict[str, Any]:
    """A failed task: the shape of TASK_PAGE's example, with the error object of
    ERROR_CODES_PAGE (message, code, type, link)."""
    return {
        "uid": uid,
        "indexUid": index,
        "status": "failed",
        "type": kind,
        "canceledBy": None,
        "details": None,
        "error": {
            "message": message,
            "code": code,
            "type": kind_of_error,
            "link": f"https://docs.meilisearch.com/errors#{code}",
        },
        "duration": "PT0.1S",
        "enqueuedAt": "2021-01-01T09:39:00.000000Z",
        "startedAt": "2021-01-01T09:39:01.000000Z",
        "finishedAt": "2021-01-01T09:39:02.000000Z",
    }


def health() -> Pair:
    return Pair("GET", "/health", None, 200, {"status": "available"}, HEALTH_PAGE)


def replaced_index() -> Pair:
    """GET_INDEX_PAGE's answer for an index of the same name made again later."""
    answer = {
        "uid": INDEX,
        "createdAt": "2026-03-01T02:00:00.000000Z",
        "updatedAt": "2026-03-01T02:00:00.000000Z",
        "primaryKey": "id",
    }
    return Pair("GET", f"/indexes/{INDEX}", None, 200, answer, GET_INDEX_PAGE)


# ---- 1. an index lost or replaced behind the registry's back ----


def test_an_index_lost_after_the_registry_indexed_into_it_is_not_made_again_empty(
    script: tuple[str, Recorded], settings: Settings, engine: sa.Engine
) -> None:
    """Made again empty, it would answer every search "0 found, exact" (read as "not listed")
    until the hourly reconcile: missing while the registry's cursor has moved, it is the
    engine unavailable, at start and before a write alike; nothing is created."""
    url, recording = script
    index = _index(url, settings)
    _put_row(engine, index.cursor, 7)
    recording.expect(version("1.12.0"), index_missing(), version("1.12.0"), index_missing())
    with pytest.raises(SearchUnavailable) as started:
        index.ensure()
    assert "missing though the registry has indexed" in started.value.reason
    with engine.connect() as conn, pytest.raises(SearchUnavailable):
        index.apply(conn, [], [new_id()])
    index.close()


def test_a_replaced_index_is_marked_lost_and_answers_503_in_every_process(
    script: tuple[str, Recorded], settings: Settings, engine: sa.Engine, writer: sa.Engine
) -> None:
    """The registry records the `createdAt` of the index it built (a swap moves it with the
    documents): an index of that name made again since (its `createdAt` another) is marked
    lost in the registry, where every process reads it, web processes too (their search key
    cannot read an index's `createdAt`): search, entries and readiness answer 503 without
    asking Meilisearch, and the follower refuses to write into it."""
    url, recording = script
    index = _index(url, settings)
    _put_row(engine, index.cursor, 7)
    _put_row(engine, index.mark_name, identity({"createdAt": CREATED}) or 0)
    recording.expect(version("1.12.0"), index_found())
    assert index.check_index(writer) is None, "the index the registry built"
    recording.expect(version("1.12.0"), replaced_index())
    reason = index.check_index(writer)
    assert reason is not None and "not the one the registry built" in reason
    assert _row(engine, index.mark_name) == LOST

    web = _index(url, settings)  # another process, which read the mark before: a few seconds
    recording.expect(health())
    said = web.ready_sync()
    assert said is not None and "rebuilding" in said
    with pytest.raises(SearchUnavailable):
        web.search_sync(SearchQuery(text="张伟"))
    with pytest.raises(SearchUnavailable):
        web.get_sync(new_id())
    recording.expect(version("1.12.0"), index_found())
    with engine.connect() as conn, pytest.raises(SearchUnavailable):
        index.apply(conn, [], [new_id()])
    web.close()
    index.close()


def test_the_worker_rebuilds_a_lost_index_and_serves_once_it_has_caught_up(
    registry: Registry, court: CourtHandle, settings: Settings, writer: sa.Engine
) -> None:
    """The restore job (`registry search reindex`'s rebuild): the follower refuses the lost
    index, the job marks it lost, builds a fresh index from a snapshot, applies what changed
    meanwhile, and swaps it in: only then does the mark let searches through."""
    during_build: list[int | None] = []
    late: list[str] = []

    def meanwhile(index_name: str) -> None:
        # The rebuild's first write: a listing published while it builds, the mark as it is.
        if index_name != INDEX and not during_build:
            during_build.append(_row(writer, f"search.meilisearch.{INDEX}.index"))
            late.extend(publish(registry, court, 1))

    with stand_in(before_write=meanwhile) as (url, stand):
        meili = MeiliIndex(
            meilisearch.Client(url, None), INDEX, create_sync_engine(settings.database.url, writer=False)
        )
        try:
            first = publish(registry, court, 2)
            follow_sync(writer, index_follower(meili))
            assert set(stand.indexes[INDEX]) == set(first)
            del stand.indexes[INDEX], stand.settings[INDEX]  # Meilisearch restarted on an empty volume
            second = publish(registry, court, 1)
            with pytest.raises(SearchUnavailable):
                follow_sync(writer, index_follower(meili))
            assert INDEX not in stand.indexes, "not made again empty"

            # The listing published during the build is in the build's own read (PostgreSQL
            # reads each page as committed then) or only in its catch-up (SQLite's snapshot):
            # either way the index ends with every listing, checked below.
            assert meili.restore(writer)["restored"] in (3, 4)
            assert during_build == [LOST], "searches answer 503 while the index is rebuilt"
            assert set(stand.indexes[INDEX]) == {*first, *second, *late}, "caught up before the swap"
            assert set(stand.indexes) == {INDEX}, "the old index and the build's are gone"
            with writer.connect() as conn:
                head = int(conn.execute(sa.text("SELECT last_seq FROM log_head")).scalar_one())
            assert _row(writer, meili.cursor) == head
            assert _row(writer, meili.mark_name) != LOST
            meili._lost_until = 0.0
            meili._refuse_if_lost()  # serving again
            assert meili.restore(writer) == {}, "nothing to do once it is back"
            follow_sync(writer, index_follower(meili))
        finally:
            meili.close()


def test_the_restore_job_runs_in_one_worker_at_a_time_with_meilisearch(settings: Settings) -> None:
    meili = settings.override(search={"backend": "meilisearch"}, meilisearch={"url": "http://127.0.0.1:9"})
    assert plugin.jobs is not None
    [job] = [job for job in plugin.jobs(meili) if job.id == RESTORE_JOB]
    assert job.singleton and isinstance(job.every, int | float) and job.every <= 60
    assert RESTORE_JOB not in {job.id for job in plugin.jobs(settings)}, "embedded: nothing to restore"


# ---- 2. document additions in batches under the payload limit ----


def test_documents_are_added_in_requests_under_the_payload_limit(
    settings: Settings, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Meilisearch refuses a body over its payload limit with 413 `payload_too_large`
    (ERROR_CODES_PAGE): a repair of many missing documents in one request failed every run.
    Additions go in requests bounded by bytes and by count, as deletions go by count."""
    limit = 6000
    monkeypatch.setattr("search.meili.PAYLOAD_BYTES", limit)
    monkeypatch.setattr("search.meili.BATCH", 3)
    sizes: list[int] = []
    sent: list[str] = []
    deletions: list[str] = []

    def respond(method: str, path: str, body: Any, _headers: dict[str, str]) -> tuple[int, Any]:
        route = urlsplit(path).path
        if route.startswith("/tasks/"):
            uid = int(route.rsplit("/", 1)[1])
            return 200, {**waited(uid, "documentAdditionOrUpdate").answer}
        if route == f"/indexes/{INDEX}/documents" and method == "POST":
            size = len(json.dumps(body).encode())
            if size > limit * 1.1:  # as the server counts it, give or take the separators
                message = (
                    "The provided payload reached the size limit. The maximum accepted payload size is 6 KB."
                )
                return 413, error("payload_too_large", message)
            sizes.append(size)
            sent.extend(document["id"] for document in body)
            return 202, task(len(sizes), "documentAdditionOrUpdate", INDEX)
        if route == f"/indexes/{INDEX}/documents/delete":
            deletions.append(body["filter"])
            return 202, task(100 + len(deletions), "documentDeletion", INDEX)
        return 404, error("not_found", route)

    documents = [{"id": f"doc{n}", "rank": n, "entry": {"name": "张" * 400}} for n in range(8)]
    with serving(respond) as url:
        index = _index(url, settings)
        index.write(INDEX, documents, [f"gone{n}" for n in range(7)])
        index.close()
    assert sent == [document["id"] for document in documents], "each once, in order"
    assert len(sizes) >= 4 and max(sizes) <= limit, sizes
    assert len(deletions) == 3


# ---- 3. counts past maxTotalHits ----


def _page_answer(hits: list[dict[str, Any]], total: int) -> dict[str, Any]:
    return {
        "hits": hits,
        "query": "",
        "processingTimeMs": 12,
        "hitsPerPage": 20,
        "page": 1,
        "totalPages": 500,
        "totalHits": total,
        "facetDistribution": {"province_code": {"11": total}, "grounds": {"able_but_refuses": total}},
    }


def test_a_count_that_reaches_max_total_hits_is_a_lower_bound(
    script: tuple[str, Recorded], settings: Settings, registry: Registry, court: CourtHandle
) -> None:
    """Meilisearch counts up to `maxTotalHits` (the adapter sets one past the deepest page):
    a count there is "more than 10,000" (`total_exact` false, no facets), what the embedded
    engine says past its count limit, not "10,001 found" as exact; for a Latin query's two
    searches too."""
    url, recording = script
    (listed,) = publish(registry, court, 1)
    recording.expect(
        Pair(
            "POST",
            f"/indexes/{INDEX}/search",
            lambda b: b["page"] == 1,
            200,
            _page_answer([_hit(listed, "王芳", 9)], 10_001),
            SEARCH_PAGE,
        ),
        Pair(
            "POST",
            f"/indexes/{INDEX}/search",
            lambda b: b["page"] == 1,
            200,
            _page_answer([], 10_000),
            SEARCH_PAGE,
        ),
    )
    index = _index(url, settings)
    past = index.search_sync(SearchQuery(province="11"))
    assert (past.total, past.total_exact, past.facets) == (10_000, False, {"province": {}, "ground": {}})
    assert [h.id for h in past.hits] == [listed]
    at = index.search_sync(SearchQuery(province="11"))
    assert (at.total, at.total_exact) == (10_000, True), "exactly the window is still a count"

    # A Latin query: the substring search finds nothing, the pinyin one more than it counts.
    counted = {"hits": [], "hitsPerPage": 0, "page": 1, "totalPages": 0}
    recording.expect(
        Pair(
            "POST",
            f"/indexes/{INDEX}/search",
            lambda b: b["attributesToSearchOn"] == ["terms"],
            200,
            {**counted, "totalHits": 0},
            SEARCH_PAGE,
        ),
        Pair(
            "POST",
            f"/indexes/{INDEX}/search",
            lambda b: b["attributesToSearchOn"] == ["pinyin"],
            200,
            {**counted, "totalHits": 10_001, "facetDistribution": {"province_code": {"11": 10_001}}},
            SEARCH_PAGE,
        ),
        Pair(
            "POST",
            f"/indexes/{INDEX}/search",
            lambda b: (b["offset"], b["limit"]) == (0, 20),
            200,
            {"hits": [_hit(listed, "王芳", 9)], "offset": 0, "limit": 20, "estimatedTotalHits": 10_001},
            SEARCH_PAGE,
        ),
    )
    latin = index.search_sync(SearchQuery(text="wang"))
    index.close()
    assert (latin.total, latin.total_exact, latin.facets["province"]) == (10_000, False, {})


# ---- 4. a task that fails inside Meilisearch ----


def test_a_failed_task_is_the_engine_unavailable_with_its_code_only(
    script: tuple[str, Recorded], settings: Settings, engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Not a RuntimeError with the task's message (a traceback twice a second, and the
    message can quote a document): SearchUnavailable naming the task's code and type, so the
    follower backs off with one line."""
    url, recording = script
    gone = new_id()
    body = {"filter": f'id IN ["{gone}"]'}
    secret = "Document `张伟 110101199003071234` could not be written"
    recording.expect(
        version("1.12.0"),
        index_found(),
        settings_read(answered_settings(WANTED)),
        Pair(
            "POST",
            f"/indexes/{INDEX}/documents/delete",
            body,
            202,
            task(9, "documentDeletion", INDEX),
            DELETE_PAGE,
        ),
        Pair(
            "GET",
            "/tasks/9",
            None,
            200,
            failed(9, "documentDeletion", INDEX, "no_space_left_on_device", "system", secret),
            TASK_PAGE,
        ),
    )
    index = _index(url, settings)
    caplog.set_level(logging.WARNING)
    backoff = Backoff(FOLLOW_JOB)
    with engine.connect() as conn:

        async def work() -> None:
            await anyio.to_thread.run_sync(index.apply, conn, [], [gone])

        assert asyncio.run(backoff.run(work)) is None
    index.close()
    [line] = caplog.records
    assert "no_space_left_on_device" in line.getMessage() and "failed" in line.getMessage()
    assert "110101199003071234" not in line.getMessage() and line.exc_info is None
    assert backoff.failures == 1


def test_processes_racing_to_create_the_index_both_start(
    script: tuple[str, Recorded], settings: Settings, engine: sa.Engine
) -> None:
    """Two processes that both found the index missing both create it: the second's task
    fails with `index_already_exists` (ERROR_CODES_PAGE), which is the index being there."""
    url, recording = script
    already = failed(
        0,
        "indexCreation",
        INDEX,
        "index_already_exists",
        "invalid_request",
        f"Index `{INDEX}` already exists.",
    )
    recording.expect(
        version("1.12.0"),
        index_missing(),
        Pair(
            "POST",
            "/indexes",
            {"uid": INDEX, "primaryKey": "id"},
            202,
            task(0, "indexCreation", INDEX),
            CREATE_PAGE,
        ),
        Pair("GET", "/tasks/0", None, 200, already, TASK_PAGE),
        Pair(
            "PATCH",
            f"/indexes/{INDEX}/settings",
            WANTED,
            202,
            task(1, "settingsUpdate", INDEX),
            SETTINGS_PAGE,
        ),
        waited(1, "settingsUpdate"),
    )
    index = _index(url, settings)
    index.ensure()
    index.close()


def test_a_failed_reindex_says_one_line_and_deletes_its_index(
    settings: Settings,
    engine: sa.Engine,
    registry: Registry,
    court: CourtHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fresh = f"{INDEX}_build_1_abcdef"
    monkeypatch.setattr(MeiliIndex, "fresh_name", lambda _self: fresh)
    publish(registry, court, 1)
    recording = Recorded()
    found = {"uid": fresh, "createdAt": CREATED, "updatedAt": CREATED, "primaryKey": "id"}
    recording.expect(
        # `registry search reindex` opens the engine: ensure at start.
        version("1.12.0"),
        index_found(),
        settings_read(answered_settings(WANTED)),
        # The rebuild.
        version("1.12.0"),
        Pair(
            "POST",
            "/indexes",
            {"uid": fresh, "primaryKey": "id"},
            202,
            task(1, "indexCreation", fresh),
            CREATE_PAGE,
        ),
        waited(1, "indexCreation"),
        Pair(
            "PATCH",
            f"/indexes/{fresh}/settings",
            WANTED,
            202,
            task(2, "settingsUpdate", fresh),
            SETTINGS_PAGE,
        ),
        waited(2, "settingsUpdate"),
        Pair(
            "POST",
            f"/indexes/{fresh}/documents?primaryKey=id",
            lambda body: len(body) == 1,
            202,
            task(3, "documentAdditionOrUpdate", fresh),
            ADD_PAGE,
        ),
        Pair(
            "GET",
            "/tasks/3",
            None,
            200,
            failed(3, "documentAdditionOrUpdate", fresh, "no_space_left_on_device", "system", "full"),
            TASK_PAGE,
        ),
        # The failed build's index is deleted.
        Pair("GET", f"/indexes/{fresh}", None, 200, found, GET_INDEX_PAGE),
        Pair("DELETE", f"/indexes/{fresh}", None, 202, task(4, "indexDeletion", fresh), DELETE_INDEX_PAGE),
        waited(4, "indexDeletion"),
    )
    with serving(refusing(recording.respond, BASE_SETTINGS)) as url:
        env = {
            "REGISTRY_SEARCH_BACKEND": "meilisearch",
            "REGISTRY_MEILISEARCH_URL": url,
            "REGISTRY_MEILISEARCH_API_KEY": "admin-key",
            "REGISTRY_MEILISEARCH_SEARCH_KEY": "search-key",
        }
        result = CliRunner().invoke(search, ["reindex"], env=env)
    recording.check()
    assert result.exit_code == 1 and not isinstance(result.exception, AssertionError), result.exception
    [line] = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert line.startswith("Error: search engine unavailable: ") and "no_space_left_on_device" in line, line
    assert "Traceback" not in result.stderr


# ---- 5. readiness: the server's version and the settings the queries need ----


@pytest.mark.parametrize(
    ("server_version", "says"),
    [("1.2.0", "older than the supported 1.3"), ("2.1.0", "outside the tested range")],
)
def test_readiness_refuses_a_server_outside_the_supported_range(
    script: tuple[str, Recorded], settings: Settings, engine: sa.Engine, server_version: str, says: str
) -> None:
    """A 1.2 server answers every search 500 (`attributesToSearchOn` unknown): /readyz must
    not say ready; a 2.x is outside the tested range, which readiness says too."""
    url, recording = script
    recording.expect(health(), version(server_version))
    index = _index(url, settings)
    reason = index.ready_sync()
    assert reason is not None and says in reason
    if server_version == "1.2.0":
        # What 1.2 answers a search with `attributesToSearchOn` (ERROR_CODES_PAGE): 503, not 500.
        unknown = error("bad_request", "Unknown field `attributesToSearchOn`: expected one of `q`, `offset`")
        recording.expect(
            Pair("POST", f"/indexes/{INDEX}/search", lambda _: True, 400, unknown, ERROR_CODES_PAGE)
        )
        with pytest.raises(SearchUnavailable) as searched:
            index.search_sync(SearchQuery(text="张伟"))
        assert "bad_request" in searched.value.reason
    index.close()


def test_readiness_probes_the_settings_the_queries_need_and_caches_a_while(
    script: tuple[str, Recorded], settings: Settings, engine: sa.Engine
) -> None:
    url, recording = script
    probe = {
        "hits": [],
        "query": "",
        "processingTimeMs": 0,
        "hitsPerPage": 0,
        "page": 1,
        "totalPages": 0,
        "totalHits": 0,
    }
    recording.expect(
        health(),
        version("1.12.0"),
        Pair("POST", f"/indexes/{INDEX}/search", {"q": "", **PROBE}, 200, probe, SEARCH_PAGE),
        health(),  # within the cache's time: the server's liveness only
    )
    index = _index(url, settings)
    assert index.ready_sync() is None
    assert index.ready_sync() is None
    index.close()
    assert recording.keys[2] == "Bearer search-key", "the probe is a public search"


def test_an_index_without_the_settings_the_queries_need_is_not_ready_and_answers_503(
    settings: Settings, engine: sa.Engine, registry: Registry, court: CourtHandle
) -> None:
    """`filterableAttributes` without `id` (FILTER_PAGE: Meilisearch refuses the filter with
    400 `invalid_search_filter`): an entry read was a 500 while /readyz said ready."""
    without_id = {
        **BASE_SETTINGS,
        "filterableAttributes": [a for a in BASE_SETTINGS["filterableAttributes"] if a != "id"],
    }
    recording = Recorded()
    recording.expect(health(), version("1.12.0"))  # the probe is refused before the script
    with serving(refusing(recording.respond, without_id)) as url:
        index = _index(url, settings)
        reason = index.ready_sync()
        with pytest.raises(SearchUnavailable) as entry:
            index.get_sync(new_id())
        index.close()
    recording.check()
    assert reason is not None and "invalid_search_filter" in reason
    assert "invalid_search_filter" in entry.value.reason


@pytest.mark.parametrize(
    ("recorded", "says"),
    [
        (None, "no worker has recorded the server's version"),
        ("2.1.0", "outside the tested range"),
        ("1.12.0", None),
    ],
)
def test_a_web_process_checks_the_version_with_its_key_or_the_workers_record(
    settings: Settings, engine: sa.Engine, writer: sa.Engine, recorded: str | None, says: str | None
) -> None:
    """A web process has only the search key; `GET /version` needs the `version` action
    (KEYS_PAGE), which the key made by docs/operations.md lacks: readiness then takes the
    version the worker recorded in the registry (its index check reads it with its key), and
    says not ready when there is none."""
    refused = {**error("invalid_api_key", "The provided API key is invalid."), "type": "auth"}
    probe = {"hits": [], "query": "", "hitsPerPage": 0, "page": 1, "totalPages": 0, "totalHits": 0}
    recording = Recorded()
    with serving(refusing(recording.respond, BASE_SETTINGS)) as url:
        if recorded is not None:  # the worker's check, with the key with index rights
            recording.expect(version(recorded), index_found())
            worker = _index(url, settings)
            worker.check_index(writer)
            worker.close()
        recording.expect(health(), Pair("GET", "/version", None, 403, refused, ERROR_CODES_PAGE))
        if says is None:
            recording.expect(
                Pair("POST", f"/indexes/{INDEX}/search", {"q": "", **PROBE}, 200, probe, SEARCH_PAGE)
            )
        web = MeiliIndex(
            meilisearch.Client(url, None),
            INDEX,
            create_sync_engine(settings.database.url, writer=False),
            searcher=meilisearch.Client(url, "search-key"),
        )
        reason = web.ready_sync()
        web.close()
    recording.check()
    assert set(recording.keys[-2 if says else -3 :]) == {"Bearer search-key"}, "the web process's key only"
    assert reason == says if says is None else reason is not None and says in reason


# ---- 6. a hit deleted between the two searches of a Latin query's page ----


def test_a_hit_deleted_between_the_count_and_the_probe_is_taken_as_gone(settings: Settings) -> None:
    a, b = [15, 12, 11, 7, 3, 2, 1], [14, 13, 10, 9, 8, 6]
    now = a[:-1]  # rank 1 deleted after the counts were read

    def respond(_method: str, _path: str, params: Any, _headers: dict[str, str]) -> tuple[int, Any]:
        ranks = now if params["attributesToSearchOn"] == ["terms"] else b
        for clause in params["filter"]:
            if clause.startswith("rank > "):
                ranks = [r for r in ranks if r > int(clause[7:])]
        if "hitsPerPage" in params:
            return 200, {"hits": [], "totalHits": len(ranks), "facetDistribution": {}}
        return 200, {
            "hits": [{"rank": r} for r in ranks[params["offset"] : params["offset"] + params["limit"]]]
        }

    base = {"filter": [], "sort": ["rank:desc"]}
    with serving(refusing(respond, BASE_SETTINGS)) as url:
        meili = _index(url, settings)
        index = meili.searcher.index(INDEX)
        terms = _Served(len(a), True, index=index, q="x", params={**base, "attributesToSearchOn": ["terms"]})
        pinyin = _Served(
            len(b), True, index=index, q="y", params={**base, "attributesToSearchOn": ["pinyin"]}
        )
        page = _merged_page(terms, pinyin, 12, 3)
        meili.close()
    assert page == [], "12 hits are left: page 5 of 3 is past them, not a 500"


# ---- 7. long phrases: the same total on every page ----


def test_a_dropped_long_phrase_hit_is_left_out_of_the_total_on_every_page(
    script: tuple[str, Recorded], settings: Settings, registry: Registry, court: CourtHandle
) -> None:
    """A hit that is not a true substring was taken off the total of its own page only (29 on
    page 1, 30 on page 2, the facets counting it): now every candidate is checked, so the
    total, the facets and the pages agree whichever page is asked."""
    url, recording = script
    ids = publish(registry, court, 8)
    true = [_hit(listing_id, f"北京恒信达科技{n}有限公司", 100 - n) for n, listing_id in enumerate(ids[1:])]
    false = _hit(ids[0], "恒信科技达信达科技", 200)  # the newest: on page 1
    recording.expect(candidates([false, *true]), entries_by_id(true[:5]))
    recording.expect(candidates([false, *true]), entries_by_id(true[5:]))
    index = _index(url, settings)
    first = index.search_sync(SearchQuery(text="恒信达科技", per_page=5, page=1))
    second = index.search_sync(SearchQuery(text="恒信达科技", per_page=5, page=2))
    index.close()
    assert [h.id for h in first.hits + second.hits] == ids[1:]
    assert first.total == second.total == 7 and first.total_exact and second.total_exact
    assert first.facets == second.facets == {"province": {"11": 7}, "ground": {"able_but_refuses": 7}}


def test_past_the_check_limit_a_long_phrase_total_is_a_lower_bound(
    script: tuple[str, Recorded], settings: Settings, registry: Registry, court: CourtHandle
) -> None:
    """More candidates than CHECK_LIMIT + 1: the true matches found among those read, less
    one, are a lower bound ("more than"), with no facets, as the embedded engine's past its
    count limit; the page is checked on its own."""
    url, recording = script
    ids = publish(registry, court, 3)
    hits = [
        _hit(ids[0], "恒信科技达信达科技", 9),
        _hit(ids[1], "恒信达科技", 8),
        _hit(ids[2], "恒信达科技二", 7),
    ]
    page = {"hits": hits, "offset": 0, "limit": 20, "estimatedTotalHits": 5000}
    recording.expect(
        candidates(hits, total=5000),
        Pair(
            "POST",
            f"/indexes/{INDEX}/search",
            lambda b: (b["offset"], b["limit"]) == (0, 20),
            200,
            page,
            SEARCH_PAGE,
        ),
    )
    index = _index(url, settings)
    result = index.search_sync(SearchQuery(text="恒信达科技"))
    index.close()
    assert [h.id for h in result.hits] == ids[1:]
    assert not result.total_exact and result.total == 1 and result.facets == {"province": {}, "ground": {}}

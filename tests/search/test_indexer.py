"""The one follower, reconciler and rebuild written against `SearchEngine`, run on the
Meilisearch engine through the official client and real HTTP, against an in-memory stand-in
for the server (tests/support/meili_server.py; none can be installed here:
`test_search_meilisearch.py` runs a real one when MEILISEARCH_URL is set). The embedded
engine runs the same code in `test_search.py`."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import meilisearch
import pytest
import sqlalchemy as sa

from registry.db import create_sync_engine
from registry.eventlog.readers import follow_sync
from registry.runtime import Services
from registry.settings import Settings
from search.indexer import index_follower, reconcile_with
from search.interface import SearchUnavailable
from search.meili import MeiliIndex
from search.runtime import EXTENSION, backoff_of, follow_index
from tests.support.harness import CourtHandle, Registry, free_port
from tests.support.listings import amended_body, post_amendment, publish_one
from tests.support.meili_server import StandIn, stand_in
from tests.support.publishing import publish

LIVE = "defaulters"


class Held:
    """Holds writes to the live index back until released; says when one is waiting."""

    def __init__(self) -> None:
        self.writing_live = threading.Event()
        self.release: threading.Event | None = None

    def __call__(self, index: str) -> None:
        if index == LIVE:
            self.writing_live.set()
            if self.release is not None:
                assert self.release.wait(30)


@pytest.fixture
def writer(settings: Settings, engine: sa.Engine) -> Iterator[sa.Engine]:
    made = create_sync_engine(settings.database.url)
    yield made
    made.dispose()


@pytest.fixture
def held() -> Held:
    return Held()


@pytest.fixture
def server(held: Held) -> Iterator[tuple[str, StandIn]]:
    with stand_in(before_write=held) as running:
        yield running


@pytest.fixture
def meili(settings: Settings, engine: sa.Engine, server: tuple[str, StandIn]) -> Iterator[MeiliIndex]:
    url, _ = server
    index = MeiliIndex(
        meilisearch.Client(url, None), LIVE, create_sync_engine(settings.database.url, writer=False)
    )
    yield index
    index.close()


def _cursor(engine: sa.Engine, name: str) -> int:
    with engine.connect() as conn:
        found = conn.execute(sa.text("SELECT position FROM reader_cursors WHERE name = :n"), {"n": name})
        return int(found.scalar_one())


def _head(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT last_seq FROM log_head")).scalar_one())


def _live(server: StandIn) -> dict[str, int]:
    return {listing_id: doc["version"] for listing_id, doc in server.indexes[LIVE].items()}


def test_the_follower_and_reconciler_keep_meilisearch_in_step(
    registry: Registry,
    court: CourtHandle,
    writer: sa.Engine,
    meili: MeiliIndex,
    server: tuple[str, StandIn],
) -> None:
    _, stand = server
    ids = publish(registry, court, 3)
    assert follow_sync(writer, index_follower(meili)) == _head(writer)  # every event, read once
    assert _live(stand) == dict.fromkeys(ids, 1)
    assert _cursor(writer, "search.meilisearch.defaulters") == _head(writer)

    # Drift: a document lost, one at a version its listing never had, one of no listing.
    live = stand.indexes[LIVE]
    del live[ids[0]]
    live[ids[1]] = dict(live[ids[1]], version=9)
    live["01J00000000000000000000000"] = dict(live[ids[2]], id="01J00000000000000000000000")
    counts = reconcile_with(writer, meili)
    assert counts == {"checked": 3, "missing": 1, "stale": 1, "extra": 1}
    assert _live(stand) == dict.fromkeys(ids, 1)
    assert reconcile_with(writer, meili) == {"checked": 3, "missing": 0, "stale": 0, "extra": 0}


def test_the_follower_makes_the_index_with_its_settings_before_writing_a_document(
    registry: Registry,
    court: CourtHandle,
    writer: sa.Engine,
    meili: MeiliIndex,
    server: tuple[str, StandIn],
) -> None:
    """A document write would make a missing index with default settings (`id` not sortable,
    nothing filterable): every search would fail. The engine makes it first, and again if it
    was deleted while the service ran: not empty, but rebuilt whole."""
    _, stand = server
    publish(registry, court, 1)
    follow_sync(writer, index_follower(meili))
    order = stand.requests.index
    created, configured = order(("POST", "/indexes")), order(("PATCH", f"/indexes/{LIVE}/settings"))
    assert created < configured < order(("POST", f"/indexes/{LIVE}/documents"))
    assert stand.settings[LIVE]["sortableAttributes"] == ["rank"]
    assert "id" in stand.settings[LIVE]["filterableAttributes"]
    assert stand.settings[LIVE]["prefixSearch"] == "disabled"

    del stand.indexes[LIVE], stand.settings[LIVE]  # an operator dropped it
    publish(registry, court, 1)
    # Made again empty it would answer "not listed" for everyone: the follower refuses it,
    # and the restore job rebuilds it whole (test_meili_faults.py).
    with pytest.raises(SearchUnavailable):
        follow_sync(writer, index_follower(meili))
    assert LIVE not in stand.indexes
    assert meili.restore(writer) == {"restored": 2}
    assert stand.settings[LIVE]["sortableAttributes"] == ["rank"] and len(stand.indexes[LIVE]) == 2


def test_an_amended_listing_ranks_above_those_changed_before_it(
    registry: Registry,
    court: CourtHandle,
    writer: sa.Engine,
    meili: MeiliIndex,
    server: tuple[str, StandIn],
) -> None:
    _, stand = server
    body = registry.listing(court)
    first = publish_one(registry, court, body)
    later = publish(registry, court, 2)
    follow_sync(writer, index_follower(meili))
    ranks = {listing_id: doc["rank"] for listing_id, doc in stand.indexes[LIVE].items()}
    assert ranks[first] < min(ranks[i] for i in later)
    assert post_amendment(registry, court, first, amended_body(body)).status_code == 200
    follow_sync(writer, index_follower(meili))
    ranks = {listing_id: doc["rank"] for listing_id, doc in stand.indexes[LIVE].items()}
    assert ranks[first] > max(ranks[i] for i in later), "newest first means most recently changed"


def test_a_rebuild_swaps_only_once_the_follower_holding_the_cursor_is_done(
    registry: Registry,
    court: CourtHandle,
    writer: sa.Engine,
    meili: MeiliIndex,
    server: tuple[str, StandIn],
    held: Held,
) -> None:
    """Follower and rebuild claim one cursor: the swap, and the cursor's move back to where
    the rebuild's snapshot began, cannot fall between a follower's read and its commit."""
    _, stand = server
    publish(registry, court, 2)
    follow_sync(writer, index_follower(meili))
    ids = publish(registry, court, 1)
    held.writing_live.clear()
    held.release = threading.Event()
    follower = threading.Thread(target=follow_sync, args=(writer, index_follower(meili)))
    follower.start()
    assert held.writing_live.wait(10)  # the follower holds the cursor, mid-batch
    rebuilt: list[dict[str, Any]] = []
    rebuild = threading.Thread(target=lambda: rebuilt.append(meili.rebuild(writer, 1)))
    rebuild.start()
    time.sleep(0.5)
    assert ("POST", "/swap-indexes") not in stand.requests, "the swap must wait for the follower's cursor"
    held.release.set()
    follower.join(10)
    rebuild.join(10)
    assert stand.requests.count(("POST", "/swap-indexes")) == 1 and rebuilt == [{"documents": 3}]
    assert ids[0] in _live(stand) and len(_live(stand)) == 3
    assert set(stand.indexes) == {LIVE}, "the old index is dropped after the swap"
    assert _cursor(writer, meili.cursor) == _head(writer)


def test_the_follow_job_backs_off_with_one_line_when_down_and_one_when_back(
    registry: Registry,
    court: CourtHandle,
    settings: Settings,
    writer: sa.Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Server unreachable: no traceback twice a second, one line when it goes down, none while
    it stays down, one when it is back; the events wait for it, none is lost."""
    port = free_port()
    index = MeiliIndex(
        meilisearch.Client(f"http://127.0.0.1:{port}", None, timeout=2),
        LIVE,
        create_sync_engine(settings.database.url, writer=False),
    )
    services = Services.create(settings)
    services.extensions[EXTENSION] = index
    ids = publish(registry, court, 2)
    backoff = backoff_of(services, "search_follow_log")
    try:
        with caplog.at_level(logging.WARNING, logger="search"):
            for _ in range(5):
                backoff.retry_at = 0  # as if each wait had passed
                assert asyncio.run(follow_index(services)) == 0
            assert backoff.failures == 5
            assert asyncio.run(follow_index(services)) == 0  # not due yet: no attempt at all
            assert backoff.failures == 5
            down = [r for r in caplog.records if "down" in r.getMessage()]
            assert len(down) == 1 and not any(r.exc_info for r in caplog.records)
            assert not _has_cursor(writer, index.cursor) or _cursor(writer, index.cursor) == 0

            with stand_in(port=port) as (_, stand):
                backoff.retry_at = 0
                assert asyncio.run(follow_index(services)) == _head(writer)
            back = [r for r in caplog.records if "back after 5 failed attempts" in r.getMessage()]
            assert len(back) == 1
            assert set(stand.indexes[LIVE]) == set(ids)
    finally:
        index.close()
        asyncio.run(services.close())


def _has_cursor(engine: sa.Engine, name: str) -> bool:
    with engine.connect() as conn:
        found = conn.execute(sa.text("SELECT 1 FROM reader_cursors WHERE name = :n"), {"n": name})
        return found.first() is not None


def test_a_court_province_outside_the_list_indexes_its_listing_without_one() -> None:
    """A court registered before provinces were checked (`--province zz`) stopped the search
    follower for every court: int("zz"). Its listings are indexed with no province now."""
    from search.embedded import facet_key, province_of

    assert facet_key("person", "zz", 3) == facet_key("person", None, 3)
    assert province_of(facet_key("organization", "zz", 3)) is None
    assert province_of(facet_key("person", "31", 3)) == "31"

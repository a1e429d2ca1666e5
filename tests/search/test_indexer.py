"""The one follower, reconciler and rebuild written against `SearchEngine`, run on the
Meilisearch engine with an in-memory stand-in for the server (none can be installed here;
`test_search_meilisearch.py` runs the real one when MEILISEARCH_URL is set). The embedded
engine runs the same code in `test_search.py`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from registry.db import create_sync_engine
from registry.eventlog.readers import follow_sync
from registry.settings import Settings
from search.indexer import index_follower, reconcile_with
from search.meili import MeiliIndex
from tests.conftest import CourtHandle, Registry
from tests.support.publishing import publish


class FakeServer:
    """The calls `MeiliIndex` makes, on dicts; writes to the live index can be held back."""

    def __init__(self, live: str) -> None:
        self.live = live
        self.indexes: dict[str, dict[str, dict[str, Any]]] = {}
        self.swaps = 0
        self.writing_live = threading.Event()
        self.hold_live: threading.Event | None = None

    def _task(self) -> SimpleNamespace:
        return SimpleNamespace(task_uid=0)

    def wait_for_task(self, uid: int, timeout_in_ms: int) -> SimpleNamespace:
        return SimpleNamespace(status="succeeded", error=None)

    def create_index(self, name: str, options: dict[str, str]) -> SimpleNamespace:
        self.indexes.setdefault(name, {})
        return self._task()

    def get_index(self, name: str) -> str:
        assert name in self.indexes
        return name

    def delete_index(self, name: str) -> SimpleNamespace:
        del self.indexes[name]
        return self._task()

    def swap_indexes(self, pairs: list[dict[str, list[str]]]) -> SimpleNamespace:
        first, second = pairs[0]["indexes"]
        self.indexes[first], self.indexes[second] = self.indexes[second], self.indexes[first]
        self.swaps += 1
        return self._task()

    def index(self, name: str) -> FakeIndex:
        return FakeIndex(self, name)


class FakeIndex:
    def __init__(self, server: FakeServer, name: str) -> None:
        self.server = server
        self.name = name

    def update_settings(self, settings: dict[str, Any]) -> SimpleNamespace:
        return self.server._task()

    def add_documents(self, documents: list[dict[str, Any]], primary_key: str) -> SimpleNamespace:
        if self.name == self.server.live:
            self.server.writing_live.set()
            if self.server.hold_live is not None:
                assert self.server.hold_live.wait(30)
        self.server.indexes[self.name].update({doc[primary_key]: doc for doc in documents})
        return self.server._task()

    def delete_documents(self, ids: list[str]) -> SimpleNamespace:
        for listing_id in ids:
            self.server.indexes[self.name].pop(listing_id, None)
        return self.server._task()

    def get_documents(self, params: dict[str, Any]) -> SimpleNamespace:
        docs = list(self.server.indexes[self.name].values())
        page = docs[params["offset"] : params["offset"] + params["limit"]]
        return SimpleNamespace(
            results=[SimpleNamespace(id=doc["id"], version=doc["version"]) for doc in page], total=len(docs)
        )


@pytest.fixture
def writer(settings: Settings, engine: sa.Engine) -> Iterator[sa.Engine]:
    made = create_sync_engine(settings.database.url)
    yield made
    made.dispose()


@pytest.fixture
def server() -> FakeServer:
    made = FakeServer("defaulters")
    made.create_index("defaulters", {})
    return made


@pytest.fixture
def meili(settings: Settings, engine: sa.Engine, server: FakeServer) -> Iterator[MeiliIndex]:
    index = MeiliIndex(server, "defaulters", create_sync_engine(settings.database.url, writer=False))  # type: ignore[arg-type]
    yield index
    index.close()


def _cursor(engine: sa.Engine, name: str) -> int:
    with engine.connect() as conn:
        found = conn.execute(sa.text("SELECT position FROM reader_cursors WHERE name = :n"), {"n": name})
        return int(found.scalar_one())


def _head(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT last_seq FROM log_head")).scalar_one())


def _live(server: FakeServer) -> dict[str, int]:
    return {listing_id: doc["version"] for listing_id, doc in server.indexes[server.live].items()}


def test_the_follower_and_reconciler_keep_meilisearch_in_step(
    registry: Registry, court: CourtHandle, writer: sa.Engine, meili: MeiliIndex, server: FakeServer
) -> None:
    ids = publish(registry, court, 3)
    assert follow_sync(writer, index_follower(meili)) == _head(writer)  # every event, read once
    assert _live(server) == dict.fromkeys(ids, 1)
    assert _cursor(writer, "search.meilisearch.defaulters") == _head(writer)

    # Drift: a document lost, one at a version its listing never had, one of no listing.
    live = server.indexes[meili.name]
    del live[ids[0]]
    live[ids[1]] = dict(live[ids[1]], version=9)
    live["01J0000000000000000000NONE"] = dict(live[ids[2]], id="01J0000000000000000000NONE")
    counts = reconcile_with(writer, meili)
    assert counts == {"checked": 3, "missing": 1, "stale": 1, "extra": 1}
    assert _live(server) == dict.fromkeys(ids, 1)
    assert reconcile_with(writer, meili) == {"checked": 3, "missing": 0, "stale": 0, "extra": 0}


def test_a_rebuild_swaps_only_once_the_follower_holding_the_cursor_is_done(
    registry: Registry, court: CourtHandle, writer: sa.Engine, meili: MeiliIndex, server: FakeServer
) -> None:
    """Follower and rebuild claim one cursor: the swap, and the cursor's move back to where
    the rebuild's snapshot began, cannot fall between a follower's read and its commit."""
    publish(registry, court, 2)
    follow_sync(writer, index_follower(meili))
    ids = publish(registry, court, 1)
    server.writing_live.clear()
    server.hold_live = threading.Event()
    follower = threading.Thread(target=follow_sync, args=(writer, index_follower(meili)))
    follower.start()
    assert server.writing_live.wait(10)  # the follower holds the cursor, mid-batch
    rebuilt: list[dict[str, Any]] = []
    rebuild = threading.Thread(target=lambda: rebuilt.append(meili.rebuild(writer, 1)))
    rebuild.start()
    time.sleep(0.5)
    assert server.swaps == 0, "the swap must wait for the follower's cursor"
    server.hold_live.set()
    follower.join(10)
    rebuild.join(10)
    assert server.swaps == 1 and rebuilt == [{"documents": 3}]
    assert ids[0] in _live(server) and len(_live(server)) == 3
    assert _cursor(writer, meili.cursor) == _head(writer)

"""The Meilisearch adapter against a real server: set MEILISEARCH_URL (and MEILISEARCH_API_KEY).

A Meilisearch server cannot be installed on the build machines, so these tests are skipped
there; the adapter is written against the documented API with the official client. The
same listings and expectations as the embedded tests, so both engines answer alike.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from registry.eventlog.readers import follow_sync
from search.indexer import index_follower, reconcile_with
from search.interface import SearchQuery
from search.meili import MeiliIndex, _searches, meili_filter, quote_filter
from search.text import text_match
from tests.support.harness import CourtHandle, Registry
from tests.support.listings import organization_named, person_named, publish_many
from tests.support.publishing import remove

MEILISEARCH_URL = os.environ.get("MEILISEARCH_URL")
needs_server = pytest.mark.skipif(
    not MEILISEARCH_URL,
    reason="MEILISEARCH_URL is not set: no Meilisearch server (it cannot be installed on these machines)",
)


def test_filter_values_are_quoted_so_they_cannot_extend_the_filter() -> None:
    # The query parser already refuses such values; the adapter does not rely on it.
    hostile = SearchQuery(text="张伟", court='京0105" OR province_code = "31', ground='a\\" OR 1')
    parts = meili_filter(hostile)
    assert parts == [
        'court_code = "京0105\\" OR province_code = \\"31"',
        'grounds = "a\\\\\\" OR 1"',
    ]
    assert quote_filter('x"y') == '"x\\"y"'
    # During a blind-index key rotation a number matches under either key.
    assert meili_filter(SearchQuery(identifier_blind=b"\x01")) == ['id_blind = "01"']
    rotating = SearchQuery(identifier_blind=b"\x01", identifier_blind_retiring=b"\x02")
    assert meili_filter(rotating) == ['(id_blind = "01" OR id_blind = "02")']


def test_pinyin_with_marks_or_u_umlaut_is_searched_as_the_index_spells_it() -> None:
    # search.text folds the query for both engines: Meilisearch is asked for the stored word.
    for typed in ("Lǚ Xiǎohóng", "lüxiaohong", "lyuxiaohong"):
        assert ('"lvxiaohong"', ["pinyin"]) in _searches(text_match(typed)), typed


@pytest.fixture
def meili(engine: sa.Engine) -> Iterator[MeiliIndex]:
    import meilisearch

    assert MEILISEARCH_URL is not None
    client = meilisearch.Client(MEILISEARCH_URL, os.environ.get("MEILISEARCH_API_KEY"))
    index = MeiliIndex(client, f"test_defaulters_{uuid.uuid4().hex[:8]}", engine)
    yield index
    client.delete_index(index.name)


def _names(index: MeiliIndex, **query: Any) -> list[str]:
    return sorted(hit.name for hit in index.search_sync(SearchQuery(**query)).hits)


@pytest.mark.meilisearch
@needs_server
def test_meilisearch_answers_like_the_embedded_index(
    meili: MeiliIndex, engine: sa.Engine, people: dict[str, str]
) -> None:
    assert meili.rebuild(engine, 1)["documents"] == len(people)
    assert _names(meili, text="张伟") == ["张伟", "张伟明", "李张伟"]
    assert _names(meili, text="芳") == ["单田芳", "王芳"]
    assert _names(meili, text="张伟明") == ["张伟明"]
    assert _names(meili, text="zhangwei") == ["张伟", "张伟明", "李张伟"]
    assert _names(meili, text="恒信达") == ["北京恒信达科技有限公司"]
    assert _names(meili, text="abc") == ["ABC国际贸易(上海)有限公司"]
    assert _names(meili, text="Lǚ Xiǎohóng") == _names(meili, text="lyuxiaohong") == ["吕小红"]
    result = meili.search_sync(SearchQuery(text="张伟", per_page=2, page=2))
    assert result.total == 3 and len(result.hits) == 1
    assert result.facets["province"] == {"11": 3}
    assert _names(meili, text="张伟", province="31") == []
    assert meili.get_sync(people["王芳"]) is not None
    assert meili.get_sync("01J0000000000000000000NONE") is None


@pytest.mark.meilisearch
@needs_server
def test_meilisearch_follows_removals_and_reconciles(
    meili: MeiliIndex, engine: sa.Engine, registry: Registry, court: CourtHandle, people: dict[str, str]
) -> None:
    meili.rebuild(engine, 1)
    remove(registry, court, people["王芳"])
    assert follow_sync(engine, index_follower(meili)) >= 1
    assert _names(meili, text="王芳") == []
    assert meili.get_sync(people["王芳"]) is None

    meili.write(meili.name, [], [people["张伟"]])  # drift: a document lost
    counts = reconcile_with(engine, meili)
    assert (counts["missing"], counts["stale"], counts["extra"]) == (1, 0, 0)
    assert _names(meili, text="张伟") == ["张伟", "张伟明", "李张伟"]


@pytest.fixture
def people(registry: Registry, court: CourtHandle, engine: sa.Engine) -> dict[str, str]:
    names = ["张伟", "张伟明", "李张伟", "张明", "伟张", "王芳", "单田芳", "吕小红"]
    ids = publish_many(registry, court, [person_named(registry, court, name) for name in names])
    org_ids = publish_many(
        registry,
        court,
        [
            organization_named(registry, court, "北京恒信达科技有限公司"),
            organization_named(registry, court, "ABC国际贸易（上海）有限公司"),
        ],
    )
    return dict(zip([*names, "恒信达", "ABC"], ids + org_ids, strict=True))

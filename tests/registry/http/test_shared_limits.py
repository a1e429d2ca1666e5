"""Rate limits shared by several web processes through Redis (REGISTRY_REDIS_URL), and what
happens when Redis stops answering: each process counts on its own, one log line says so.

Each test writes under a key prefix of its own, so runs and tests never share a count.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis
import sqlalchemy as sa

from registry.clients.services import create_client
from registry.limits import SharedLimits
from registry.settings import Settings
from registry.timeutil import utcnow
from service.app import create_app
from tests.support.harness import free_port, serve_app
from tests.support.processes import web_process


def _prefix() -> str:
    return f"test:{uuid.uuid4().hex}:"


@pytest.mark.slow
def test_two_web_processes_share_one_public_limit(
    settings: Settings, engine: sa.Engine, redis_url: str, tmp_path: Path
) -> None:
    env = {
        "REGISTRY_PUBLIC_RATE_LIMIT": "4/minute",
        "REGISTRY_REDIS_URL": redis_url,
        "REGISTRY_REDIS_PREFIX": _prefix(),
    }
    with (
        web_process(settings, env, tmp_path / "a.log") as first,
        web_process(settings, env, tmp_path / "b.log") as second,
    ):
        params = {"q": "张伟"}
        answers = [httpx.get(f"{url}/v1/public/defaulters", params=params) for url in (first, second) * 3]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429, 429]
    refused = answers[4]
    assert refused.json()["code"] == "rate_limited" and int(refused.headers["retry-after"]) >= 1
    assert answers[3].headers["ratelimit-remaining"] == "0"


def test_the_bank_rate_is_one_budget_across_processes(redis_url: str) -> None:
    """Two processes' stores, one bank: 3 a second in all, not 3 each."""
    prefix = _prefix()
    first, second = SharedLimits(redis_url, prefix=prefix), SharedLimits(redis_url, prefix=prefix)
    try:
        waits = [store.gcra_wait("bank:c1", 3) for store in (first, second, first, second)]
        assert waits[:3] == [0.0, 0.0, 0.0]
        assert waits[3] is not None and 0 < waits[3] <= 1 / 3 + 0.05
        assert first.gcra_wait("bank:c2", 3) == 0.0, "another bank has its own budget"
    finally:
        asyncio.run(first.close())
        asyncio.run(second.close())


def test_an_unreachable_store_is_logged_once_and_each_process_counts_alone(
    settings: Settings, engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis down: public search keeps answering, limited per process (3 here, not more),
    bank checks keep their in-process limit, and the log says so once, not per request."""
    down = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(
        settings.override(server={"public_rate_limit": "3/minute"}, shared_store={"url": down}),
        run_scheduler=False,
    )
    with caplog.at_level(logging.WARNING, logger="registry.limits"), serve_app(app) as url:
        codes = [httpx.get(f"{url}/v1/public/defaulters", params={"q": "张伟"}).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    lines = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(lines) == 1
    store = SharedLimits(down)
    assert store.gcra_wait("bank:c1", 3) is None and asyncio.run(store.window("k", 3, 60)) is None
    asyncio.run(store.close())


def test_a_store_that_answers_with_errors_is_an_outage_not_a_500(
    settings: Settings, engine: sa.Engine, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis that answers every command with an error (here a database index out of range:
    ERR; as well NOAUTH, READONLY, OOM) counts nothing, as one that does not answer: public
    search and bank checks go on, limited per process; exact-number lookups are refused; one
    log line. Each such request answered 500 (unhandled ResponseError)."""
    failing = urlsplit(redis_url)._replace(path="/99").geturl()
    with pytest.raises(redis.exceptions.ResponseError):
        redis.Redis.from_url(failing, socket_timeout=1).ping()  # the server has no database 99
    with engine.begin() as conn:
        _, api_key = create_client(conn, "Bank of Test", "bank", None, actor="test", now=utcnow())
    check = {
        "subjects": [{"id_number": "110105194912310038"}],
        "purpose": "loan_application",
        "reference": "r",
    }
    app = create_app(
        settings.override(
            server={"public_rate_limit": "3/minute", "public_number_lookup_limit": "20/hour"},
            shared_store={"url": failing, "prefix": _prefix()},
        ),
        run_scheduler=False,
    )
    with (
        caplog.at_level(logging.WARNING, logger="registry.limits"),
        serve_app(app) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        searches = [http.get("/v1/public/defaulters", params={"q": "张伟"}).status_code for _ in range(2)]
        checks = [
            http.post("/v1/checks", json=check, headers={"Authorization": f"Bearer {api_key}"}).status_code
            for _ in range(2)
        ]
        number = http.get("/v1/public/defaulters", params={"id_number": "11010519491231002X"})
        # The public budget is still counted, in the process: the third search is its last.
        more = [http.get("/v1/public/defaulters", params={"q": "李娜"}).status_code for _ in range(2)]
    assert searches == [200, 200]
    assert checks == [200, 200]
    assert number.status_code == 429 and number.json()["code"] == "rate_limited"
    assert "cannot be counted" in number.json()["detail"]
    assert more == [429, 429]
    lines = [r.getMessage() for r in caplog.records if r.name == "registry.limits"]
    assert lines == [
        "shared limit store unreachable or failing (ResponseError): limits are counted per process "
        "until it answers"
    ]
    store = SharedLimits(failing)
    assert store.gcra_wait("bank:c1", 3) is None and asyncio.run(store.window("k", 3, 60)) is None
    asyncio.run(store.close())


def test_a_window_counts_across_stores_and_resets(redis_url: str) -> None:
    prefix = _prefix()

    async def run() -> list[tuple[int, int] | None]:
        first, second = SharedLimits(redis_url, prefix=prefix), SharedLimits(redis_url, prefix=prefix)
        try:
            return [await store.window("public:a", 2, 1) for store in (first, second, first)]
        finally:
            await first.close()
            await second.close()

    counted = asyncio.run(run())
    assert [c[0] for c in counted if c] == [1, 2, 3]
    assert all(c is not None and c[1] == 1 for c in counted)
    time.sleep(1.1)
    assert [c[0] for c in asyncio.run(run()) if c] == [1, 2, 3], "a new window after the reset"
    assert os.environ.get("REGISTRY_REDIS_URL") is None, "the session server shares nothing"


def test_readiness_shows_the_shared_store_without_going_unready_for_it(
    settings: Settings, engine: sa.Engine, redis_url: str
) -> None:
    """A wrong REGISTRY_REDIS_URL (or a store gone) shows in /readyz, which stays 200: the
    limits fall back to each process, and taking every web process out would be an outage."""
    answers = {}
    for name, url in (("up", redis_url), ("down", f"redis://127.0.0.1:{free_port()}/0")):
        app = create_app(settings.override(shared_store={"url": url}), run_scheduler=False)
        with serve_app(app) as served:
            answers[name] = httpx.get(f"{served}/readyz")
    assert answers["up"].status_code == 200 and answers["up"].json()["checks"]["shared_limits"] == "ok"
    down = answers["down"]
    assert down.status_code == 200 and down.json()["status"] == "ready"
    assert down.json()["checks"]["shared_limits"].startswith("unavailable (")
    without = create_app(settings, run_scheduler=False)
    with serve_app(without) as served:
        assert "shared_limits" not in httpx.get(f"{served}/readyz").json()["checks"]

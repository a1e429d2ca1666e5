"""Operators' logs: a request id on every answer and every line of its request; one JSON
object a line when REGISTRY_LOG_FORMAT=json; never a personal identifier."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from registry.ids import is_id
from registry.logs import configure_logging
from registry.settings import Settings
from tests.support.harness import CourtHandle, Registry
from tests.support.listings import person_named, publish_many
from tests.support.processes import registry_process, web_process


def test_a_request_id_is_echoed_or_made(registry: Registry) -> None:
    with registry.http() as http:
        given = http.get("/healthz", headers={"X-Request-ID": "edge-7f3a.1"})
        assert given.headers["x-request-id"] == "edge-7f3a.1"
        made = http.get("/healthz")
        assert is_id(made.headers["x-request-id"])
        # Not a token: replaced, so a forged id cannot break or spoof a log line.
        # Nor one that names a number: it would be on every log line of the request.
        for bad in (b"a b", b"x" * 200, "id\u00e9".encode(), b"11010519491231002X"):
            answer = http.get("/healthz", headers={"X-Request-ID": bad})
            assert is_id(answer.headers["x-request-id"]), bad


@pytest.mark.slow
def test_json_logs_are_one_object_a_line_with_request_ids_and_no_identifier(
    registry: Registry, court: CourtHandle, settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    body = person_named(registry, court, "孙丽")
    publish_many(registry, court, [body])
    number = body["debtor"]["id_number"]
    env = {"REGISTRY_LOG_FORMAT": "json", "REGISTRY_LOG_LEVEL": "INFO"}
    log = tmp_path / "web.log"
    with web_process(settings, env, log) as url:
        searched = httpx.get(
            f"{url}/v1/public/defaulters", params={"id_number": number}, headers={"X-Request-ID": "req-42"}
        )
        assert searched.status_code == 200 and searched.headers["x-request-id"] == "req-42"
        httpx.get(f"{url}/v1/public/defaulters", params={"q": number[:10]})
    stderr = log.read_text()
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]  # each a JSON object
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    access = [
        line for line in lines if line["logger"] == "registry.access" and line.get("request_id") == "req-42"
    ]
    assert len(access) == 1 and access[0]["message"].startswith("GET /v1/public/defaulters 200")
    assert any(line["logger"].startswith("uvicorn") for line in lines), "the server's own lines too"
    assert any(line["message"].startswith("registry listening on http://") for line in lines)
    assert number not in stderr and number[:10] not in stderr


def test_a_worker_with_json_logs_writes_nothing_but_json(
    settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    env = {"REGISTRY_LOG_FORMAT": "json", "REGISTRY_LOG_LEVEL": "INFO"}
    with registry_process(settings, ["worker", "--jobs", "expire_fixed_terms"], env, log):
        deadline = time.monotonic() + 60
        while "running background jobs" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    # Its start line too: a plain line in the stream breaks the parser of every line after.
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    started = "worker running background jobs: expire_fixed_terms"
    assert any(line["message"].startswith(started) for line in lines)


def test_access_lines_escape_control_characters_and_cover_unrouted_requests(
    settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    log = tmp_path / "web.log"
    forged = "2026-01-01 00:00:00,000 INFO registry.access: GET /v1/admin 200 1.0ms"
    with (
        web_process(settings, {"REGISTRY_LOG_LEVEL": "INFO"}, log) as url,
        httpx.Client(base_url=url) as http,
    ):
        assert http.get("/nope%0a" + forged.replace(" ", "%20")).status_code == 404
        assert http.get("/v1/public/defaulters/x%1b%5b31m%e2%80%aey").status_code in {400, 404}
        assert http.get("/unrouted", params={"id_number": "11010519491231002X"}).status_code == 404
        # A number a client put in a path is masked on the line (any script's digits).
        assert http.get("/v1/public/defaulters/11010519491231002X").status_code in {400, 404}
        assert http.get("/defaulters/１１０１０５１９４９１２３１００２X").status_code in {400, 404}
        assert http.get("/defaulters/١١٠١٠٥١٩٤٩١٢٣١٠٠٢X").status_code in {400, 404}
        assert http.post("/healthz", headers={"X-Request-ID": "req-405"}).status_code == 405
    lines = log.read_text().splitlines()
    access = [line for line in lines if " registry.access: " in line]
    # One line a request; what a path carried is escaped on it, never a line of its own.
    assert not any(line.startswith("2026-01-01") for line in lines)
    assert any("GET /nope\\n2026-01-01" in line and " 404 " in line for line in access)
    assert any("\\x1b[31m\\u202ey" in line for line in access)
    assert all("\x1b" not in line and "\u202e" not in line for line in lines)
    # Requests that match no route are logged, by path only: never the query.
    assert any(" GET /unrouted 404 " in line for line in access)
    assert any(" POST /healthz 405 " in line for line in access)
    assert any(" GET /v1/public/defaulters/*****************X " in line for line in access)
    # Full-width and Arabic-Indic digits alike (the line shows them as they came, masked).
    assert sum(" GET /defaulters/*****************X " in line for line in access) == 2
    assert "11010519491231002X" not in log.read_text()
    assert "１１０１０５１９４９１２３１００２" not in log.read_text()
    assert "١١٠١٠٥١٩٤٩١٢٣١٠٠٢" not in log.read_text()


def test_no_log_level_shows_the_database_drivers_statements() -> None:
    """At DEBUG the SQLite driver wrote each insert with its parameters (a debtor's name,
    blind index and ciphertext); SQLAlchemy's engine does the same at INFO."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        configure_logging("DEBUG", "text")
        assert not logging.getLogger("aiosqlite").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("sqlalchemy.engine.Engine").isEnabledFor(logging.INFO)
        assert logging.getLogger("sqlalchemy.engine.Engine").isEnabledFor(logging.WARNING)
        assert logging.getLogger("registry").isEnabledFor(logging.DEBUG)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[1]:
            root.addHandler(handler)
        root.setLevel(saved[0])

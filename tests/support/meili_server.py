"""Meilisearch over real HTTP on loopback, for the adapter's tests (no server can be installed
on the build machines).

- `Recorded`: answers a script of request/response pairs (taken from Meilisearch's API
  documentation, each test cites its page) in order, and records any request that differs
  from the script: method, path and JSON body.
- `StandIn`: keeps indexes, settings and documents in memory and answers the calls the
  adapter makes for writes (indexes, settings, documents, tasks, swap), so that the shared
  follower, reconciler and rebuild run through the official client and HTTP.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

Body = Any
# What a request body must be: the exact JSON, or a check of it.
Expected = Body | Callable[[Body], bool]


@dataclass
class Pair:
    method: str
    path: str
    body: Expected
    status: int
    answer: Body
    source: str  # the documentation page the pair is taken from


def task(uid: int, kind: str, index: str) -> dict[str, Any]:
    """A summarized task, as every asynchronous route answers (202): the shape of the example
    at https://www.meilisearch.com/docs/capabilities/indexing/tasks_and_batches/monitor_tasks"""
    return {
        "taskUid": uid,
        "indexUid": index,
        "status": "enqueued",
        "type": kind,
        "enqueuedAt": "2021-08-11T09:25:53.000000Z",
    }


def done(uid: int, kind: str, index: str) -> dict[str, Any]:
    """A finished task: the example of
    https://www.meilisearch.com/docs/reference/api/async-task-management/get-task"""
    return {
        "uid": uid,
        "indexUid": index,
        "status": "succeeded",
        "type": kind,
        "canceledBy": None,
        "details": None,
        "error": None,
        "duration": "PT1S",
        "enqueuedAt": "2021-01-01T09:39:00.000000Z",
        "startedAt": "2021-01-01T09:39:01.000000Z",
        "finishedAt": "2021-01-01T09:39:02.000000Z",
    }


def error(code: str, message: str) -> dict[str, str]:
    """An error object: https://www.meilisearch.com/docs/reference/errors/overview"""
    return {
        "message": message,
        "code": code,
        "type": "invalid_request",
        "link": f"https://docs.meilisearch.com/errors#{code}",
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *_: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw.strip() else None
        status, answer = self.server.respond(self.command, self.path, body, dict(self.headers))
        # Bytes are a page of another kind of server (HTML); anything else is JSON.
        page = isinstance(answer, bytes)
        data = answer if page else b"" if answer is None else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html" if page else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve


class _Server(ThreadingHTTPServer):
    respond: Callable[[str, str, Body, dict[str, str]], tuple[int, Body]]


@contextmanager
def serving(
    respond: Callable[[str, str, Body, dict[str, str]], tuple[int, Body]], port: int = 0
) -> Iterator[str]:
    server = _Server(("127.0.0.1", port), _Handler)
    server.respond = respond
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Recorded:
    pairs: list[Pair] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    keys: list[str | None] = field(default_factory=list)  # the bearer key of each request

    def expect(self, *pairs: Pair) -> None:
        self.pairs.extend(pairs)

    def respond(self, method: str, path: str, body: Body, headers: dict[str, str]) -> tuple[int, Body]:
        self.keys.append(headers.get("Authorization"))
        # The client ends a path with "?" when it has no parameters: the same request.
        target = urlsplit(path)
        path = target.path + (f"?{target.query}" if target.query else "")
        if not self.pairs:
            self.mismatches.append(f"unexpected {method} {path} {body!r}")
            return 500, error("internal", "not in the script")
        pair = self.pairs.pop(0)
        fits = pair.body(body) if callable(pair.body) else pair.body == body
        if (method, path) != (pair.method, pair.path) or not fits:
            wanted = f"{pair.method} {pair.path} {pair.body!r}"
            self.mismatches.append(f"expected {wanted}, got {method} {path} {body!r}")
        return pair.status, pair.answer

    def check(self) -> None:
        assert self.mismatches == [], self.mismatches
        assert self.pairs == [], [f"{p.method} {p.path}" for p in self.pairs]


@contextmanager
def recorded() -> Iterator[tuple[str, Recorded]]:
    script = Recorded()
    with serving(script.respond) as url:
        yield url, script


@dataclass
class StandIn:
    """Indexes of documents in memory; every task succeeds at once. `version` is reported."""

    version: str = "1.12.0"
    indexes: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    tasks: int = 0
    # Called before a document write to the named index is applied (to hold it back).
    before_write: Callable[[str], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _task(self, kind: str, index: str) -> tuple[int, Body]:
        self.tasks += 1
        return 202, task(self.tasks, kind, index)

    def respond(self, method: str, path: str, body: Body, _headers: dict[str, str]) -> tuple[int, Body]:
        route = urlsplit(path).path
        self.requests.append((method, route))
        if route == "/version":
            return 200, {"commitSha": "b46889b5", "commitDate": "2021-07-08", "pkgVersion": self.version}
        if found := re.fullmatch(r"/tasks/(\d+)", route):
            return 200, done(int(found[1]), "documentAdditionOrUpdate", "")
        if route == "/indexes" and method == "POST":
            with self.lock:
                self.indexes.setdefault(body["uid"], {})
                self.settings.setdefault(body["uid"], {})
            return self._task("indexCreation", body["uid"])
        if route == "/swap-indexes":
            with self.lock:
                first, second = body[0]["indexes"]
                self.indexes[first], self.indexes[second] = self.indexes[second], self.indexes[first]
                self.settings[first], self.settings[second] = self.settings[second], self.settings[first]
            return self._task("indexSwap", "")
        found = re.fullmatch(r"/indexes/([^/]+)(/.*)?", route)
        if found is None:
            return 404, error("not_found", route)
        name, rest = found[1], found[2] or ""
        if name not in self.indexes:
            if method == "POST" and rest == "/documents":
                # What Meilisearch does, and what the adapter must never let happen.
                self.indexes[name], self.settings[name] = {}, {}
            else:
                return 404, error("index_not_found", f"Index `{name}` not found.")
        docs = self.indexes[name]
        if rest == "" and method == "GET":
            return 200, {"uid": name, "primaryKey": "id"}
        if rest == "" and method == "DELETE":
            with self.lock:
                del self.indexes[name]
                del self.settings[name]
            return self._task("indexDeletion", name)
        if rest == "/settings":
            if method == "GET":
                return 200, self.settings[name]
            self.settings[name] = {**self.settings[name], **body}
            return self._task("settingsUpdate", name)
        if rest == "/documents" and method == "POST":
            if self.before_write is not None:
                self.before_write(name)
            with self.lock:
                docs.update({doc["id"]: doc for doc in body})
            return self._task("documentAdditionOrUpdate", name)
        if rest == "/documents/delete":
            ids = re.findall(r'"([^"]+)"', body["filter"])
            with self.lock:
                for listing_id in ids:
                    docs.pop(listing_id, None)
            return self._task("documentDeletion", name)
        if rest == "/documents/fetch":
            listed = list(docs.values())[body["offset"] : body["offset"] + body["limit"]]
            fields = body.get("fields")
            results = [{k: v for k, v in doc.items() if fields is None or k in fields} for doc in listed]
            page = {"offset": body["offset"], "limit": body["limit"], "total": len(docs)}
            return 200, {"results": results, **page}
        return 404, error("not_found", route)


@contextmanager
def stand_in(port: int = 0, **options: Any) -> Iterator[tuple[str, StandIn]]:
    """A `StandIn` on `port` (0: a free one); yields its URL and the stand-in."""
    server = StandIn(**options)
    with serving(server.respond, port) as url:
        yield url, server

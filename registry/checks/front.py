"""`POST /v1/checks` as a raw ASGI route, ahead of Litestar's routing (issue 20).

Measured on this machine: Litestar's per-request machinery (routing, the guard's
connection, the signature model, kwargs, the response object) cost a single check ~23% of
its server's event-loop time, two thirds of what the check's own reads, log and signature
cost (docs/benchmarks.md, "A raw route for the check"). This front answers the common
request, a JSON body of announced length, with the route's own code
(`registry.checks.handling`: the bank key and rate before the body is read, the body
decoded by `registry.http.body.decode_body`, the same problems) and hands everything else
to Litestar's route unchanged: another content type, a chunked or oversized body, a
second `Authorization`, a path under a root path. The service's ASGI middlewares (request
id, access log, `Cache-Control: no-store`) wrap it as they wrap Litestar. The answer's
bytes and headers are those Litestar sends (`tests/registry/checks/test_check_front.py`
compares both ways in). `REGISTRY_CHECK_FAST_PATH=false` turns it off.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from registry.checks.controllers import CHECK_BODY_BYTES
from registry.checks.handling import admit_bank, check_answer
from registry.checks.schemas import CheckRequest
from registry.http.body import decode_body
from registry.http.errors import unexpected_problem
from registry.problems import PROBLEM_MEDIA_TYPE, Problem, problem_headers
from registry.settings import Settings

PATH = "/v1/checks"
_JSON = b"application/json"
_PROBLEM = PROBLEM_MEDIA_TYPE.encode()
_LENGTH = re.compile(rb"[0-9]{1,10}")


def _authorization(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The Authorization header ("" if none) of a request this front takes, or None:
    Litestar's route takes it."""
    authorization: bytes | None = None
    length: int | None = None
    json_body = False
    for name, value in headers:
        if name == b"authorization":
            if authorization is not None:
                return None
            authorization = value
        elif name == b"content-length":
            if length is not None or not _LENGTH.fullmatch(value):
                return None
            length = int(value)
        elif name == b"content-type":
            json_body = value == _JSON
        elif name == b"transfer-encoding":
            return None
    if not json_body or length is None or length > CHECK_BODY_BYTES:
        return None
    # Headers are latin-1, as Litestar reads them.
    return "" if authorization is None else authorization.decode("latin-1")


async def _body(receive: Receive) -> bytes | None:
    """The whole body (the server holds it to its Content-Length), or None if the client left."""
    chunks: list[bytes] = []
    while True:
        message: Any = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _answer(
    send: Send, status: int, body: bytes, media_type: bytes, extra: dict[str, str] | None = None
) -> None:
    # Litestar's order: the response's own headers, then its type and length.
    headers = [(name.lower().encode(), value.encode()) for name, value in (extra or {}).items()]
    headers.append((b"content-type", media_type))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def check_front(app: ASGIApp, state: State, settings: Settings) -> ASGIApp:
    """`app` (Litestar) behind the front for `POST /v1/checks`; `app` itself when it is off."""
    if not settings.checks.fast_path:
        return app
    encode = msgspec.json.Encoder().encode

    async def front(scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != ScopeType.HTTP
            or scope["path"] != PATH
            or scope["method"] != "POST"
            or scope.get("root_path")
            or (authorization := _authorization(scope["headers"])) is None
        ):
            await app(scope, receive, send)
            return
        services = state.services
        try:
            client_id = await admit_bank(services, authorization)
            body = await _body(receive)
            if body is None:
                return
            answer = await check_answer(services, client_id, decode_body(body, CheckRequest))
        except Problem as problem:
            refusal = problem
        except Exception as exc:  # as Litestar's handler: a logged 500 (503 for the database)
            refusal = unexpected_problem(exc)
        else:
            await _answer(send, 200, encode(answer), _JSON)
            return
        await _answer(send, refusal.status, encode(refusal.to_dict()), _PROBLEM, problem_headers(refusal))

    return front

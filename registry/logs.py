"""Logging for every process: plain text (the default) or one JSON object a line
(REGISTRY_LOG_FORMAT=json) for log shippers, each line with the request id of the request
it belongs to.

A request's id is the `X-Request-ID` it came with (a proxy's, if it is a short token) or
one made here; it is echoed in the answer and carried by every line logged while the request
is served. Log lines never carry a personal identifier: messages name listings by id, the
access log leaves query strings out, and nothing here adds a request's content.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from registry.ids import new_id

REQUEST_ID_HEADER = "X-Request-ID"
# A proxy's id is kept if it is a plain token; anything else (too long, spaces, non-ASCII,
# control characters that would forge log lines) is replaced by an id of our own.
_TOKEN = re.compile(r"[A-Za-z0-9._:-]{1,128}", re.ASCII)
# Every person identifier the registry takes holds a run of at least 8 digits (an ID number's
# 17, a passport's or a permit's 8-12).
_MASKED_RUN = 8
_ASCII_DIGIT_RUN = re.compile(r"[0-9]{8,}", re.ASCII)
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class OutboundUrlFilter(logging.Filter):
    """httpx logs each request it sends with its URL (`HTTP Request: POST https://…`): an
    agency's or a bank's push endpoint can carry a token in its query, and a URL its
    credentials. Those lines keep the scheme, host, port and path only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(arg, httpx.URL) for arg in record.args):
            record.args = tuple(_bare(arg) if isinstance(arg, httpx.URL) else arg for arg in record.args)
        return True


def _bare(url: httpx.URL) -> str:
    return str(url.copy_with(query=None, fragment=None, userinfo=b""))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, request_id,
    and the exception's type and traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = getattr(record, "request_id", None)
        if current:
            line["request_id"] = current
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = record.exc_info[0].__name__
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


# What must not reach a log line as itself: C0 and C1 controls and DEL (a line feed would
# start a forged line), the Unicode line and paragraph separators, bidi overrides and
# isolates (which reorder what an operator reads), and the backslash that escapes them.
_UNPRINTABLE = re.compile("[\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# A request line longer than this is cut: a log line is not a place for a 64 KiB path.
MAX_LOGGED = 1024


def without_numbers(text: str) -> str:
    """`text` with each run of 8 or more digits masked (`*`), for what a client chose and the
    log keeps: a path such as `/v1/public/defaulters/<an ID number>`, a request id. Every
    script's decimal digits (Unicode category Nd), full-width ones too: this masks, it does not
    validate, so the wider the better."""
    if text.isascii():
        return _ASCII_DIGIT_RUN.sub(lambda found: "*" * len(found.group()), text)
    chars = list(text)
    start = 0
    for end, char in enumerate([*text, ""]):
        if char and unicodedata.category(char) == "Nd":
            continue
        if end - start >= _MASKED_RUN:
            chars[start:end] = "*" * (end - start)
        start = end + 1
    return "".join(chars)


def printable(text: str) -> str:
    """`text` safe on one log line: every character above escaped (`\\n`, `\\x1b`, `\\u202e`,
    `\\\\`), and cut after MAX_LOGGED characters (marked `...`)."""
    cut = text[:MAX_LOGGED]
    safe = _UNPRINTABLE.sub(_escape, cut)
    return safe + "..." if len(text) > MAX_LOGGED else safe


def _escape(found: re.Match[str]) -> str:
    char = found.group()
    if char == "\\":
        return "\\\\"
    return char.encode("unicode_escape").decode("ascii")


def configure_logging(level: str, fmt: Literal["text", "json"]) -> None:
    """The root logger's one handler on stderr, in `fmt`; replaces any earlier set-up."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.addFilter(OutboundUrlFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # The SQLite driver (DEBUG) and SQLAlchemy's engine (INFO, once its logger's level allows)
    # log statements with their parameters: names, blind indexes, ciphertexts. No level of
    # ours shows them: their warnings and errors only.
    for driver in ("aiosqlite", "sqlalchemy.engine"):
        logging.getLogger(driver).setLevel(max(logging.WARNING, root.level))


def logging_json() -> bool:
    """Whether the process logs JSON lines (`configure_logging`): then stderr is for a log
    shipper, and nothing else may write a line of another form there."""
    return any(isinstance(handler.formatter, JsonFormatter) for handler in logging.getLogger().handlers)


def request_ids(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: the request's id, for its log lines and in its answer's header."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        given = next(
            (value.decode("latin-1") for name, value in scope["headers"] if name == b"x-request-id"), ""
        )
        # A client's id is kept only if it is a token that names no number (it goes on every
        # log line of the request).
        current = given if _TOKEN.fullmatch(given) and without_numbers(given) == given else new_id()
        token = request_id.set(current)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders(message)[REQUEST_ID_HEADER] = current
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)

    return middleware

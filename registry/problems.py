"""RFC 9457 problem details with a stable, machine-readable `code`."""

from __future__ import annotations

import logging
import sqlite3
import traceback
from typing import Any

import sqlalchemy.exc
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

PROBLEM_MEDIA_TYPE = "application/problem+json"
logger = logging.getLogger("registry.problems")

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class Problem(Exception):
    """A refusal with its reason. Raised by services, rendered by the exception handler."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        pointer: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.pointer = pointer
        self.extra = extra or {}

    def __reduce__(self) -> tuple[Any, ...]:
        # Problems cross process boundaries (the ingest pool); rebuild them whole.
        return (
            self.__class__,
            (self.status, self.code, self.detail),
            {"pointer": self.pointer, "extra": self.extra},
        )

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"/problems/{self.code}",
            "title": _TITLES.get(self.status, "Error"),
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        if self.pointer:
            body["pointer"] = self.pointer
        body.update(self.extra)
        return body


def problem_response(problem: Problem) -> Response[dict[str, Any]]:
    headers = {"WWW-Authenticate": "Bearer"} if problem.status == 401 else None
    return Response(
        problem.to_dict(), status_code=problem.status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def handle_problem(_request: Request[Any, Any, Any], exc: Problem) -> Response[dict[str, Any]]:
    return problem_response(exc)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def handle_http_exception(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    if isinstance(exc, ValidationException):
        # Litestar's own parameter validation (path and query types).
        return problem_response(Problem(400, "invalid_parameter", str(exc.detail)))
    if isinstance(exc, NotFoundException):
        return problem_response(Problem(404, "not_found", "no such resource"))
    return problem_response(Problem(status, _HTTP_CODES.get(status, "http_error"), str(exc.detail)))


# The database is down, cut off, or busy past its lock timeout: nothing the request did
# wrong, and nothing it half-wrote (its transaction rolled back). Retry soon.
_UNAVAILABLE = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlite3.OperationalError,
    ConnectionError,  # asyncpg lets a refused connection through unwrapped
)
RETRY_AFTER_SECONDS = 2


def database_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, _UNAVAILABLE) or (
        isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated
    )


def unavailable_response() -> Response[dict[str, Any]]:
    response = problem_response(
        Problem(503, "database_unavailable", "the registry's database is unavailable; retry shortly")
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def handle_unexpected(_request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    if database_unavailable(exc):
        logger.warning("database unavailable: %s", type(exc).__name__)
        return unavailable_response()
    # Type and frames only: the message of an arbitrary exception may quote personal data.
    logger.error("unhandled %s\n%s", type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)))
    return problem_response(Problem(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "unexpected error"))

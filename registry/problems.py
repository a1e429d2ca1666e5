"""RFC 9457 problem details with a stable, machine-readable `code`."""

from __future__ import annotations

import sqlite3
from typing import Any

import sqlalchemy.exc
from litestar import Response

PROBLEM_MEDIA_TYPE = "application/problem+json"

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


_MEMBERS = frozenset({"type", "title", "status", "code", "detail", "pointer"})


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

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> Problem:
        """The Problem whose `to_dict` this is (an ingest result carries its refusal so)."""
        extra = {k: v for k, v in body.items() if k not in _MEMBERS}
        return cls(body["status"], body["code"], body["detail"], pointer=body.get("pointer"), extra=extra)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"/problems/{self.code}",
            "title": TITLES.get(self.status, "Error"),
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        if self.pointer:
            body["pointer"] = self.pointer
        body.update(self.extra)
        return body


def problem_headers(problem: Problem) -> dict[str, str]:
    """What a problem's answer carries beside its content type."""
    headers: dict[str, str] = {}
    if problem.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if "retry_after" in problem.extra:
        headers["Retry-After"] = str(problem.extra["retry_after"])
    return headers


def problem_response(problem: Problem) -> Response[dict[str, Any]]:
    return Response(
        problem.to_dict(),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=problem_headers(problem),
    )


# The database is down, cut off, or busy past its lock timeout: nothing the request did
# wrong, and nothing it half-wrote (its transaction rolled back). Retry soon.
_UNAVAILABLE = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlite3.OperationalError,
    ConnectionError,  # asyncpg lets a refused connection through unwrapped
)
RETRY_AFTER_SECONDS = 2
DATABASE_UNAVAILABLE = Problem(
    503,
    "database_unavailable",
    "the registry's database is unavailable; retry shortly",
    extra={"retry_after": RETRY_AFTER_SECONDS},
)


def database_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, _UNAVAILABLE) or (
        isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated
    )

"""How every exception a request can raise becomes an RFC 9457 problem (`registry.problems`),
or, for a browser asking for a page, the same status as a page in Chinese (`error_page`)."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from registry.http.body import body_problem
from registry.http.pages import error_page, prefers_html
from registry.http.ratelimit import rate_limit_headers, rate_limited_problem
from registry.problems import (
    DATABASE_UNAVAILABLE,
    Problem,
    database_unavailable,
    problem_headers,
    problem_response,
)

logger = logging.getLogger("registry.problems")

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


# Where the JSON API lives: its clients get problem+json whatever their Accept says.
API_PREFIX = "/v1/"


def _answer(
    request: Request[Any, Any, Any], problem: Problem, headers: dict[str, str] | None = None
) -> Response[Any]:
    """The problem; a page instead to a browser outside the API (a person who followed a broken
    link or sent a form too big must not be shown English JSON)."""
    if prefers_html(request) and not request.url.path.startswith(API_PREFIX):
        return error_page(problem.status, {**problem_headers(problem), **(headers or {})})
    response = problem_response(problem)
    response.headers.update(headers or {})
    return response


def handle_problem(request: Request[Any, Any, Any], exc: Problem) -> Response[Any]:
    return _answer(request, exc)


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if isinstance(exc, ValidationException):
        # Litestar's own validation: the body (the one body policy, registry.http.body), or
        # the path and query parameters.
        body_errors = [e for e in exc.extra or [] if isinstance(e, dict) and e.get("source") == "body"]
        if body_errors:
            return _answer(request, body_problem(body_errors))
        return _answer(request, _parameter_problem(exc.extra))
    if isinstance(exc, NotFoundException):
        return _answer(request, Problem(404, "not_found", "no such resource"))
    if isinstance(exc, MethodNotAllowedException):
        # RFC 9110 §15.5.6: a 405 names the methods the resource has (HEAD wherever GET is:
        # `service.app.head_as_get`).
        methods = [m.strip() for m in (exc.headers or {}).get("allow", "").split(",") if m.strip()]
        if "GET" in methods and "HEAD" not in methods:
            methods.append("HEAD")
        return _answer(
            request,
            Problem(405, "method_not_allowed", "this resource does not take that method"),
            {"Allow": ", ".join(sorted(methods))},
        )
    return _answer(request, Problem(status, _HTTP_CODES.get(status, "http_error"), str(exc.detail)))


def rate_limited_page(request: Request[Any, Any, Any], exc: TooManyRequestsException) -> Response[Any]:
    """Past the public rate limit (`rate_limited_problem`), a browser reads why on a page."""
    if not prefers_html(request):
        return rate_limited_problem(request, exc)
    return error_page(429, rate_limit_headers(exc))


def _what_is_wrong(message: str) -> str:
    # msgspec's words, less a pattern it would quote whole (hundreds of escaped characters).
    if not message:
        return "not valid"
    if "matching regex" in message:
        return "holds characters it must not (control or format characters), or is not in its form"
    return message


def _parameter_problem(extra: Any) -> Problem:
    """400 `invalid_parameter` naming the parameters and what each must be. Not Litestar's
    own detail, which repeats the whole URL: a query string can carry an ID number."""
    errors = [e for e in extra or [] if isinstance(e, dict) and e.get("key")]
    if not errors:
        return Problem(400, "invalid_parameter", "a path or query parameter is not valid")
    detail = "; ".join(f"{e['key']}: {_what_is_wrong(str(e.get('message', '')))}" for e in errors)
    source = str(getattr(errors[0].get("source"), "value", errors[0].get("source")))
    pointer = f"/{source}/{errors[0]['key']}" if source in ("query", "path") else None
    return Problem(400, "invalid_parameter", detail, pointer=pointer)


def unexpected_problem(exc: Exception) -> Problem:
    """The answer to an exception nothing else handled, logged: 503 when the database is
    unavailable, else 500."""
    if database_unavailable(exc):
        logger.warning("database unavailable: %s", type(exc).__name__)
        return DATABASE_UNAVAILABLE
    # Type and frames only: the message of an arbitrary exception may quote personal data.
    logger.error("unhandled %s\n%s", type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)))
    return Problem(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "unexpected error")


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return _answer(request, unexpected_problem(exc))

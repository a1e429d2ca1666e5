"""What the OpenAPI document says beyond what Litestar infers from a handler's signature:
the problems an operation can answer, who may call it, and responses of several media types.

Each handler declares its own refusals: `responses=problems(GUARDED, BODY, {409: "conflict"})`.
The groups below are the ones the HTTP layer itself answers; the test of the document
(tests/service/test_openapi.py) checks that every operation declares the ones it can meet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPIMediaType,
    Operation,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)
from litestar.params import QueryParameter

from registry.problems import PROBLEM_MEDIA_TYPE, TITLES

BEARER = "bearer"
# On every guarded route (the `roles` guard) and on the bank check, which authenticates itself.
BEARER_KEY: list[SecurityRequirement] = [{BEARER: []}]
COMPONENTS = Components(
    security_schemes={
        BEARER: SecurityScheme(
            type="http",
            scheme="bearer",
            description="An API key issued by `registry client create`: `Authorization: Bearer rk_…`.",
        )
    }
)

Codes = Mapping[int, str | Sequence[str]]
# What the roles guard answers.
GUARDED: Codes = {401: "unauthorized", 403: "forbidden_role"}
# What any request body can meet (registry.http.body; the size limit is the server's).
BODY: Codes = {400: "invalid_json", 413: "payload_too_large", 422: ("invalid_field", "duplicate_member")}
# What Litestar answers for a path or query parameter of the wrong type or range.
PARAMETER: Codes = {400: "invalid_parameter"}
# What a route with query parameters answers: PARAMETER, or one given more than once
# (registry.http.params: every integer one, and each cursor its handler reads as text).
QUERY: Codes = {400: ("invalid_parameter", "repeated_parameter")}
# Every route under the public rate limit (registry.http.ratelimit).
PUBLIC: Codes = {429: "rate_limited"}


class ProblemDetails(msgspec.Struct, kw_only=True):
    """An RFC 9457 problem. `code` is stable and machine-readable; `pointer` (RFC 6901) names
    the field at fault in the body, or `/query/<name>` for a query parameter."""

    type: str
    title: str
    status: int
    code: str
    detail: str
    pointer: str | None = None
    # Beside some codes: `batch_too_large` gives the `limit`; 429s give `retry_after` seconds;
    # `unknown_purpose` lists the `purposes`.
    limit: int | None = None
    retry_after: int | None = None
    purposes: list[str] | None = None


def problems(*groups: Codes) -> dict[int, ResponseSpec]:
    """The problem responses of an operation, one per status, listing the codes it may answer."""
    by_status: dict[int, list[str]] = {}
    for group in groups:
        for status, codes in group.items():
            listed = by_status.setdefault(status, [])
            listed.extend(
                code for code in ([codes] if isinstance(codes, str) else codes) if code not in listed
            )
    return {status: _problem_response(status, codes) for status, codes in sorted(by_status.items())}


def _problem_response(status: int, codes: list[str]) -> ResponseSpec:
    return ResponseSpec(
        data_container=ProblemDetails,
        media_type=PROBLEM_MEDIA_TYPE,
        generate_examples=False,
        description=f"{TITLES.get(status, 'Error')}: `code` is one of "
        + ", ".join(f"`{code}`" for code in codes),
        examples=[
            Example(
                summary=code,
                value={
                    "type": f"/problems/{code}",
                    "title": TITLES.get(status, "Error"),
                    "status": status,
                    "code": code,
                    "detail": "…",
                },
            )
            for code in codes
        ],
    )


def query(description: str, **schema: Any) -> Any:
    """An optional query parameter the handler parses itself, so that a bad value answers its
    own code (`invalid_page`, `unknown_kind`) rather than `invalid_parameter`: Litestar takes
    it as text and the document says what a good value is (`type`, `enum`, `minimum`...)."""
    return QueryParameter(description=description, schema_extra={"one_of": None, "type": "string", **schema})


def media_types(status: int, schemas: Mapping[str, Schema]) -> type[Operation]:
    """An operation class whose `status` response comes in each of these media types (a handler
    declares one; a download or an export chosen by a parameter has several)."""

    @dataclass
    class _Operation(Operation):
        def __post_init__(self) -> None:
            response: Any = (self.responses or {})[str(status)]
            response.content = {name: OpenAPIMediaType(schema=schema) for name, schema in schemas.items()}

    return _Operation


# Prometheus's text format as prometheus_client names it, less its charset: Litestar adds
# `charset=utf-8` to a text/* type, and naming it too sent it twice.
PROMETHEUS_TEXT = "text/plain; version=1.0.0"

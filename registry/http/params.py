"""Path and query parameters: the rules Litestar's own parsing does not apply.

An id with a control or format character (`registry.text`; PostgreSQL text cannot
even hold U+0000) could only fail inside a query or mislead a reader: it is refused with 400
`invalid_parameter` before one runs, on both databases alike, and the document says so.

An integer query parameter is ASCII digits, with a leading `-` at most: Litestar converts
query values leniently (msgspec's lax mode), so `after=1e3` or `limit=10.0` read as numbers.
And it is given once: Litestar takes the last of `after=1&after=300`, and which was meant is
a guess (a cursor skipping events). `strict_query_integers` refuses a repeated one with 400
`repeated_parameter` (`refuse_repeated`, as the search and the feeds refuse theirs) and one
that is not ASCII digits with 400 `invalid_parameter`, on every route, whatever its
parameters are called: it runs as the app's `before_request` hook, after the guards (an
unauthenticated request is still 401) and before Litestar parses the parameters. A cursor
taken as text (the snapshot's `after`, a feed's `before`) is refused by its handler.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any

from litestar import Request
from litestar.constants import RESERVED_KWARGS
from litestar.enums import ParamType
from litestar.handlers import HTTPRouteHandler
from litestar.params import ParameterKwarg, PathParameter

from registry.identity.identifiers import IdentifierError, ascii_digits, normalise_court_code
from registry.problems import Problem
from registry.text import IDENTIFIER_PATTERN

Id = Annotated[str, PathParameter(pattern=IDENTIFIER_PATTERN, description="An id, as the API gave it")]

# The largest number a path names (a listing's version, a correction's attachment): the
# columns they are looked up in are 32-bit integers.
MAX_PATH_NUMBER = 2**31 - 1
# Taken as text: Litestar's `int` path converter is Python's int(), which also reads other
# scripts' digits, a sign and white space (`/versions/١` served version 1).
PathNumber = Annotated[
    str,
    PathParameter(
        description="A number, in ASCII digits",
        schema_extra={"type": "integer", "minimum": 1, "maximum": MAX_PATH_NUMBER},
    ),
]


def path_number(text: str, not_found: Problem) -> int:
    """A `PathNumber` as an int: 400 `invalid_parameter` unless ASCII digits; `not_found`
    outside 1 to MAX_PATH_NUMBER (more than ten digits is past it, and int() refuses
    thousands of them)."""
    if not ascii_digits(text):
        raise Problem(400, "invalid_parameter", "this number is written in ASCII digits")
    if len(text) > 10 or not 1 <= int(text) <= MAX_PATH_NUMBER:
        raise not_found
    return int(text)


_INTEGER = re.compile(r"-?[0-9]+")


def refuse_repeated(request: Request[Any, Any, Any], names: Iterable[str]) -> None:
    """400 `repeated_parameter` at the first of `names` the query string gives more than once:
    which of two values was meant is a guess."""
    for name in names:
        if len(request.query_params.getall(name, [])) > 1:
            raise Problem(
                400, "repeated_parameter", f"{name} is given more than once", pointer=f"/query/{name}"
            )


def refuse_unknown(request: Request[Any, Any, Any], names: Iterable[str]) -> None:
    """400 `unknown_filter` at the first parameter that is none of `names`: a misspelt filter
    (provnce) answered without it reads as an answer that applied it."""
    allowed = tuple(names)
    unknown = sorted(set(request.query_params.keys()) - set(allowed))
    if unknown:
        # RFC 6901: a parameter's name may hold the pointer's own separators.
        pointer = "/query/" + unknown[0].replace("~", "~0").replace("/", "~1")
        raise Problem(
            400,
            "unknown_filter",
            f"unknown parameter {unknown[0]}; this takes {', '.join(allowed)}",
            pointer=pointer,
        )


def court_parameter(court: str | None) -> str | None:
    """A `court` query parameter read as the CLI reads a code (京０１０５ is 京0105); one that
    is no court code's shape is 400 `invalid_parameter`."""
    if court is None:
        return None
    try:
        return normalise_court_code(court)
    except IdentifierError as exc:
        raise Problem(400, "invalid_parameter", f"court: {exc.message}", pointer="/query/court") from None


def _integer_query_names(handler: HTTPRouteHandler, path_names: set[str]) -> list[str]:
    """The query parameters `handler` declares as `int` (or `int | None`), by their names in
    the URL."""
    dependencies = handler.resolve_dependencies()
    names = []
    for name, field in handler.parsed_fn_signature.parameters.items():
        kwarg = field.kwarg_definition
        if isinstance(kwarg, ParameterKwarg):
            if kwarg.param_type is not ParamType.QUERY:
                continue
            key = kwarg.name or name
        elif kwarg is not None or name in dependencies or name in RESERVED_KWARGS:
            continue
        else:
            key = name
        types = [inner.annotation for inner in field.inner_types] if field.is_optional else [field.annotation]
        if key not in path_names and int in types:
            names.append(key)
    return names


async def strict_query_integers(request: Request[Any, Any, Any]) -> None:
    """400 `repeated_parameter` for an integer query parameter given more than once, 400
    `invalid_parameter` for one that is not ASCII digits."""
    if not request.query_params:
        return
    names = _integer_query_names(request.route_handler, set(request.path_params))
    refuse_repeated(request, names)
    for key in names:
        for value in request.query_params.getall(key, []):
            if not _INTEGER.fullmatch(value):
                raise Problem(
                    400,
                    "invalid_parameter",
                    f"{key} is a whole number in ASCII digits",
                    pointer=f"/query/{key}",
                )

"""Request bodies: one decoder and one status policy for every endpoint.

- no body, or a body that is not JSON (malformed, not UTF-8, nested too deep): 400 `invalid_json`;
- JSON of the wrong shape (a wrong type, a broken constraint, a missing or unknown field), or
  text with a control or format character (`registry.text`): 422 `invalid_field`,
  with an RFC 6901 `pointer` to the field wherever msgspec names it;
- an object that names a member twice (`{"cursor": 1, "cursor": 2}`): 422
  `duplicate_member`, with the pointer to the name (`refuse_duplicate_members`), in every
  body, signed or not.

Handlers take their body as `data: SomeRequest`, where `SomeRequest` subclasses
`RequestStruct`: `BodyPlugin` has Litestar decode it with `decode_body`, straight from the
bytes in one pass, and document it from the struct. The signed court endpoints need the
exact bytes (the ingest pool decodes them in worker processes): they take `data: bytes`
through `SignedBody[Envelope]`, which passes the bytes on and documents the envelope.

Every route caps its body at what its largest legitimate request needs (Litestar's
`request_max_body_size` on the handler or its controller), so that nobody makes the server
hold more than that: 413 `payload_too_large` from the announced `Content-Length` before a
byte is read, or as soon as a streamed body passes the cap. Only the listing batch takes
the app-wide `REGISTRY_REQUEST_MAX_BODY_BYTES`; `tests/registry/http/test_body_limits.py`
holds every other route to its cap. A route that authenticates does so before it reads
(a guard: Litestar runs guards before it resolves `data`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import msgspec
from litestar.dto import AbstractDTO, DTOConfig
from litestar.plugins import SerializationPlugin
from litestar.typing import FieldDefinition

from registry.problems import Problem
from registry.text import FORBIDDEN_CLASS, MULTILINE_MEMBERS, check_text

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.dto.data_structures import DTOFieldDefinition
    from litestar.openapi.spec import Reference, Schema

T = TypeVar("T")

KIB = 1024
# One court or agency document: a single signed listing, an amendment, a removal, an
# objection, a subscription, an acknowledgement. The longest listing text is 5,000
# characters, at most 30 KB even with every character escaped as `\uXXXX`.
DOCUMENT_BODY_BYTES = 256 * KIB

# msgspec names a place as `$.subjects[0].id_number`; a JSON pointer says `/subjects/0/id_number`.
_PATH_STEP = re.compile(r"\.([^.\[]+)|\[([0-9]+)\]")
# The field an "unknown field" or "missing required field" message names sits below the path.
_NAMED_FIELD = re.compile(r"(?:unknown|missing required) field `([^`]*)`")


class RequestStruct(msgspec.Struct, forbid_unknown_fields=True):
    """A JSON request body. A field the API does not define is refused, not ignored.

    `checked_by_handler` names the fields (by their Python names) whose text the body-wide
    check (`registry.text`) leaves to the handler, which applies the same rule to each item
    on its own: the identifier fields of a bank's subjects, so that one unreadable subject
    gets its own error and the rest of its batch is answered (`registry.checks.subjects`)."""

    checked_by_handler: ClassVar[frozenset[str]] = frozenset()


def _pointer(path: str) -> str:
    return _PATH_STEP.sub(lambda step: "/" + (step[1] or step[2]), path)


def field_error(exc: msgspec.ValidationError, base: str = "") -> tuple[str, str]:
    """msgspec's message without its path, and the pointer (below `base`) to the field at fault."""
    message, _, path = str(exc).partition(" - at `$")
    pointer = base + _pointer(path.rstrip("`"))
    named = _NAMED_FIELD.search(message)
    if named is not None:
        pointer += "/" + named[1]
    return message, pointer


def invalid_field(message: str, pointer: str) -> Problem:
    return Problem(422, "invalid_field", message, pointer=pointer or None)


def invalid_json(detail: str = "the body is not valid JSON (or is nested too deep)") -> Problem:
    return Problem(400, "invalid_json", detail)


def empty_body() -> Problem:
    return invalid_json("the body is empty: send a JSON document")


def pointer_token(key: str) -> str:
    """A member name as one step of a JSON Pointer (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


# What may announce a forbidden character in a JSON text: the character itself, or an escape
# that may stand for one (`\n`, `\u0000`, `\u200b`, a surrogate pair: every forbidden code
# point's escape begins with one of these). Bodies without one skip the walk. Searched in the
# decoded text: over a batch of 10,000 listings (4 MB) about 40 ms; a search of the bytes for
# the characters' UTF-8 forms was slower (about 50-150 ms), sre trying each form.
_MAYBE_FORBIDDEN = re.compile(
    rf"[{FORBIDDEN_CLASS}]|\\[bfnrt]|(?i:\\u(?:00|0[3678]|1[178]|2[08]|31|f[ef]|d[89ab]))"
)


def _find_forbidden(value: Any, pointer: str, multiline: bool = False) -> None:
    if isinstance(value, str):
        check_text(value, pointer, multiline=multiline)
    elif isinstance(value, msgspec.Struct):
        # A struct's members are the fields it defines (unknown ones were refused): their
        # values, by their JSON names, less those its handler checks item by item.
        skipped = value.checked_by_handler if isinstance(value, RequestStruct) else ()
        for name, key in zip(value.__struct_fields__, value.__struct_encode_fields__, strict=True):
            if name not in skipped:
                member = f"{pointer}/{pointer_token(key)}"
                _find_forbidden(getattr(value, name), member, key in MULTILINE_MEMBERS)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, pointer)
            _find_forbidden(item, f"{pointer}/{pointer_token(key)}", key in MULTILINE_MEMBERS)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _find_forbidden(item, f"{pointer}/{index}")
    # Anything else holds no client text, or (a Raw part: a batch's envelopes) is decoded,
    # and checked, on its own later.


def _refuse_forbidden(body: bytes, decoded: Any) -> None:
    """422 `invalid_field`, with the pointer, for a control or format character in any
    string or member name of the body (`registry.text`: one rule for every field and both
    databases), before a query sees it; a struct's `checked_by_handler` fields excepted."""
    if _MAYBE_FORBIDDEN.search(body.decode()):
        _find_forbidden(decoded, "")


def _any_json(body: bytes) -> Any:
    if not body:
        raise empty_body()
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise invalid_json() from exc


def decode_json(body: bytes) -> Any:
    """Any JSON document, or 400 `invalid_json`."""
    decoded = _any_json(body)
    _refuse_forbidden(body, decoded)
    return decoded


class _Duplicate(dict[str, Any]):
    """An object that named a member twice: where, and which name."""

    def __init__(self, pairs: list[tuple[str, Any]], name: str) -> None:
        super().__init__(pairs)
        self.name = name


class _DuplicateFound(Exception):
    """An object named a member twice: stops the parse at once."""


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise _DuplicateFound
    return members


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names: set[str] = set()
    for name, _ in pairs:
        if name in names:
            return _Duplicate(pairs, name)
        names.add(name)
    return dict(pairs)


def _find_duplicate(value: Any, pointer: str) -> str | None:
    if isinstance(value, _Duplicate):
        return f"{pointer}/{pointer_token(value.name)}"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _find_duplicate(item, f"{pointer}/{pointer_token(str(key))}")
        if found is not None:
            return found
    return None


def _members(value: dict[str, Any] | list[Any]) -> int:
    """How many members the objects of a decoded document hold, all told."""
    count = 0
    if type(value) is dict:
        count = len(value)
        value = list(value.values())
    for item in value:
        if type(item) is dict or type(item) is list:
            count += _members(item)
    return count


def refuse_duplicate_members(body: bytes, decoded: Any = None) -> None:
    """422 `duplicate_member`, with the pointer to the name, when an object of the JSON text
    `body` (already known to be JSON) names a member twice.

    I-JSON (RFC 7493) forbids duplicate names: a parser keeps one of the values (msgspec the
    last), so what the registry acts on could differ from what another reader of the same
    bytes sees (a court's signature checked over other content, an acknowledgement of
    another cursor). `decoded` is the body as msgspec decodes it to builtins, if at hand.

    Every member of a JSON text has its own `:` outside the strings, so a text with fewer than
    two `:` has no two members, and one whose `:` are as many as the members msgspec kept
    (which keeps one of a duplicated name) lost none: it has no duplicate. That costs about
    1.5 µs on a bank check of one subject (130 bytes), where the standard library's parse,
    which shows every pair, costs 4-5 µs. Only a text that fails the count (a `:` inside a
    string, as in a URL, or a duplicate) is parsed so; only one with a duplicate a third
    time, to point at it."""
    colons = body.count(b":")
    if colons < 2:
        return
    if decoded is None:
        try:
            decoded = msgspec.json.decode(body)
        except (msgspec.DecodeError, RecursionError):
            decoded = None  # not expected (the body's type took it): the parse below decides
    if isinstance(decoded, dict | list) and _members(decoded) == colons:
        return
    # Numbers are kept as text: only the names matter, and int() refuses 4,300 digits.
    try:
        json.loads(body, object_pairs_hook=_unique, parse_int=str, parse_float=str, parse_constant=str)
    except _DuplicateFound:
        try:
            found = _find_duplicate(
                json.loads(
                    body, object_pairs_hook=_pairs, parse_int=str, parse_float=str, parse_constant=str
                ),
                "",
            )
        except RecursionError as exc:  # the walk to point at it nests as deep as the text
            raise invalid_json() from exc
        raise Problem(
            422,
            "duplicate_member",
            "a member name appears twice in one object (I-JSON, RFC 7493)",
            pointer=found,
        ) from None
    except (RecursionError, ValueError) as exc:
        # JSON to msgspec, not to the standard library (nested deeper than its stack allows):
        # whether a name repeats cannot be known, and the body is not taken.
        raise invalid_json() from exc


def decode_signed_json(body: bytes) -> Any:
    """A signed document: any JSON (as `decode_json`) whose objects name each member once
    (`refuse_duplicate_members`), checked before the signature is."""
    decoded = decode_json(body)
    refuse_duplicate_members(body, decoded)
    return decoded


def decode_body(body: bytes, kind: type[T]) -> T:
    """The body as `kind`: 400 `invalid_json` when it is not JSON, 422 `invalid_field` when it
    is JSON of another shape or holds a forbidden character (`registry.text`), 422
    `duplicate_member` when an object names a member twice (`refuse_duplicate_members`)."""
    if not body:
        raise empty_body()
    try:
        decoded = msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        # msgspec validates as it parses: `[` for an object is "expected object" before the
        # truncation shows. Only a body that is JSON all through is of the wrong shape. (Its
        # text is not checked here: without the struct, which text its handler checks item by
        # item (`checked_by_handler`) is not known; the shape's fault is the one named.)
        _any_json(body)
        raise invalid_field(*field_error(exc)) from exc
    except (msgspec.DecodeError, RecursionError) as exc:
        raise invalid_json() from exc
    _refuse_forbidden(body, decoded)
    refuse_duplicate_members(body)
    return decoded


class _StructDTO(AbstractDTO[T]):
    """A DTO without transfer models: the request struct is the wire format."""

    config: ClassVar[DTOConfig] = DTOConfig()

    @classmethod
    def generate_field_definitions(cls, model_type: type[Any]) -> Generator[DTOFieldDefinition, None, None]:
        # Only transfer models need field definitions, and there are none.
        yield from ()

    @classmethod
    def detect_nested_field(cls, field_definition: FieldDefinition) -> bool:
        return False

    @classmethod
    def create_for_field_definition(
        cls, field_definition: FieldDefinition, handler_id: str, backend_cls: Any = None
    ) -> None:
        # Nothing to build: decode_bytes works from the struct itself.
        return

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: SchemaCreator
    ) -> Reference | Schema:
        struct = FieldDefinition.from_annotation(
            cls.model_type, kwarg_definition=field_definition.kwarg_definition
        )
        return schema_creator.for_field_definition(struct)


class DecodedBody(_StructDTO[T]):
    def decode_bytes(self, value: bytes) -> Any:
        return decode_body(value, self.model_type)


class SignedBody(_StructDTO[T]):
    """The exact bytes, documented as the envelope struct they must hold."""

    def decode_bytes(self, value: bytes) -> Any:
        return value


class BodyPlugin(SerializationPlugin):
    """Every `data: SomeRequest` (a `RequestStruct`) is decoded by `decode_body`."""

    def supports_type(self, field_definition: FieldDefinition) -> bool:
        return field_definition.is_subclass_of(RequestStruct)

    def create_dto_for_type(self, field_definition: FieldDefinition) -> type[AbstractDTO[Any]]:
        dto: type[AbstractDTO[Any]] = DecodedBody.__class_getitem__(field_definition.annotation)
        return dto


def body_problem(errors: list[Any]) -> Problem:
    """Litestar's own refusal of a body, in this policy. With `BodyPlugin` decoding the bodies,
    the one left is a missing body, which Litestar reports as the `data` it could not find."""
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    key, message = str(first.get("key", "data")), str(first.get("message", ""))
    if key == "data" and message in {"'data'", ""}:
        return empty_body()
    return invalid_field(message, "" if key == "data" else _pointer("." + key))

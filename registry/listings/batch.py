"""The envelopes of a listing batch, each as the exact bytes the court sent.

One envelope must never fail its batch: each is decoded, checked and refused on its own by the
worker that prepares it. msgspec splits a batch in one pass, but refuses the whole body for a
fault inside one envelope that is still JSON's grammar (an unpaired surrogate escape, `\\ud800`,
which I-JSON forbids and msgspec cannot represent). Such a body is split again by the standard
library's scanner, which keeps each envelope's text as sent for its worker to refuse; an
envelope nested deeper than that scanner's stack is delimited by its brackets alone.
"""

from __future__ import annotations

import json
import re

import msgspec

from registry.http.body import empty_body, field_error, invalid_field, invalid_json, pointer_token
from registry.problems import Problem

_MEMBER = "envelopes"
_WHITESPACE = " \t\n\r"
# A lower-case ASCII letter written as an escape: no encoder needs one, but a second
# `"\u0065nvelopes"` would hide from a count of the plain name.
_ESCAPED_LETTER = re.compile(rb"\\u00[67][0-9a-fA-F]")
# What delimits a value: a whole string (brackets inside it do not count), or a bracket.
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    # Raw: each envelope stays undecoded bytes until the worker that prepares it.
    envelopes: list[msgspec.Raw]


def envelopes_of(body: bytes) -> list[bytes]:
    """400 `invalid_json` for a body that is not JSON, 422 for another shape or a member named
    twice (`{"envelopes": [...], "envelopes": [...]}` would drop the first list unseen)."""
    if not body:
        raise empty_body()
    try:
        batch = msgspec.json.decode(body, type=_Batch)
    except msgspec.ValidationError as exc:
        # msgspec validates as it parses: `[` is "expected object" before the truncation
        # shows. Only a body that is JSON all through is of the wrong shape.
        try:
            msgspec.json.decode(body)
        except (msgspec.DecodeError, RecursionError):
            return _scanned(body)
        raise invalid_field(*field_error(exc)) from exc
    except (msgspec.DecodeError, RecursionError):
        return _scanned(body)
    if body.count(b'"' + _MEMBER.encode() + b'"') > 1 or _ESCAPED_LETTER.search(body):
        # Named twice (msgspec keeps the last list), perhaps spelt with escapes, or the name
        # or an escaped letter inside an envelope: the scanner tells which.
        return _scanned(body)
    return [bytes(raw) for raw in batch.envelopes]


def _scanned(body: bytes) -> list[bytes]:
    try:
        return _scan(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise invalid_json() from exc


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in _WHITESPACE:
        at += 1
    return at


def _expect(text: str, at: int, char: str) -> int:
    if text[at : at + 1] != char:
        raise invalid_json()
    return _skip(text, at + 1)


def _scan(text: str) -> list[bytes]:
    # Numbers stay text: only the structure matters here, and int() refuses 4,300 digits.
    decoder = json.JSONDecoder(parse_int=str, parse_float=str, parse_constant=str)
    at = _expect(text, _skip(text, 0), "{")
    envelopes: list[bytes] | None = None
    while text[at : at + 1] != "}":
        if envelopes is not None:
            at = _expect(text, at, ",")
        name, at = decoder.raw_decode(text, at)
        if not isinstance(name, str) or not _encodable(name):
            raise invalid_json()  # not a name, or an unpaired surrogate (no answer can show it)
        if name != _MEMBER:
            raise invalid_field(f"Object contains unknown field `{name}`", "/" + pointer_token(name))
        if envelopes is not None:
            raise Problem(
                422,
                "duplicate_member",
                "a member name appears twice in one object (I-JSON, RFC 7493)",
                pointer="/" + _MEMBER,
            )
        at = _expect(text, _skip(text, at), ":")
        envelopes, at = _items(decoder, text, _expect(text, at, "["))
    if envelopes is None:
        raise invalid_field(f"Object missing required field `{_MEMBER}`", "/" + _MEMBER)
    if _skip(text, at + 1) != len(text):
        raise invalid_json()
    return envelopes


def _items(decoder: json.JSONDecoder, text: str, at: int) -> tuple[list[bytes], int]:
    """The array's elements as their source text, and where the text goes on after it."""
    items: list[bytes] = []
    while text[at : at + 1] != "]":
        if items:
            at = _expect(text, at, ",")
        try:
            _value, end = decoder.raw_decode(text, at)
        except RecursionError:
            end = _bracketed_end(text, at)
        items.append(text[at:end].encode())
        at = _skip(text, end)
    return items, _skip(text, at + 1)


def _bracketed_end(text: str, at: int) -> int:
    """Where an array or object starting at `at` ends, by its brackets outside strings: its
    grammar is left to the worker, which refuses it alone (its parser's stack is as short)."""
    if text[at : at + 1] not in ("[", "{"):
        raise invalid_json()
    depth = 0
    for token in _STRING_OR_BRACKET.finditer(text, at):
        bracket = token.group()
        if bracket in ("[", "{"):
            depth += 1
        elif bracket in ("]", "}"):
            depth -= 1
            if depth == 0:
                return token.end()
    raise invalid_json()


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True

"""RFC 8785 (JSON Canonicalization Scheme) bytes of a JSON value: what courts sign.

`rfc8785` is the reference implementation we rely on; it costs about 95 µs per listing
here, half of an Ed25519 verification, on the ingest hot path. For the values listings
actually hold (strings, safe integers, booleans, null, arrays, objects whose keys are in
the Basic Multilingual Plane) msgspec's key-sorted encoding produces the same bytes in
about 3 µs: it escapes exactly the characters JCS escapes, the same way, and UTF-16 key
order equals code-point order below U+10000. Anything else (floats, astral-plane keys,
lone surrogates) goes to `rfc8785`. A property test holds the two to the same output.
"""

from __future__ import annotations

from typing import Any

import msgspec
import rfc8785

_MAX_SAFE_INTEGER = 2**53 - 1


class CanonicalizationError(ValueError):
    """The value has no canonical JSON form (for instance an integer beyond 2**53)."""


def _plain(value: Any) -> bool:
    # An explicit stack: this runs for every listing on the ingest hot path.
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if not -_MAX_SAFE_INTEGER <= item <= _MAX_SAFE_INTEGER:
                return False
        elif kind is dict:
            for key in item:
                if type(key) is not str or not (key.isascii() or max(key) < "\U00010000"):
                    return False
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        else:
            return False
    return True


def canonical_json(value: Any) -> bytes:
    if _plain(value):
        try:
            return msgspec.json.encode(value, order="sorted")
        except (msgspec.EncodeError, UnicodeEncodeError):
            pass  # a lone surrogate: let the reference implementation decide
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError, TypeError, ValueError, RecursionError) as exc:
        raise CanonicalizationError(str(exc)) from exc

"""The one check every text a client sends passes: JSON bodies (each string and member
name, signed envelopes included), path ids and identifier-like query parameters.

Refused everywhere: C0 and C1 control characters and DEL (a line feed only in the members
named in `MULTILINE_MEMBERS`), and the bidirectional embeddings, overrides and isolates
(U+202A-U+202E, U+2066-U+2069), which make a name or a number read differently from what
it is. PostgreSQL text cannot hold U+0000 at all, so the check runs before any query: both
databases refuse the same input the same way.
"""

from __future__ import annotations

import re

from registry.problems import Problem

# As a regular-expression class, so that OpenAPI patterns (ECMA-262) say the same thing.
FORBIDDEN_CLASS = r"\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
# Identifier-like text (ids, codes, keys): none of the forbidden characters, not empty.
IDENTIFIER_PATTERN = rf"^[^{FORBIDDEN_CLASS}]+$"
# Free text whose line breaks mean something: the listing's obligations, an objection, a
# correction's statement and a decision's reasons.
MULTILINE_MEMBERS = frozenset({"obligations", "text", "statement", "reasons"})

_FORBIDDEN = re.compile(f"[{FORBIDDEN_CLASS}]")
_FORBIDDEN_MULTILINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def forbidden_character(text: str, *, multiline: bool = False) -> str | None:
    """The first character `text` must not hold, or None."""
    found = (_FORBIDDEN_MULTILINE if multiline else _FORBIDDEN).search(text)
    return None if found is None else found.group()


def check_text(text: str, pointer: str | None, *, multiline: bool = False) -> None:
    """422 `invalid_field` at `pointer` when `text` holds a forbidden character."""
    char = forbidden_character(text, multiline=multiline)
    if char is not None:
        raise Problem(
            422,
            "invalid_field",
            f"text must not hold control characters or bidirectional overrides (U+{ord(char):04X})",
            pointer=pointer or None,
        )

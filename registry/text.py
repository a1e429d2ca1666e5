"""The one check every text a client sends passes: JSON bodies (each string and member
name, signed envelopes included), path ids, identifier-like query parameters and the public
search's parameters (`search.query`).

Refused everywhere: C0 and C1 control characters and DEL (a line feed only in the members
named in `MULTILINE_MEMBERS`), every format character (Unicode category Cf: the bidi
embeddings, overrides, isolates and marks, zero-width spaces and joiners, the soft hyphen,
the byte-order mark, tags...), the line and paragraph separators U+2028/U+2029, and the
characters that are blank by design (`BLANK_RANGES`: the Hangul fillers, the combining
grapheme joiner, the Khmer inherent vowels, the blank Braille pattern). Each
makes a name or a number read differently from what it is, most of them invisibly: a
debtor listed as 张<U+200B>伟 looks like 张伟, yet a bank's check of 张伟 would say the name
differs and a search for it would find nothing. PostgreSQL text cannot hold U+0000 at all,
so the check runs before any query: both databases refuse the same input the same way.
"""

from __future__ import annotations

import re

from registry.problems import Problem

# No Chinese text needs a format character: names and texts are written in Chinese
# characters (a transliterated name joins its parts with U+00B7, not a format character),
# Latin letters and digits. Zero-width joiners shape emoji and Indic or Persian scripts,
# the marks (U+200E, U+200F, U+061C) right-to-left text, U+180E traditional Mongolian,
# which the courts' records give in Chinese characters. Variation selectors, which pick a
# rare name's ideograph, are marks (Mn), not format characters, and pass.
# Unicode 15's Cf characters, U+2028-U+202E taking in the two separators (a test holds
# the list to the running Python's unicodedata). Lone surrogates cannot arrive: JSON
# decoding refuses them and URL decoding replaces them.
# Characters of other categories that show nothing, and stand in no Chinese name or text: a
# name holding one looks like the name without it (as a format character does).
BLANK_RANGES = (
    (0x34F, 0x34F),  # combining grapheme joiner (Mn)
    (0x115F, 0x1160),  # Hangul choseong and jungseong fillers (Lo)
    (0x17B4, 0x17B5),  # Khmer inherent vowels, "not to be used" (Mn)
    (0x2800, 0x2800),  # Braille pattern blank (So)
    (0x3164, 0x3164),  # Hangul filler (Lo)
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler (Lo)
)
FORBIDDEN_RANGES = (
    (0x00, 0x1F),
    (0x7F, 0x9F),
    (0xAD, 0xAD),
    (0x34F, 0x34F),
    (0x600, 0x605),
    (0x61C, 0x61C),
    (0x6DD, 0x6DD),
    (0x70F, 0x70F),
    (0x890, 0x891),
    (0x8E2, 0x8E2),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x2028, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)


def _class_member(first: int, last: int) -> str:
    # \uXXXX reads the same in Python and ECMA-262 (OpenAPI patterns); an astral character is
    # written as itself: ECMA-262 has no escape for it that Python reads.
    def one(code: int) -> str:
        return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)

    return one(first) if first == last else f"{one(first)}-{one(last)}"


def _character_class(ranges: tuple[tuple[int, int], ...]) -> str:
    return "".join(_class_member(first, last) for first, last in ranges)


# As a regular-expression class, so that OpenAPI patterns (ECMA-262) say the same thing.
FORBIDDEN_CLASS = _character_class(FORBIDDEN_RANGES)
# Identifier-like text (ids, codes, keys): none of the forbidden characters, not empty.
IDENTIFIER_PATTERN = rf"^[^{FORBIDDEN_CLASS}]+$"
# Free text whose line breaks mean something: the listing's obligations, an objection, a
# correction's statement and a decision's reasons.
MULTILINE_MEMBERS = frozenset({"obligations", "text", "statement", "reasons"})

_FORBIDDEN = re.compile(f"[{FORBIDDEN_CLASS}]")
# The same less the line feed (U+000A).
_MULTILINE_RANGES = ((0x00, 0x09), (0x0B, 0x1F), *FORBIDDEN_RANGES[1:])
_FORBIDDEN_MULTILINE = re.compile(f"[{_character_class(_MULTILINE_RANGES)}]")


def forbidden_character(text: str, *, multiline: bool = False) -> str | None:
    """The first character `text` must not hold, or None."""
    found = (_FORBIDDEN_MULTILINE if multiline else _FORBIDDEN).search(text)
    return None if found is None else found.group()


def without_forbidden(text: str) -> str:
    """`text` less the characters it must not hold, to show refused input back harmlessly."""
    return _FORBIDDEN.sub("", text)


def check_text(text: str, pointer: str | None, *, multiline: bool = False) -> None:
    """422 `invalid_field` at `pointer` when `text` holds a forbidden character."""
    char = forbidden_character(text, multiline=multiline)
    if char is not None:
        raise Problem(
            422,
            "invalid_field",
            f"text must not hold control, format or line separator characters (U+{ord(char):04X})",
            pointer=pointer or None,
        )

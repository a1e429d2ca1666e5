"""What the public web page tests (HTTP and browser) look for."""

from __future__ import annotations

# The page's wording when nothing matches: it says only what the list, as published, holds.
NO_RESULT = "未在本名单中查询到与检索条件相符的失信被执行人信息。"


def masked(number: str) -> str:
    """The public mask, written here independently of the registry's own."""
    return number[:2] + "****" + number[6:10] + "********"

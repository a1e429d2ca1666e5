"""Identifiers the registry hands out: time-ordered, random, URL-safe.

The layout is ULID's (48-bit millisecond time, 80 random bits, Crockford base32), written
by hand because python-ulid's encoder and monotonic constructor cost 50-80 µs an id, which
batch ingest of thousands per millisecond cannot afford; and two base32 digits at a time
from a table, because `base64.b32encode` is pure Python before 3.13 (~2.5x slower here:
every bank check and every request's id pays it).
"""

from __future__ import annotations

import os
import re
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Every 10-bit value as its two digits.
_PAIRS = tuple(high + low for high in _CROCKFORD for low in _CROCKFORD)
_SHIFTS = tuple(range(120, -10, -10))


def new_id() -> str:
    """26 characters that sort in creation order (to the millisecond)."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    # 26 base32 digits hold 130 bits: two zero bits, then the 128; 13 pairs of 10 bits.
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])


# What `new_id` makes: 26 Crockford base32 digits (ASCII only), the first at most 7 (128 bits).
ID_PATTERN = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}", re.ASCII)


def is_id(value: str) -> bool:
    """Whether `value` is an id as `new_id` makes them: checked before an id is put into a
    query or a URL (a path id such as `a?b=1` or `x#y` never reaches one)."""
    return ID_PATTERN.fullmatch(value) is not None

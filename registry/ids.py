"""Identifiers the registry hands out: time-ordered, random, URL-safe.

The layout is ULID's (48-bit millisecond time, 80 random bits, Crockford base32), written
with the C base32 codec because python-ulid's encoder and monotonic constructor cost
50-80 µs an id, which batch ingest of thousands per millisecond cannot afford.
"""

from __future__ import annotations

import base64
import os
import re
import time

_RFC4648 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TO_CROCKFORD = str.maketrans(_RFC4648, _CROCKFORD)


def new_id() -> str:
    """26 characters that sort in creation order (to the millisecond)."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    # 26 base32 digits hold 130 bits: two zero bits, then the 128. Placed at the top of
    # 160 bits (32 digits, no padding), they are the first 26 digits.
    return base64.b32encode((value << 30).to_bytes(20, "big")).decode()[:26].translate(_TO_CROCKFORD)


# What `new_id` makes: 26 Crockford base32 digits (ASCII only), the first at most 7 (128 bits).
ID_PATTERN = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}", re.ASCII)


def is_id(value: str) -> bool:
    """Whether `value` is an id as `new_id` makes them: checked before an id is put into a
    query or a URL (a path id such as `a?b=1` or `x#y` never reaches one)."""
    return ID_PATTERN.fullmatch(value) is not None

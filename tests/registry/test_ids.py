"""Ids as `registry.ids.new_id` writes them: ULIDs (Crockford base32 of 48-bit milliseconds
and 80 random bits), so that they sort by creation time and any ULID reader decodes them."""

from __future__ import annotations

import time

from ulid import ULID

from registry.ids import is_id, new_id


def test_an_id_is_a_ulid_of_its_creation_time() -> None:
    before = int(time.time() * 1000)
    made = new_id()
    after = int(time.time() * 1000)
    decoded = ULID.from_str(made)
    # The reader's encoding of the same 128 bits is the same text.
    assert str(decoded) == made
    assert is_id(made)
    assert before <= decoded.milliseconds <= after


def test_ids_sort_by_creation_time_and_do_not_repeat() -> None:
    earlier = [new_id() for _ in range(200)]
    time.sleep(0.002)
    later = [new_id() for _ in range(200)]
    assert max(earlier) < min(later)
    assert len(set(earlier + later)) == 400
    # Every bit of randomness shows: the last digit takes many values.
    assert len({made[-1] for made in earlier + later}) > 20

"""The registry's word over an index's: a hit is shown only while its listing is published.

An index trails the log by its follower's step, seconds while a large batch is being
written; a removal, an expiry or a lift commits in the listings table at once. So every
page and entry an engine returns passes through `still_published`, one primary-key read on
the registry database, and a listing leaves search and its detail page when its removal
commits, not when the index catches up (issue 18 #11, docs/search.md). The index drops it
on its next step; until then a page may hold one hit fewer than asked, and its total may
count it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select

from registry.listings.disclosure import PublicEntry
from registry.listings.models import Listing


def still_published(conn: Connection, hits: Sequence[PublicEntry]) -> list[PublicEntry]:
    """`hits` without those whose listing is no longer active (in the order given)."""
    if not hits:
        return []
    ids = [hit.id for hit in hits]
    active = set(
        conn.execute(select(Listing.id).where(Listing.id.in_(ids), Listing.status == "active")).scalars()
    )
    return [hit for hit in hits if hit.id in active]

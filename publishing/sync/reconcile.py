"""Reconciliation: a signed snapshot of everything an agency's profile currently lists,
and a drift report comparing what the agency has acknowledged with the registry's state.

Snapshot pages are NDJSON: a first line describing the page (subscription, profile, the
log `position` the page reflects, `next_after` for the next page), then one line per
active listing in listing-id order. The response carries an RFC 9421 signature over
`@status`, `content-type` and an RFC 9530 `content-digest` of the body, so a stranger
holding the registry's JWK Set can verify each page. To repair a copy: fetch every page,
then follow the log from the smallest `position` seen (events are idempotent by listing
and version).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import msgspec
from sqlalchemy import Connection, select

from publishing.sync.models import SyncState
from publishing.sync.profiles import listing_columns, render
from publishing.sync.services import load_subscription, owned_subscription, profile_of, readable
from registry.eventlog.models import Event
from registry.eventlog.services import head
from registry.eventlog.types import LISTING_EVENTS
from registry.identity.crypto import DataKeyring
from registry.listings.models import Listing

NDJSON = "application/x-ndjson"
DRIFT_SAMPLES = 100
PENDING_SCAN_LIMIT = 1_000_000


def snapshot_page(
    conn: Connection,
    sub_id: str,
    client_id: str | None,
    after: str,
    limit: int,
    keyring: DataKeyring,
    today: date,
) -> bytes:
    """One NDJSON page. Run it inside one read transaction (REPEATABLE READ on PostgreSQL)
    so that the listings and the position are the same moment."""
    sub = _subscription(conn, sub_id, client_id)
    profile = profile_of(sub.profile)
    position, _ = head(conn)
    rows = conn.execute(
        listing_columns()
        .where(Listing.status == "active", profile.admits_clause(), Listing.id > after)
        .order_by(Listing.id)
        .limit(limit)
    ).all()
    records = [render(profile, row, keyring, today) for row in rows]
    header = {
        "kind": "snapshot",
        "subscription": sub_id,
        "profile": profile.name,
        "position": position,
        "after": after,
        "count": len(records),
        "next_after": rows[-1].id if len(rows) == limit else None,
    }
    encoder = msgspec.json.Encoder()
    lines = [encoder.encode(header), *(encoder.encode({"listing": record}) for record in records)]
    return b"\n".join(lines) + b"\n"


def _subscription(conn: Connection, sub_id: str, client_id: str | None) -> Any:
    """The agency's own subscription, unless paused or ended; any subscription for an admin
    (client_id None), whose drift report is the operator's view (listing ids only)."""
    if client_id is not None:
        sub = owned_subscription(conn, sub_id, client_id)
        readable(sub)
        return sub
    return load_subscription(conn, sub_id)


def _pending(conn: Connection, cursor: int) -> set[str]:
    """Listings with events the agency has not acknowledged yet: in flight, not drift."""
    rows = conn.execute(
        select(Event.listing_id)
        .where(Event.seq > cursor, Event.type.in_(sorted(LISTING_EVENTS)))
        .limit(PENDING_SCAN_LIMIT)
    ).scalars()
    return {listing_id for listing_id in rows if listing_id is not None}


def _merge(registry_rows: Iterator[Any], agency_rows: Iterator[Any]) -> Iterator[tuple[Any, Any]]:
    """Both sides ordered by listing id: pairs (registry row or None, agency row or None)."""
    ours, theirs = next(registry_rows, None), next(agency_rows, None)
    while ours is not None or theirs is not None:
        if theirs is None or (ours is not None and ours.id < theirs.listing_id):
            yield ours, None
            ours = next(registry_rows, None)
        elif ours is None or theirs.listing_id < ours.id:
            yield None, theirs
            theirs = next(agency_rows, None)
        else:
            yield ours, theirs
            ours, theirs = next(registry_rows, None), next(agency_rows, None)


def drift_report(conn: Connection, sub_id: str, client_id: str | None) -> dict[str, Any]:
    """Listing ids (never personal data) where the agency's acknowledged state differs from
    the registry's, leaving out listings with events still to be acknowledged."""
    sub = _subscription(conn, sub_id, client_id)
    profile = profile_of(sub.profile)
    last_seq, _ = head(conn)
    pending = _pending(conn, int(sub.cursor))
    registry_rows = iter(
        conn.execute(
            select(Listing.id, Listing.status, Listing.version)
            .where(profile.admits_clause())
            .order_by(Listing.id)
        )
    )
    agency_rows = iter(
        conn.execute(
            select(SyncState.listing_id, SyncState.status, SyncState.listing_version)
            .where(SyncState.subscription_id == sub_id)
            .order_by(SyncState.listing_id)
        )
    )
    kinds = ("missing_at_agency", "not_removed_at_agency", "outdated_at_agency")
    counts = dict.fromkeys(kinds, 0)
    samples: dict[str, list[str]] = {kind: [] for kind in kinds}
    agreed = 0
    for ours, theirs in _merge(registry_rows, agency_rows):
        listing_id = ours.id if ours is not None else theirs.listing_id
        if listing_id in pending:
            continue
        kind = _classify(ours, theirs)
        if kind is None:
            agreed += ours is not None and ours.status == "active"
            continue
        counts[kind] += 1
        if len(samples[kind]) < DRIFT_SAMPLES:
            samples[kind].append(listing_id)
    return {
        "subscription": sub_id,
        "profile": profile.name,
        "cursor": int(sub.cursor),
        "head": last_seq,
        "pending_listings": len(pending),
        "active_in_agreement": agreed,
        "drift": counts,
        "in_drift": sum(counts.values()),
        "samples": samples,
    }


def _classify(ours: Any, theirs: Any) -> str | None:
    registry_active = ours is not None and ours.status == "active"
    agency_active = theirs is not None and theirs.status == "active"
    if registry_active and not agency_active:
        return "missing_at_agency"
    if agency_active and not registry_active:
        return "not_removed_at_agency"
    if registry_active and theirs.listing_version < ours.version:
        return "outdated_at_agency"
    return None

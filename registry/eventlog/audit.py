"""`registry audit verify`: re-check the hash chain and every stored court signature.

Both are streamed in pages, so memory stays flat however long the log is. The first bad
record is named and the walk stops there: after it, nothing in the chain can be trusted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, and_, or_, select

from registry.courts.models import CourtKey
from registry.eventlog.models import Event
from registry.eventlog.services import GENESIS_HASH, event_hash, head
from registry.eventlog.types import EventType
from registry.identity.crypto import DataKeyError, DataKeyring
from registry.identity.signing import b64url
from registry.listings.models import ListingVersion, Removal
from registry.listings.prepare import PURPOSE_REMOVAL, PURPOSE_SIGNED

PAGE = 2000


@dataclass
class AuditReport:
    events_checked: int = 0
    signatures_checked: int = 0
    first_bad: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad is None


def _events(conn: Connection) -> Iterator[Any]:
    after = 0
    while True:
        rows = conn.execute(select(Event).where(Event.seq > after).order_by(Event.seq).limit(PAGE)).all()
        if not rows:
            return
        yield from rows
        after = rows[-1].seq


def verify_chain(conn: Connection, report: AuditReport) -> None:
    expected_seq, prev = 1, GENESIS_HASH
    for event in _events(conn):
        if event.seq != expected_seq:
            report.first_bad = f"event {expected_seq}: missing (next present is {event.seq})"
            return
        if bytes(event.prev_hash) != prev:
            report.first_bad = f"event {event.seq}: prev_hash does not match event {event.seq - 1}"
            return
        digest = event_hash(
            prev,
            seq=event.seq,
            occurred_at=event.occurred_at,
            type=event.type,
            actor=event.actor,
            court_code=event.court_code,
            listing_id=event.listing_id,
            listing_version=event.listing_version,
            data=event.data,
        )
        if digest != bytes(event.hash):
            report.first_bad = f"event {event.seq}: content does not match its hash"
            return
        prev = digest
        expected_seq += 1
        report.events_checked += 1
    last_seq, last_hash = head(conn)
    if last_seq != expected_seq - 1 or last_hash != prev:
        report.first_bad = f"log head: says {last_seq} events but the chain ends at {expected_seq - 1}"


def _certified(conn: Connection) -> Iterator[tuple[str, Any, Any]]:
    """(label, stored row, its event's data) for every signed version and removal."""
    after_id, after_version = "", 0
    while True:
        rows = conn.execute(
            select(ListingVersion, Event.data)
            .join(
                Event,
                and_(
                    Event.listing_id == ListingVersion.listing_id,
                    Event.listing_version == ListingVersion.version,
                    Event.type.in_((EventType.LISTING_PUBLISHED, EventType.LISTING_AMENDED)),
                ),
                isouter=True,
            )
            .where(
                or_(
                    ListingVersion.listing_id > after_id,
                    and_(ListingVersion.listing_id == after_id, ListingVersion.version > after_version),
                )
            )
            .order_by(ListingVersion.listing_id, ListingVersion.version)
            .limit(PAGE)
        ).all()
        if not rows:
            break
        for row in rows:
            yield f"listing {row.listing_id} version {row.version}", row, row.data
        after_id, after_version = rows[-1].listing_id, rows[-1].version
    after_id = ""
    while True:
        rows = conn.execute(
            select(Removal, Event.data)
            .join(
                Event,
                and_(Event.listing_id == Removal.listing_id, Event.type == EventType.LISTING_REMOVED),
                isouter=True,
            )
            .where(Removal.listing_id > after_id, Removal.signature.is_not(None))
            .order_by(Removal.listing_id)
            .limit(PAGE)
        ).all()
        if not rows:
            break
        for row in rows:
            yield f"removal of listing {row.listing_id}", row, row.data
        after_id = rows[-1].listing_id


def _check(item: tuple[str, Any, Any], keyring: DataKeyring, keys: dict[str, Ed25519PublicKey]) -> str | None:
    label, stored, data = item
    if data is None:
        return f"{label}: no event records it"
    purpose = PURPOSE_REMOVAL if label.startswith("removal") else PURPOSE_SIGNED
    try:
        signed = keyring.decrypt(bytes(stored.signed_cipher), purpose)
    except DataKeyError as exc:
        return f"{label}: evidence cannot be decrypted ({exc})"
    sha = hashlib.sha256(signed).digest()
    if sha != bytes(stored.content_sha256) or data.get("content_sha256") != sha.hex():
        return f"{label}: signed bytes differ from what the event log recorded"
    if data.get("signature") != b64url(bytes(stored.signature)):
        return f"{label}: signature differs from what the event log recorded"
    public = keys.get(stored.key_id)
    if public is None:
        return f"{label}: signing key {stored.key_id} is unknown"
    try:
        public.verify(bytes(stored.signature), signed)
    except InvalidSignature:
        return f"{label}: court signature does not verify"
    return None


def verify_signatures(conn: Connection, keyring: DataKeyring, report: AuditReport) -> None:
    keys = {
        k.key_id: Ed25519PublicKey.from_public_bytes(bytes(k.public_key))
        for k in conn.execute(select(CourtKey))
    }
    # Ed25519 verification releases the GIL: threads use every core.
    with ThreadPoolExecutor(max_workers=4) as pool:
        batch: list[tuple[str, Any, Any]] = []
        for item in _certified(conn):
            batch.append(item)
            if len(batch) == PAGE:
                if _report_batch(pool, batch, keyring, keys, report):
                    return
                batch = []
        _report_batch(pool, batch, keyring, keys, report)


def _report_batch(
    pool: ThreadPoolExecutor,
    batch: list[tuple[str, Any, Any]],
    keyring: DataKeyring,
    keys: dict[str, Ed25519PublicKey],
    report: AuditReport,
) -> bool:
    for outcome in pool.map(lambda item: _check(item, keyring, keys), batch):
        if outcome is not None:
            report.first_bad = outcome
            return True
        report.signatures_checked += 1
    return False


def audit(conn: Connection, keyring: DataKeyring) -> AuditReport:
    report = AuditReport()
    verify_chain(conn, report)
    if report.ok:
        verify_signatures(conn, keyring, report)
    return report

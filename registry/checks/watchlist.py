"""Watchlists: a bank names its borrowers (kept as blind-index values, their identifiers
encrypted only so that a blind-index key can be rotated) and learns when one of them is
listed, amended, removed or expires.

A single log reader (`READER`, cursor `watchlist`) turns events into per-bank
change records in log order. Each change is keyed by (bank, event seq), so a bank's cursor
is the event seq: the reader's batches commit one at a time, in seq order, with its cursor
(`registry.eventlog.readers`), so a bank reading `seq > after` never skips or repeats one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, func, select, update

from registry.bulk import bulk_insert
from registry.checks.models import PURPOSE_WATCH_SUBJECT, WatchChange, WatchRegistration, WatchSubject
from registry.checks.schemas import WatchSubjectIn
from registry.checks.subjects import subject_identity
from registry.clients.models import ApiClient
from registry.db import dialect_insert
from registry.endpoints import PushPolicy
from registry.eventlog.readers import LogEvent, LogReader
from registry.eventlog.services import head
from registry.eventlog.types import LISTING_EVENTS, REMOVAL_EVENTS, EventType
from registry.identity.crypto import BlindIndex, DataKeyring, Secrets
from registry.identity.identifiers import IdentifierError
from registry.identity.types import index_input
from registry.listings.models import Listing
from registry.listings.prepare import PURPOSE_DEBTOR_ID
from registry.problems import Problem
from registry.timeutil import iso

CURSOR_NAME = "watchlist"
# The scheduler job that runs this reader (`registry.checks.plugin`).
JOB = "follow_watchlists"
CHANGES: dict[str, str] = {
    EventType.LISTING_PUBLISHED: "listed",
    EventType.LISTING_AMENDED: "amended",
    EventType.LISTING_REMOVED: "removed",
    EventType.LISTING_EXPIRED: "expired",
}
_CHANGES_TABLE = cast(Table, WatchChange.__table__)


@dataclass(frozen=True)
class WatchedSubject:
    index: int
    blind: bytes | None  # under the active blind-index key: what is stored
    masked: str | None
    reference: str | None
    error: tuple[str, str] | None
    # The index under every held key (a rotation may be under way), and what is stored to
    # recompute it: the index's input, encrypted.
    candidates: tuple[bytes, ...] = ()
    cipher: bytes | None = None


def parse_watch_subjects(
    subjects: list[WatchSubjectIn], blind_index: BlindIndex, keyring: DataKeyring
) -> list[WatchedSubject]:
    out = []
    for index, subject in enumerate(subjects):
        try:
            identity = subject_identity(subject)
        except IdentifierError as exc:
            out.append(WatchedSubject(index, None, None, None, (exc.code, exc.message)))
            continue
        except ValueError:
            # As in a check (services.parse_subject): one unreadable subject fails alone.
            code = "invalid_id_number" if subject.id_number is not None else "invalid_credit_code"
            out.append(
                WatchedSubject(index, None, None, None, (code, "an identifier is ASCII letters and digits"))
            )
            continue
        candidates = blind_index.candidates(identity.index_input)
        cipher = keyring.encrypt(identity.index_input.encode(), PURPOSE_WATCH_SUBJECT)
        out.append(
            WatchedSubject(index, candidates[0], identity.masked, subject.reference, None, candidates, cipher)
        )
    return out


def _result(subject: WatchedSubject, status: str | None) -> dict[str, Any]:
    if subject.error is not None:
        return {"index": subject.index, "error": {"code": subject.error[0], "detail": subject.error[1]}}
    return {"index": subject.index, "status": status, "identifier_masked": subject.masked}


def _named_once(subjects: list[WatchedSubject]) -> tuple[dict[bytes, WatchedSubject], list[WatchedSubject]]:
    """Each subject once a request: the first to name an identifier (by its index under the
    active key, so an 18-digit number and its 15-digit form are one), and every subject, a
    later one naming the same identifier as `duplicate_subject` naming the first's index."""
    first: dict[bytes, WatchedSubject] = {}
    named = []
    for s in subjects:
        if s.blind in first:
            detail = f"the same subject as index {first[s.blind].index}: name each subject once a request"
            named.append(replace(s, blind=None, error=("duplicate_subject", detail)))
            continue
        if s.blind is not None:
            first[s.blind] = s
        named.append(s)
    return first, named


def add_subjects(
    conn: Connection, client_id: str, subjects: list[WatchedSubject], now: datetime
) -> list[dict[str, Any]]:
    """Each subject once a request: a later one naming the same identifier is refused
    (`duplicate_subject`), as its reference could not be the one kept. A new `reference` for
    a subject watched already replaces the stored one (`reference_updated`); without one the
    stored one stays."""
    first, named = _named_once(subjects)
    existing = _watched(conn, client_id, [c for s in first.values() for c in s.candidates])
    fresh = []
    statuses: dict[int, str] = {}
    for blind, s in first.items():
        stored = next((c for c in s.candidates if c in existing), None)
        if stored is None:
            row = {
                "client_id": client_id,
                "subject_blind": blind,
                "reference": s.reference,
                "created_at": now,
            }
            fresh.append(row | {"subject_cipher": s.cipher})
            statuses[s.index] = "added"
            continue
        kept, reference = existing[stored]
        values: dict[str, Any] = {}
        if stored != blind or not kept:
            # Watched already, under the retiring key or without its identifier (added before
            # revision 0017): brought up to date, so that a rotation can recompute it.
            values |= {"subject_blind": blind, "subject_cipher": s.cipher}
        renamed = s.reference is not None and s.reference != reference
        if renamed:
            values["reference"] = s.reference
        if values:
            conn.execute(
                update(WatchSubject)
                .where(WatchSubject.client_id == client_id, WatchSubject.subject_blind == stored)
                .values(**values)
            )
        statuses[s.index] = "reference_updated" if renamed else "already_watched"
    if fresh:
        # A concurrent request of the same bank may have added one meanwhile: its row stands,
        # and this request says so (both had answered `added`), its reference taking over.
        inserted = set(
            conn.execute(
                dialect_insert(conn, WatchSubject)
                .on_conflict_do_nothing()
                .returning(WatchSubject.subject_blind),
                fresh,
            ).scalars()
        )
        for blind, s in first.items():
            if statuses.get(s.index) != "added" or blind in inserted:
                continue
            changed = (
                s.reference is not None
                and conn.execute(
                    update(WatchSubject)
                    .where(
                        WatchSubject.client_id == client_id,
                        WatchSubject.subject_blind == blind,
                        WatchSubject.reference.is_distinct_from(s.reference),
                    )
                    .values(reference=s.reference)
                ).rowcount
            )
            statuses[s.index] = "reference_updated" if changed else "already_watched"
    return [_result(s, statuses.get(s.index)) for s in named]


def remove_subjects(conn: Connection, client_id: str, subjects: list[WatchedSubject]) -> list[dict[str, Any]]:
    """Each subject once a request, as in `add_subjects`: the first is `removed` or
    `not_watched`, a later one naming the same identifier `duplicate_subject`."""
    first, named = _named_once(subjects)
    existing = _watched(conn, client_id, [c for s in first.values() for c in s.candidates])
    if existing:
        conn.execute(
            delete(WatchSubject).where(
                WatchSubject.client_id == client_id, WatchSubject.subject_blind.in_(list(existing))
            )
        )
    return [
        _result(s, "removed" if any(c in existing for c in s.candidates) else "not_watched") for s in named
    ]


def _watched(conn: Connection, client_id: str, blinds: list[bytes]) -> dict[bytes, tuple[bool, str | None]]:
    """Which of these indexes the bank watches: whether each row keeps its identifier, and
    its reference."""
    found: dict[bytes, tuple[bool, str | None]] = {}
    for start in range(0, len(blinds), 1000):
        chunk = blinds[start : start + 1000]
        rows = conn.execute(
            select(
                WatchSubject.subject_blind, WatchSubject.subject_cipher.is_not(None), WatchSubject.reference
            ).where(WatchSubject.client_id == client_id, WatchSubject.subject_blind.in_(chunk))
        )
        found.update((bytes(blind), (bool(kept), reference)) for blind, kept, reference in rows)
    return found


async def check_endpoint(endpoint: str | None, policy: PushPolicy) -> str | None:
    """Where pushes may go: the shared rule (`registry.endpoints`), its name resolved."""
    if endpoint is None:
        return None
    return await policy.vet(endpoint, pointer="/endpoint", code="invalid_endpoint")


def set_endpoint(conn: Connection, client_id: str, endpoint: str | None, now: datetime) -> None:
    conn.execute(
        dialect_insert(conn, WatchRegistration)
        .values(client_id=client_id, endpoint=endpoint, updated_at=now)
        .on_conflict_do_update(index_elements=["client_id"], set_={"endpoint": endpoint, "updated_at": now})
    )


def summary(conn: Connection, client_id: str) -> dict[str, Any]:
    registration = conn.execute(
        select(
            WatchRegistration.endpoint,
            WatchRegistration.attempts,
            WatchRegistration.failures_total,
            WatchRegistration.last_error,
            WatchRegistration.next_attempt_at,
            WatchRegistration.last_delivered_at,
        ).where(WatchRegistration.client_id == client_id)
    ).first()
    count = conn.execute(
        select(func.count()).select_from(WatchSubject).where(WatchSubject.client_id == client_id)
    ).scalar_one()
    endpoint = registration.endpoint if registration is not None else None
    if registration is None or endpoint is None:
        return {"endpoint": endpoint, "subjects": int(count)}
    pending = conn.execute(
        select(func.count())
        .select_from(WatchChange)
        .where(WatchChange.client_id == client_id, WatchChange.delivered_at.is_(None))
    ).scalar_one()
    push = {
        "attempts": registration.attempts,
        "failures_total": registration.failures_total,
        "last_error": registration.last_error,
        "next_attempt_at": iso(registration.next_attempt_at) if registration.next_attempt_at else None,
        "last_delivered_at": iso(registration.last_delivered_at) if registration.last_delivered_at else None,
        "pending_changes": int(pending),
    }
    return {"endpoint": endpoint, "subjects": int(count), "push": push}


def record_changes(
    conn: Connection, events: Sequence[LogEvent], now: datetime, secrets: Secrets | None = None
) -> None:
    """A change per event and per bank that watches the listing's debtor. With `secrets`
    during a blind-index key rotation, a listing and a watched subject match under either
    key (one of them may not be recomputed yet)."""
    listings = _listings(conn, list({event.listing_id for event in events if event.listing_id}))
    indexes = {listing_id: _indexes(row, secrets) for listing_id, row in listings.items()}
    watchers = _watchers(conn, list({blind for blinds in indexes.values() for blind in blinds}))
    rows: list[dict[str, Any]] = []
    for event in events:
        listing = listings.get(event.listing_id) if event.listing_id is not None else None
        if listing is None:
            continue
        banks = {bank: ref for blind in indexes[listing.id] for bank, ref in watchers.get(blind, [])}
        for client_id, reference in banks.items():
            rows.append(
                {
                    "client_id": client_id,
                    "seq": event.seq,
                    "payload": _payload(event, listing, reference),
                    "created_at": now,
                    "delivered_at": None,
                }
            )
    bulk_insert(conn, _CHANGES_TABLE, rows)


def _indexes(listing: Any, secrets: Secrets | None) -> tuple[bytes, ...]:
    stored = bytes(listing.debtor_id_blind)
    if secrets is None or not secrets.blind_index.rotating:
        return (stored,)
    number = secrets.keyring.decrypt(bytes(listing.debtor_id_cipher), PURPOSE_DEBTOR_ID).decode()
    return tuple({stored, *secrets.blind_index.candidates(index_input(listing.debtor_id_type, number))})


READER = LogReader(CURSOR_NAME, record_changes, LISTING_EVENTS, batch=1000)


def reader_for(secrets: Secrets) -> LogReader:
    """The reader with the keys of the moment (a rotation may begin or end while it runs)."""
    return replace(READER, process=partial(record_changes, secrets=secrets))


def _listings(conn: Connection, ids: list[str]) -> dict[str, Any]:
    listings: dict[str, Any] = {}
    for start in range(0, len(ids), 1000):
        for row in conn.execute(
            select(
                Listing.id,
                Listing.debtor_id_blind,
                Listing.debtor_id_type,
                Listing.debtor_id_cipher,
                Listing.debtor_id_masked,
                Listing.court_code,
                Listing.case_number,
            ).where(Listing.id.in_(ids[start : start + 1000]))
        ):
            listings[row.id] = row
    return listings


def _watchers(conn: Connection, blinds: list[bytes]) -> dict[bytes, list[tuple[str, str | None]]]:
    watchers: dict[bytes, list[tuple[str, str | None]]] = {}
    for start in range(0, len(blinds), 1000):
        for watch in conn.execute(
            select(WatchSubject.subject_blind, WatchSubject.client_id, WatchSubject.reference).where(
                WatchSubject.subject_blind.in_(blinds[start : start + 1000]),
                # A revoked bank learns nothing more.
                WatchSubject.client_id.in_(select(ApiClient.id).where(ApiClient.revoked_at.is_(None))),
            )
        ):
            watchers.setdefault(bytes(watch.subject_blind), []).append((watch.client_id, watch.reference))
    return watchers


def _payload(event: LogEvent, listing: Any, reference: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "seq": event.seq,
        "change": CHANGES[event.type],
        "occurred_at": iso(event.occurred_at),
        "listing_id": listing.id,
        "listing_version": event.listing_version,
        "identifier_masked": listing.debtor_id_masked,
        "reference": reference,
        "court_code": listing.court_code,
        "case_number": listing.case_number,
    }
    if event.type in REMOVAL_EVENTS:
        payload["reason"] = event.data.get("reason")
        payload["effective_on"] = event.data.get("effective_on")
    return payload


def list_changes(conn: Connection, client_id: str, after: int, limit: int) -> dict[str, Any]:
    """`after` past the log's head is no cursor the bank was given (a typo would read as "no
    change" and skip every change up to it): 422 `cursor_beyond_head`."""
    last_seq, _ = head(conn)
    if after > last_seq:
        raise Problem(
            422, "cursor_beyond_head", f"after must be between 0 and {last_seq}", pointer="/query/after"
        )
    payloads = [
        row.payload
        for row in conn.execute(
            select(WatchChange.payload)
            .where(WatchChange.client_id == client_id, WatchChange.seq > after)
            .order_by(WatchChange.seq)
            .limit(limit)
        )
    ]
    return {"changes": payloads, "next_after": payloads[-1]["seq"] if payloads else after}

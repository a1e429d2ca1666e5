"""Listing lifecycle: publish, amend, remove, expire, read. The database half of ingest.

Functions take a SQLAlchemy `Connection` already in a transaction and are called through
`AsyncConnection.run_sync` by the web app and directly by the CLI. Every change appends
its events in that same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, func, insert, select, update

from registry.bulk import bulk_insert
from registry.calendar import (
    add_working_days,
    china_date,
    first_uncovered_day,
    working_days_between,
)
from registry.courts.models import Court, CourtKey
from registry.courts.services import court_exists
from registry.eventlog.services import EventDraft, append_events, head, listings_named_after, lock_head
from registry.eventlog.types import EventType
from registry.identity.crypto import DataKeyring, Secrets
from registry.identity.signing import b64url
from registry.identity.types import identity_of
from registry.ids import new_id
from registry.listings.details import listing_details
from registry.listings.models import Listing, ListingVersion, Removal
from registry.listings.prepare import (
    MAX_TERM_YEARS,
    PURPOSE_DEBTOR_ID,
    PURPOSE_SIGNED,
    KeyInfo,
    PrepareContext,
    PreparedListing,
    PreparedRemoval,
    add_months,
)
from registry.listings.schemas import (
    TERM_EXPIRED,
    EvidenceRead,
    IngestResult,
    LateRemoval,
    LateRemovalPage,
    ListingRead,
    RemovalRead,
    VersionSummary,
)
from registry.problems import Problem
from registry.timeutil import iso

LISTINGS = cast(Table, Listing.__table__)
LISTING_VERSIONS = cast(Table, ListingVersion.__table__)
CREDITOR_BAR_MONTHS = 6  # SPC Art. 10: the creditor who asked for removal cannot re-list for six months
REMOVAL_DEADLINE_WORKING_DAYS = 3  # SPC Art. 9-10: deletion within three working days
_LOOKUP_CHUNK = 500


def _key_info(row: Any) -> KeyInfo:
    return KeyInfo(
        court_code=row.court_code,
        public_key=bytes(row.public_key),
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        revoked_at=row.revoked_at,
    )


def find_key(conn: Connection, key_id: str) -> KeyInfo | None:
    row = conn.execute(select(CourtKey).where(CourtKey.key_id == key_id)).one_or_none()
    return None if row is None else _key_info(row)


def find_keys(conn: Connection, key_ids: Iterable[str]) -> dict[str, KeyInfo]:
    """The keys of `key_ids` that exist, in one query per 500 ids: a chunk of envelopes names
    many courts' keys (the demo's 50), and one query each cost 35-60 µs a listing."""
    found: dict[str, KeyInfo] = {}
    for chunk in _chunks(sorted(key_ids)):
        for row in conn.execute(select(CourtKey).where(CourtKey.key_id.in_(chunk))):
            found[row.key_id] = _key_info(row)
    return found


def load_context(
    conn: Connection, secrets: Secrets, now: datetime, key_ids: set[str] | None = None
) -> PrepareContext:
    """What preparation needs; only the named keys when given (a request names few)."""
    court_rows = conn.execute(select(Court.code, Court.province_code, Court.name)).all()
    keys: dict[str, KeyInfo] = {}
    if key_ids is None or key_ids:
        query = (
            select(CourtKey)
            if key_ids is None
            else select(CourtKey).where(CourtKey.key_id.in_(sorted(key_ids)))
        )
        keys = {row.key_id: _key_info(row) for row in conn.execute(query)}
    return PrepareContext(
        courts={row.code: row.province_code for row in court_rows},
        court_names={row.code: row.name for row in court_rows},
        keys=keys,
        data_keys=secrets.keyring.raw_keys(),
        active_data_key_id=secrets.keyring.active_key_id,
        blind_index_key=secrets.blind_index_key,
        previous_blind_index_key=secrets.previous_blind_index_key,
        now=now,
    )


def _certification(key_id: str, signature: bytes, sha: bytes) -> dict[str, Any]:
    return {"key_id": key_id, "signature": b64url(signature), "content_sha256": sha.hex()}


def _chunks(items: Sequence[Any], size: int = _LOOKUP_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def rejected(problem: Problem) -> IngestResult:
    return IngestResult(status=problem.status, outcome="rejected", problem=problem.to_dict())


def _known_submissions(
    conn: Connection, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, int, bytes]]:
    wanted = set(keys)
    found: dict[tuple[str, str], tuple[str, int, bytes]] = {}
    for chunk in _chunks(sorted({submission for _, submission in keys})):
        rows = conn.execute(
            select(
                ListingVersion.court_code,
                ListingVersion.submission_id,
                ListingVersion.listing_id,
                ListingVersion.version,
                ListingVersion.content_sha256,
            ).where(ListingVersion.submission_id.in_(chunk))
        )
        for row in rows:
            if (row.court_code, row.submission_id) in wanted:
                found[(row.court_code, row.submission_id)] = (
                    row.listing_id,
                    row.version,
                    bytes(row.content_sha256),
                )
    return found


def _prior_listings(conn: Connection, blinds: list[bytes]) -> dict[bytes, list[Any]]:
    found: dict[bytes, list[Any]] = {}
    for chunk in _chunks(blinds):
        rows = conn.execute(
            select(
                Listing.id,
                Listing.debtor_id_blind,
                Listing.case_number,
                Listing.status,
                Listing.removal_reason,
                Listing.details,
                Removal.created_at.label("removal_recorded_at"),
            )
            .outerjoin(Removal, Removal.listing_id == Listing.id)
            .where(Listing.debtor_id_blind.in_(chunk))
        )
        for row in rows:
            found.setdefault(bytes(row.debtor_id_blind), []).append(row)
    return found


def _changed_since(conn: Connection, seq: int, keys: list[tuple[str, str]], blinds: list[bytes]) -> bool:
    """Lock the log head; then whether a listing that holds one of these submissions or
    debtors was written after `seq` (the head when the checks read), which would make the
    checks stale. Every such write appended an event naming its listing, under this lock,
    so no other can come until this transaction ends; at READ COMMITTED (the writers' level)
    a read after the lock sees them all. A blind-index rotation rewrites blinds
    without an event, but a debtor's is looked for under both keys while one runs."""
    locked_at, _ = lock_head(conn)
    if locked_at == seq:
        return False
    named = listings_named_after(conn, seq, _LOOKUP_CHUNK)
    if named is None:
        return True
    if not named:
        return False
    wanted_blinds = set(blinds)
    if any(
        bytes(blind) in wanted_blinds
        for blind in conn.execute(select(Listing.debtor_id_blind).where(Listing.id.in_(named))).scalars()
    ):
        return True
    wanted_keys = set(keys)
    versions = conn.execute(
        select(ListingVersion.court_code, ListingVersion.submission_id).where(
            ListingVersion.listing_id.in_(named)
        )
    )
    return any((row.court_code, row.submission_id) in wanted_keys for row in versions)


def _debtor_blinds(item: PreparedListing) -> tuple[bytes, ...]:
    """The debtor's index, and under the retiring key during a blind-index key rotation."""
    if item.debtor_id_blind_retiring is None:
        return (item.debtor_id_blind,)
    return item.debtor_id_blind, item.debtor_id_blind_retiring


def _same_creditor(item: PreparedListing, prior: Any) -> bool:
    """By code when both listings name one, else by name (whitespace and case aside). A prior
    listing that named no creditor was removed at its creditor's request: the same case's."""
    details = listing_details(prior.details)
    if details.creditor is None:
        return bool(prior.case_number == item.case_number)
    if item.creditor_key is not None and details.creditor_key is not None:
        # Either key: during a blind-index key rotation the prior may not be recomputed yet.
        return details.creditor_key in (item.creditor_key, item.creditor_key_retiring)
    return item.creditor is not None and _name_key(item.creditor) == _name_key(details.creditor)


def _name_key(name: str) -> str:
    return "".join(name.split()).casefold()


def _relisting_problem(item: PreparedListing, priors: list[Any], today: date) -> Problem | None:
    """SPC Art. 10: no second active listing for the same case; the creditor's six-month bar."""
    for prior in priors:
        if prior.status == "active" and prior.case_number == item.case_number:
            return Problem(
                409,
                "already_listed",
                "this debtor is already listed in this case",
                pointer="/listing/case_number",
                extra={"listing_id": prior.id},
            )
        if _barred_by(item, prior, today):
            return _barred_problem(prior)
    return None


def _barred_by(item: PreparedListing, prior: Any, today: date) -> bool:
    """SPC Art. 10, the creditor's six-month bar: it runs from the day the registry recorded
    the creditor-requested removal (not the date the court states), holds through its last
    day (Civil Code Art. 201-202), and bars that creditor's application against the debtor in
    any case, never the court's initiative."""
    return (
        item.initiated_by == "creditor_application"
        and prior.status == "removed"
        and prior.removal_reason == "creditor_request"
        and prior.removal_recorded_at is not None
        and today <= add_months(china_date(prior.removal_recorded_at), CREDITOR_BAR_MONTHS)
        and _same_creditor(item, prior)
    )


def _barred_problem(prior: Any) -> Problem:
    return Problem(
        409,
        "relisting_barred",
        "the creditor asked for removal less than six months ago (SPC Art. 10)",
        pointer="/listing/creditor",
        extra={"listing_id": prior.id},
    )


def _check_creditor_bar(
    conn: Connection, listing_id: str, current: Any, item: PreparedListing, today: date
) -> None:
    """SPC Art. 10 on an amendment: a version that puts the listing on a creditor's application
    meets that creditor's bar as a new listing would (an amendment from the court's initiative
    to the barred creditor's application re-listed the debtor for it). A listing already on
    that creditor's application is not listed again by amending it: it met the bar when it
    became so (or came before the removal that started the bar)."""
    if item.initiated_by != "creditor_application":
        return
    details = listing_details(current.details)
    if (
        details.decision is not None
        and details.decision.initiated_by == "creditor_application"
        and details.creditor is not None
        and _same_creditor(item, current)
    ):
        return
    blinds = list(_debtor_blinds(item))
    priors = _prior_listings(conn, blinds)
    for prior in (row for blind in blinds for row in priors.get(blind, [])):
        if prior.id != listing_id and _barred_by(item, prior, today):
            raise _barred_problem(prior)


def _details_with_creditor(item: PreparedListing, first_listed_on: date | None = None) -> dict[str, Any]:
    details = dict(item.details, filed_on=item.filed_on.isoformat())
    # The earliest listing date the listing has had: a fixed term's cap counts from it.
    details["first_listed_on"] = (first_listed_on or item.listed_on).isoformat()
    if item.creditor:
        details["creditor"] = item.creditor
    if item.creditor_key:
        details["creditor_key"] = item.creditor_key
    return details


def publish_listings(
    conn: Connection,
    items: Sequence[PreparedListing | Problem],
    *,
    actor: str,
    now: datetime,
    client_court: str | None = None,
) -> list[IngestResult]:
    """Store new listings; one result per item, in order. Bad items never stop good ones.

    Every check that could refuse an item runs before anything is written, so the single
    multi-row insert at the end cannot fail for one item and take the others with it.

    The checks read before the log head is locked, and are read again under the lock only if
    a listing they could depend on changed meanwhile (`_changed_since`): a chunk of 500 at
    5,000,000 listings spent as long on its reads as on its writes, and every removal and
    amendment sent meanwhile waited for the head (docs/benchmarks.md).
    """
    results: list[IngestResult | None] = [None] * len(items)
    candidates: list[tuple[int, PreparedListing]] = []
    for index, item in enumerate(items):
        if isinstance(item, Problem):
            results[index] = rejected(item)
        elif client_court is not None and item.court_code != client_court:
            results[index] = rejected(
                Problem(403, "court_mismatch", "a court client may only list for its own court")
            )
        else:
            candidates.append((index, item))

    if not candidates:
        return [result for result in results if result is not None]
    keys = sorted({(i.court_code, i.submission_id) for _, i in candidates})
    blinds = sorted({blind for _, i in candidates for blind in _debtor_blinds(i)})
    read_at, _ = head(conn)
    known = _known_submissions(conn, keys)
    priors = _prior_listings(conn, blinds)
    if _changed_since(conn, read_at, keys, blinds):
        known = _known_submissions(conn, keys)
        priors = _prior_listings(conn, blinds)
    fresh: list[tuple[int, PreparedListing, str]] = []
    for index, item in candidates:
        key = (item.court_code, item.submission_id)
        if key in known:
            listing_id, version, sha = known[key]
            if sha == item.content_sha256:
                results[index] = IngestResult(
                    status=200, listing_id=listing_id, version=version, outcome="unchanged"
                )
            else:
                results[index] = rejected(
                    Problem(
                        409,
                        "submission_conflict",
                        "this submission_id was already used for different content",
                        extra={"listing_id": listing_id},
                    )
                )
            continue
        prior = [row for blind in _debtor_blinds(item) for row in priors.get(blind, [])]
        problem = _relisting_problem(item, prior, china_date(now))
        if problem is not None:
            results[index] = rejected(problem)
            continue
        listing_id = new_id()
        fresh.append((index, item, listing_id))
        known[key] = (listing_id, 1, item.content_sha256)
        # Later items of the same batch see this one, as they would had it come earlier.
        priors.setdefault(item.debtor_id_blind, []).append(_PendingPrior(listing_id, item.case_number))

    if fresh:
        seqs = append_events(
            conn,
            [
                EventDraft(
                    type=EventType.LISTING_PUBLISHED,
                    actor=actor,
                    court_code=item.court_code,
                    listing_id=listing_id,
                    listing_version=1,
                    data={"submission_id": item.submission_id}
                    | _certification(item.key_id, item.signature, item.content_sha256),
                )
                for _, item, listing_id in fresh
            ],
            now,
        )
        bulk_insert(
            conn,
            LISTINGS,
            [
                _listing_row(item, listing_id, seq, now)
                for (_, item, listing_id), seq in zip(fresh, seqs, strict=True)
            ],
        )
        bulk_insert(
            conn,
            LISTING_VERSIONS,
            [_version_row(item, listing_id, 1, actor, now) for _, item, listing_id in fresh],
        )
        for index, _, listing_id in fresh:
            results[index] = IngestResult(status=201, listing_id=listing_id, version=1, outcome="created")
    return [result for result in results if result is not None]


class _PendingPrior:
    """A listing accepted earlier in the same batch, as `_relisting_problem` sees rows."""

    status = "active"
    removal_reason = None
    removal_recorded_at = None
    details = None

    def __init__(self, listing_id: str, case_number: str) -> None:
        self.id = listing_id
        self.case_number = case_number


def _listing_row(
    item: PreparedListing, listing_id: str, seq: int, now: datetime, first_listed_on: date | None = None
) -> dict[str, Any]:
    return {
        "id": listing_id,
        "court_code": item.court_code,
        "province_code": item.province_code,
        "case_number": item.case_number,
        "status": "active",
        "version": 1,
        "debtor_kind": item.debtor_kind,
        "debtor_name": item.debtor_name,
        "debtor_id_type": item.debtor_id_type,
        "debtor_id_blind": item.debtor_id_blind,
        "debtor_id_cipher": item.debtor_id_cipher,
        "debtor_id_masked": item.debtor_id_masked,
        "debtor_sex": item.debtor_sex,
        "debtor_birth_year": item.debtor_birth_year,
        "legal_representative": item.legal_representative,
        "grounds": item.grounds,
        "term_years": item.term_years,
        "filed_on": item.filed_on,
        "listed_on": item.listed_on,
        "expires_on": item.expires_on,
        "details": _details_with_creditor(item, first_listed_on),
        "published_seq": seq,
        "published_at": now,
        "updated_at": now,
        "removed_on": None,
        "removal_reason": None,
        "special_subject": item.special_subject,
    }


def _version_row(
    item: PreparedListing, listing_id: str, version: int, actor: str, now: datetime
) -> dict[str, Any]:
    return {
        "listing_id": listing_id,
        "version": version,
        "court_code": item.court_code,
        "submission_id": item.submission_id,
        "content_sha256": item.content_sha256,
        "signed_cipher": item.signed_cipher,
        "signature": item.signature,
        "key_id": item.key_id,
        "submitted_by": actor,
        "created_at": now,
    }


def _load_for_change(conn: Connection, listing_id: str, client_court: str | None) -> Any:
    lock_head(conn)
    row = conn.execute(select(Listing).where(Listing.id == listing_id).with_for_update()).one_or_none()
    if row is None:
        raise Problem(404, "listing_not_found", "no listing has this id")
    if client_court is not None and row.court_code != client_court:
        raise Problem(403, "not_your_listing", "only the listing court may change this listing")
    return row


def amend_listing(
    conn: Connection,
    listing_id: str,
    item: PreparedListing,
    *,
    actor: str,
    now: datetime,
    client_court: str | None,
) -> IngestResult:
    current = _load_for_change(conn, listing_id, client_court)
    known = _known_submissions(conn, [(item.court_code, item.submission_id)])
    if (item.court_code, item.submission_id) in known:
        known_id, version, sha = known[(item.court_code, item.submission_id)]
        if known_id == listing_id and sha == item.content_sha256:
            return IngestResult(status=200, listing_id=listing_id, version=version, outcome="unchanged")
        raise Problem(409, "submission_conflict", "this submission_id was already used for different content")
    if current.status != "active":
        raise Problem(409, "listing_not_active", f"the listing is {current.status}; it cannot be amended")
    for field, old, new in (
        ("court_code", current.court_code, item.court_code),
        ("case_number", current.case_number, item.case_number),
        ("debtor/kind", current.debtor_kind, item.debtor_kind),
        ("debtor identifier", bytes(current.debtor_id_blind), item.debtor_id_blind),
    ):
        if old != new and not (field == "debtor identifier" and old == item.debtor_id_blind_retiring):
            raise Problem(
                422,
                "immutable_field",
                f"{field} cannot be amended: remove the listing as wrongly_listed and list again",
            )
    # Listings published before the registry kept it: the current date, the best it knows.
    first_listed_on = min(
        date.fromisoformat(listing_details(current.details).first_listed_on or current.listed_on.isoformat()),
        item.listed_on,
    )
    _check_term_change(current, item, first_listed_on)
    _check_creditor_bar(conn, listing_id, current, item, china_date(now))
    version = current.version + 1
    append_events(
        conn,
        [
            EventDraft(
                type=EventType.LISTING_AMENDED,
                actor=actor,
                court_code=item.court_code,
                listing_id=listing_id,
                listing_version=version,
                data={"submission_id": item.submission_id}
                | _certification(item.key_id, item.signature, item.content_sha256),
            )
        ],
        now,
    )
    row = _listing_row(item, listing_id, current.published_seq, now, first_listed_on)
    for unchanged in (
        "id",
        "status",
        "published_seq",
        "published_at",
        "debtor_id_cipher",
        "removed_on",
        "removal_reason",
    ):
        row.pop(unchanged)
    if item.special_subject is not None:
        row["special_subject_dropped_in"] = None
        if current.special_subject is None:
            row["special_subject_marked_in"] = version
    elif current.special_subject is not None:
        row["special_subject_dropped_in"] = version
    conn.execute(update(Listing).where(Listing.id == listing_id).values(row | {"version": version}))
    conn.execute(insert(ListingVersion), [_version_row(item, listing_id, version, actor, now)])
    return IngestResult(status=200, listing_id=listing_id, version=version, outcome="amended")


def _check_term_change(current: Any, item: PreparedListing, first_listed_on: date) -> None:
    """SPC Art. 2: the date and the term of a listing change only by an extension of a fixed
    term (an aggravating circumstance; at most five years in all, checked by `prepare`). A fixed
    term does not become none, nor none a fixed term: that is removal and a new listing.

    The term's last day never moves earlier, and never past five years (counted as a term is,
    Civil Code Art. 201-202) from the earliest listing date the listing has had: moving
    `listed_on` later restarted the five years, moving it earlier shortened the term."""
    if (current.term_years is None) != (item.term_years is None):
        raise Problem(
            422,
            "term_change_needs_relisting",
            "a fixed term cannot become none, nor none a fixed term: remove the listing and list again",
            pointer="/listing/term_years",
        )
    if current.listed_on == item.listed_on and current.term_years == item.term_years:
        return
    if item.extension is None:
        raise Problem(
            422,
            "extension_required",
            "listed_on and term_years change only with an extension decided for an aggravating "
            "circumstance (SPC Art. 2)",
            pointer="/listing/extension",
        )
    if item.term_years is not None and item.term_years < current.term_years:
        raise Problem(
            422,
            "term_invalid",
            "an extension cannot shorten the term",
            pointer="/listing/term_years",
        )
    if item.expires_on is None or current.expires_on is None:
        return
    pointer = "/listing/listed_on" if item.listed_on != current.listed_on else "/listing/term_years"
    if item.expires_on < current.expires_on:
        raise Problem(
            422,
            "term_invalid",
            f"the term would end on {item.expires_on.isoformat()}, before its current last day "
            f"{current.expires_on.isoformat()}: an amendment never shortens a term",
            pointer=pointer,
        )
    cap = add_months(first_listed_on, 12 * MAX_TERM_YEARS)
    if item.expires_on > cap:
        raise Problem(
            422,
            "term_invalid",
            f"the term would end on {item.expires_on.isoformat()}, after {cap.isoformat()}: five years "
            f"from {first_listed_on.isoformat()}, the first date of this listing, is the longest term "
            "(SPC Art. 2)",
            pointer=pointer,
        )


def remove_listing(
    conn: Connection,
    listing_id: str,
    prepare: Callable[[str], PreparedRemoval],
    *,
    actor: str,
    now: datetime,
    client_court: str | None,
) -> IngestResult:
    """`prepare` verifies the signed removal against the listing court, known only once loaded."""
    current = _load_for_change(conn, listing_id, client_court)
    removal = prepare(current.court_code)
    if removal.listing_id != listing_id:
        raise Problem(
            422,
            "listing_id_mismatch",
            "removal.listing_id differs from the listing in the path",
            pointer="/removal/listing_id",
        )
    if current.status != "active":
        existing = conn.execute(
            select(Removal.content_sha256).where(Removal.listing_id == listing_id)
        ).scalar()
        if existing is not None and bytes(existing) == removal.content_sha256:
            return IngestResult(
                status=200, listing_id=listing_id, version=current.version, outcome="unchanged"
            )
        raise Problem(409, "listing_not_active", f"the listing is already {current.status}")
    for name, day in (("effective_on", removal.effective_on), ("triggered_on", removal.triggered_on)):
        if day < current.listed_on:
            raise Problem(
                422,
                "date_out_of_range",
                f"{name} cannot be before the listing date",
                pointer=f"/removal/{name}",
            )
    deadline = add_working_days(removal.triggered_on, REMOVAL_DEADLINE_WORKING_DAYS)
    append_events(
        conn,
        [
            EventDraft(
                type=EventType.LISTING_REMOVED,
                actor=actor,
                court_code=current.court_code,
                listing_id=listing_id,
                listing_version=current.version,
                data={"reason": removal.reason, "effective_on": removal.effective_on.isoformat()}
                | _certification(removal.key_id, removal.signature, removal.content_sha256),
            )
        ],
        now,
    )
    conn.execute(
        update(Listing)
        .where(Listing.id == listing_id)
        .values(
            status="removed", removed_on=removal.effective_on, removal_reason=removal.reason, updated_at=now
        )
    )
    conn.execute(
        insert(Removal),
        [
            {
                "listing_id": listing_id,
                "reason": removal.reason,
                "effective_on": removal.effective_on,
                "basis_document": removal.basis_document,
                "content_sha256": removal.content_sha256,
                "signed_cipher": removal.signed_cipher,
                "signature": removal.signature,
                "key_id": removal.key_id,
                "removed_by": actor,
                "created_at": now,
                "triggered_on": removal.triggered_on,
                "deadline_on": deadline.due,
                "deadline_provisional": deadline.provisional,
                "on_time": china_date(now) <= deadline.due,
            }
        ],
    )
    return IngestResult(status=200, listing_id=listing_id, version=current.version, outcome="removed")


def expire_due(conn: Connection, *, today: date, now: datetime, limit: int = 1000) -> int:
    """Remove fixed-term listings whose term has ended (SPC Art. 10: the registry's own act).

    `expires_on` is the term's last day (Civil Code Art. 201-202: the listing day does not
    count, the term ends on the corresponding day), which runs to its end (Art. 203: 24:00):
    the listing is shown through that China day and leaves the public list as the next one
    starts, so that it is never shown past its term nor taken off before it ends."""
    # The log head first, then listing rows: the one lock order of every writer (see
    # registry/eventlog/services.py); rows first here deadlocked against removals.
    lock_head(conn)
    due = conn.execute(
        select(Listing.id, Listing.court_code, Listing.version, Listing.expires_on)
        .where(Listing.status == "active", Listing.expires_on < today)
        .order_by(Listing.expires_on, Listing.id)
        .limit(limit)
        .with_for_update()
    ).all()
    if not due:
        return 0
    append_events(
        conn,
        [
            EventDraft(
                type=EventType.LISTING_EXPIRED,
                actor="registry",
                court_code=row.court_code,
                listing_id=row.id,
                listing_version=row.version,
                data={"reason": TERM_EXPIRED, "effective_on": row.expires_on.isoformat()},
            )
            for row in due
        ],
        now,
    )
    ids = [row.id for row in due]
    for chunk in _chunks(ids):
        conn.execute(
            update(Listing)
            .where(Listing.id.in_(chunk), Listing.status == "active")
            .values(
                status="expired", removal_reason=TERM_EXPIRED, removed_on=Listing.expires_on, updated_at=now
            )
        )
    conn.execute(
        insert(Removal),
        [
            {
                "listing_id": row.id,
                "reason": TERM_EXPIRED,
                "effective_on": row.expires_on,
                "basis_document": None,
                "content_sha256": None,
                "signed_cipher": None,
                "signature": None,
                "key_id": None,
                "removed_by": "registry",
                "created_at": now,
                **_expiry_deadline(row.expires_on, today),
            }
            for row in due
        ],
    )
    return len(due)


def _expiry_deadline(expires_on: date, today: date) -> dict[str, Any]:
    deadline = add_working_days(expires_on, REMOVAL_DEADLINE_WORKING_DAYS)
    return {
        "triggered_on": expires_on,
        "deadline_on": deadline.due,
        "deadline_provisional": deadline.provisional,
        "on_time": today <= deadline.due,
    }


def late_removals(conn: Connection, court: str | None, limit: int, offset: int) -> LateRemovalPage:
    """Removals recorded after their deadline, newest first; one court's when `court` is given.
    A court the registry does not know is refused (400 `unknown_court`): an empty page read as
    "no late removals" (the oversight of a mistyped court)."""
    if court is not None and not court_exists(conn, court):
        raise Problem(400, "unknown_court", f"no court has the code {court}", pointer="/query/court")
    late = (
        select(
            Removal.listing_id,
            Removal.reason,
            Removal.triggered_on,
            Removal.deadline_on,
            Removal.deadline_provisional,
            Removal.created_at,
            Listing.court_code,
            Listing.case_number,
        )
        .join(Listing, Listing.id == Removal.listing_id)
        .where(Removal.on_time.is_(False))
    )
    if court is not None:
        late = late.where(Listing.court_code == court)
    total = conn.execute(select(func.count()).select_from(late.subquery())).scalar_one()
    rows = conn.execute(
        late.order_by(Removal.created_at.desc(), Removal.listing_id).limit(limit).offset(offset)
    ).all()
    return LateRemovalPage(
        removals=[
            LateRemoval(
                listing_id=row.listing_id,
                court_code=row.court_code,
                case_number=row.case_number,
                reason=row.reason,
                triggered_on=row.triggered_on,
                deadline_on=row.deadline_on,
                deadline_provisional=row.deadline_provisional,
                removed_at=iso(row.created_at),
                working_days_late=working_days_between(row.deadline_on, china_date(row.created_at)),
            )
            for row in rows
        ],
        total=total,
    )


def provisional_removal_deadlines(conn: Connection) -> list[date]:
    """Removal deadlines counted Monday to Friday on a year the calendar still does not cover."""
    rows = conn.execute(
        select(Removal.deadline_on).where(
            Removal.deadline_provisional.is_(True), Removal.deadline_on >= first_uncovered_day()
        )
    ).scalars()
    return [day for day in rows if day is not None]


def read_listing(
    conn: Connection, listing_id: str, keyring: DataKeyring, viewer_court: str | None
) -> ListingRead:
    row = conn.execute(select(Listing).where(Listing.id == listing_id)).one_or_none()
    if row is None or (viewer_court is not None and row.court_code != viewer_court):
        # A court does not learn whether another court's listing exists.
        raise Problem(404, "listing_not_found", "no listing has this id")
    identity = identity_of(
        row.debtor_id_type,
        keyring.decrypt(bytes(row.debtor_id_cipher), PURPOSE_DEBTOR_ID).decode(),
        on=row.listed_on,
    )
    debtor: dict[str, Any] = {"kind": row.debtor_kind, "name": row.debtor_name} | identity.fields()
    if row.debtor_kind == "person":
        debtor |= {"sex": identity.sex, "birth_date": identity.birth_date}
    else:
        debtor |= {"legal_representative": row.legal_representative}
    versions = conn.execute(
        select(ListingVersion).where(ListingVersion.listing_id == listing_id).order_by(ListingVersion.version)
    )
    removal = conn.execute(select(Removal).where(Removal.listing_id == listing_id)).one_or_none()
    return ListingRead(
        id=row.id,
        status=row.status,
        version=row.version,
        court_code=row.court_code,
        province_code=row.province_code,
        case_number=row.case_number,
        debtor=debtor,
        grounds=list(row.grounds),
        term_years=row.term_years,
        filed_on=row.filed_on,
        listed_on=row.listed_on,
        expires_on=row.expires_on,
        details=dict(row.details),
        published_at=iso(row.published_at),
        updated_at=iso(row.updated_at),
        versions=[
            VersionSummary(
                version=v.version,
                submission_id=v.submission_id,
                key_id=v.key_id,
                content_sha256=bytes(v.content_sha256).hex(),
                submitted_at=iso(v.created_at),
            )
            for v in versions
        ],
        removal=None
        if removal is None
        else RemovalRead(
            reason=removal.reason,
            effective_on=removal.effective_on,
            basis_document=removal.basis_document,
            removed_at=iso(removal.created_at),
            key_id=removal.key_id,
            triggered_on=removal.triggered_on,
            deadline_on=removal.deadline_on,
            deadline_provisional=removal.deadline_provisional,
            on_time=removal.on_time,
        ),
    )


def read_evidence(
    conn: Connection, listing_id: str, version: int, keyring: DataKeyring, viewer_court: str | None
) -> EvidenceRead:
    row = conn.execute(
        select(ListingVersion).where(
            ListingVersion.listing_id == listing_id, ListingVersion.version == version
        )
    ).one_or_none()
    if row is None or (viewer_court is not None and row.court_code != viewer_court):
        raise Problem(404, "version_not_found", "no such listing version")
    signed = keyring.decrypt(bytes(row.signed_cipher), PURPOSE_SIGNED)
    return EvidenceRead(
        listing_id=listing_id,
        version=version,
        key_id=row.key_id,
        signed_json=signed.decode(),
        signature=b64url(bytes(row.signature)),
        content_sha256=bytes(row.content_sha256).hex(),
    )

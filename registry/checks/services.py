"""The bank check itself: validate subjects, find active listings through the blind index
in one query, log every subject, and prepare the signed receipt.

A check reads through a `CheckStore` (`registry/checks/stores.py`) in one snapshot, so
the listings it returns and the log position it names agree: on SQLite inline on the
sqlite3 driver (a thread hop costs more than the queries), on PostgreSQL with Core over
asyncpg. The quota is then charged and the query log written in a group commit with the
checks of the same moment (`record_group`, `registry/checks/runtime.py`). The answer
leaves only after that commit, so no answered check lacks its log rows (see
`registry/checks/controllers.py`).
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import msgspec

from registry.calendar import china_date, seconds_to_next_china_day
from registry.checks.receipts import (
    NONCE_BYTES,
    RECEIPT_TYPE,
    RECEIPT_VERSION,
    ReceiptSigner,
    b64url,
    b64url_decode,
    new_nonce,
    subject_commitment,
)
from registry.checks.schemas import (
    PURPOSES,
    BankListing,
    BankPerformance,
    CheckAnswer,
    CheckRequest,
    CheckSubject,
    LogPosition,
    SubjectError,
    SubjectResult,
    VerifyRequest,
)
from registry.checks.stores import CheckStore, ListedRow
from registry.checks.subjects import subject_identity
from registry.clients.services import hash_key
from registry.identity.crypto import BlindIndex
from registry.identity.identifiers import IdentifierError, normalise_identifier, normalise_text
from registry.ids import new_id
from registry.problems import Problem
from registry.timeutil import iso
from registry.translog.note import b64


class RateLimited(Problem):
    """429 with the seconds to wait, which the problem response also sends as Retry-After."""

    def __init__(self, code: str, detail: str, retry_after: int) -> None:
        super().__init__(429, code, detail, extra={"retry_after": retry_after})


@dataclass(frozen=True)
class ParsedSubject:
    index: int
    kind: str  # person | organization | unknown (when neither identifier parses)
    identifier: str  # normalised; kept in memory only, never stored or returned
    name: str | None
    blind: bytes
    error: SubjectError | None
    masked: str = ""
    # The index under the retiring key too, while a blind-index key rotation is under way.
    candidates: tuple[bytes, ...] = ()


def _name_key(name: str) -> str:
    # NFKC, then no spaces and no case: "ZHANG Wei" and "zhangwei" are one name; 张伟 is itself.
    return "".join(normalise_text(name).split()).casefold()


def parse_subject(index: int, subject: CheckSubject, blind_index: BlindIndex) -> ParsedSubject:
    name = normalise_text(subject.name) if subject.name else None
    raw = subject.id_number or subject.credit_code or subject.organization_code or ""
    try:
        identity = subject_identity(subject)
    except IdentifierError as exc:
        error = SubjectError(exc.code, exc.message)
    except ValueError:
        # Text no parser can read: this subject's error, never the whole check's (the other
        # subjects are answered).
        code = "invalid_id_number" if subject.id_number is not None else "invalid_credit_code"
        error = SubjectError(code, "an identifier is written in ASCII letters and digits")
    else:
        candidates = blind_index.candidates(identity.index_input)
        return ParsedSubject(
            index, identity.kind, identity.number, name, candidates[0], None, identity.masked, candidates
        )
    identifier = normalise_identifier(raw)
    return ParsedSubject(index, "unknown", identifier, name, blind_index(identifier), error)


def verify_subject(
    request: VerifyRequest, blind_index: BlindIndex
) -> tuple[str, str, str | None, bytes | None] | None:
    """The subject of `POST /v1/checks/verify`, normalised as the check normalised it:
    (kind, identifier, name, nonce), or None when none is asked about. The nonce is
    required (only version-1 receipts match a subject without one)."""
    if request.subject is None:
        if request.nonce is not None:
            raise Problem(422, "invalid_field", "a nonce goes with a subject", pointer="/subject")
        return None
    parsed = parse_subject(0, request.subject, blind_index)
    if parsed.error is not None:
        raise Problem(422, parsed.error.code, parsed.error.detail, pointer="/subject")
    nonce = None
    if request.nonce is not None:
        try:
            nonce = b64url_decode(request.nonce)
        except (ValueError, binascii.Error):
            nonce = b""
        if len(nonce) != NONCE_BYTES:
            raise Problem(
                422, "invalid_field", f"the nonce is {NONCE_BYTES} bytes in base64url", pointer="/nonce"
            )
    return parsed.kind, parsed.identifier, parsed.name, nonce


def authenticate_bank(store: CheckStore, authorization: str) -> str:
    """The bank's client id, from `Authorization: Bearer <key>` (the `roles` guard's rules,
    on the check's own connection: the hot path cannot afford a second round trip)."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "unauthorized", "send Authorization: Bearer <API key>")
    client = store.client(hash_key(token.strip()))
    if client is None:
        raise Problem(401, "unauthorized", "unknown or revoked API key")
    if client[1] != "bank":
        raise Problem(403, "forbidden_role", "this needs one of the roles: bank")
    return client[0]


def validate_request(request: CheckRequest, max_subjects: int) -> CheckRequest:
    """What the struct cannot say: a known purpose, and one to `max_subjects` subjects."""
    if request.purpose not in PURPOSES:
        raise Problem(
            422,
            "unknown_purpose",
            f"purpose must be one of {', '.join(PURPOSES)}",
            pointer="/purpose",
            extra={"purposes": list(PURPOSES)},
        )
    if not request.subjects:
        raise Problem(422, "no_subjects", "send at least one subject", pointer="/subjects")
    if len(request.subjects) > max_subjects:
        raise Problem(
            413,
            "batch_too_large",
            f"a check holds at most {max_subjects} subjects",
            pointer="/subjects",
            extra={"limit": max_subjects},
        )
    return request


def _quota_spent(quota: int, used_before: int, now: datetime) -> RateLimited:
    return RateLimited(
        "daily_quota_exceeded",
        f"this bank may check {quota} subjects a day (China time); {max(0, quota - used_before)} left today",
        seconds_to_next_china_day(now),
    )


def charge_quota(store: CheckStore, client_id: str, now: datetime, subjects: int, quota: int) -> None:
    """Counts the subjects against today's quota in the check's transaction; a refusal
    rolls the count back with everything else."""
    used = store.charge(client_id, china_date(now), subjects)
    if used > quota:
        raise _quota_spent(quota, used - subjects, now)


def _bank_listing(row: ListedRow) -> BankListing:
    details = row.details
    return BankListing(
        listing_id=row.id,
        version=row.version,
        name=row.debtor_name,
        identifier_masked=row.debtor_id_masked,
        court_code=row.court_code,
        court_name=row.court_name,
        case_number=row.case_number,
        basis_document_number=details.basis.document_number,
        basis_issuer=details.basis.issuer,
        obligations=details.obligations,
        amount_cents=details.amount_cents,
        performance=BankPerformance(
            details.performance.status,
            details.performance.performed_cents,
            details.performance.unperformed_cents,
        ),
        grounds=list(row.grounds),
        filed_on=row.filed_on,
        listed_on=row.listed_on,
        term_years=row.term_years,
        expires_on=row.expires_on,
    )


@dataclass(frozen=True)
class CheckOutcome:
    """A committed check, ready to sign and send."""

    check_id: str
    client_id: str
    checked_at: datetime
    purpose: str
    reference: str
    log_seq: int
    log_hash: bytes
    # (tree size, root hash) of the newest signed transparency-log checkpoint, if any.
    checkpoint: tuple[int, bytes] | None
    subjects: list[ParsedSubject]
    results: list[SubjectResult]
    # Query-log rows in stores.LOG_COLUMNS order: written before the answer leaves.
    log_rows: list[tuple[Any, ...]]


def run_check(
    store: CheckStore, *, client_id: str, request: CheckRequest, blind_index: BlindIndex, now: datetime
) -> CheckOutcome:
    """Answer one check from one read snapshot (listings and log head agree). Writes
    nothing: `record` (or the SQLite group commit) logs it before it is answered."""
    parsed = [parse_subject(i, subject, blind_index) for i, subject in enumerate(request.subjects)]
    wanted = list({blind for p in parsed if p.error is None for blind in p.candidates})
    listings, (seq, last_hash), checkpoint = store.snapshot(wanted, china_date(now))
    found: dict[bytes, list[ListedRow]] = {}
    for row in listings:
        found.setdefault(bytes(row.debtor_id_blind), []).append(row)
    check_id = "ck_" + new_id().lower()
    results: list[SubjectResult] = []
    log_rows: list[tuple[Any, ...]] = []
    for subject in parsed:
        if subject.error is not None:
            results.append(SubjectResult(index=subject.index, error=subject.error))
            outcome, count, mismatch = "invalid", 0, False
        else:
            rows = [row for blind in subject.candidates for row in found.get(blind, [])]
            name = _name_key(subject.name) if subject.name else None
            mismatch = name is not None and any(_name_key(row.debtor_name) != name for row in rows)
            results.append(
                SubjectResult(
                    index=subject.index,
                    kind=subject.kind,
                    identifier_masked=subject.masked,
                    listed=bool(rows),
                    name_mismatch=mismatch,
                    listings=[_bank_listing(row) for row in rows],
                )
            )
            outcome, count = ("listed" if rows else "not_listed"), len(rows)
        log_rows.append(
            (
                check_id,
                client_id,
                now,
                request.purpose,
                request.reference,
                subject.index,
                subject.blind,
                outcome,
                count,
                mismatch,
                subject.error.code if subject.error else None,
            )
        )
    return CheckOutcome(
        check_id,
        client_id,
        now,
        request.purpose,
        request.reference,
        seq,
        last_hash,
        checkpoint,
        parsed,
        results,
        log_rows,
    )


def record(store: CheckStore, outcome: CheckOutcome, quota: int | None) -> None:
    """Charge the quota (None: the operator has none) and write the log rows, in the
    caller's transaction; a refusal rolls back both."""
    if quota is not None:
        charge_quota(store, outcome.client_id, outcome.checked_at, len(outcome.subjects), quota)
    store.append_log(outcome.log_rows)


def record_group(
    store: CheckStore, checks: Sequence[tuple[CheckOutcome, int | None]]
) -> list[RateLimited | None]:
    """`record` for each check in turn, in the caller's write transaction, each check
    admitted or refused on its own (the refusal, or None): a refused check charges nothing
    and logs nothing, and does not undo another's rows. One read and one write of each
    bank's count for the day, and one insert of all the log rows, however many checks: a
    check's share of the group commit (`registry.checks.runtime.GroupCommit`).

    Exact because each count is held from its read to the commit (`CheckStore.usage`:
    SQLite's write lock, PostgreSQL's row lock). The counts are read in one order, by
    bank and day, so two processes' groups that share banks cannot deadlock."""
    days = sorted(
        {
            (outcome.client_id, china_date(outcome.checked_at))
            for outcome, quota in checks
            if quota is not None
        }
    )
    used = {day_of: store.usage(*day_of) for day_of in days}
    charged: dict[tuple[str, date], int] = {}
    settled: list[RateLimited | None] = []
    rows: list[tuple[Any, ...]] = []
    for outcome, quota in checks:
        if quota is not None:
            day_of = (outcome.client_id, china_date(outcome.checked_at))
            before = used[day_of]
            subjects = len(outcome.subjects)
            if before + subjects > quota:
                settled.append(_quota_spent(quota, before, outcome.checked_at))
                continue
            used[day_of] = before + subjects
            charged[day_of] = charged.get(day_of, 0) + subjects
        settled.append(None)
        rows.extend(outcome.log_rows)
    for (client_id, day), subjects in charged.items():
        store.charge(client_id, day, subjects)
    if rows:
        store.append_log(rows)
    return settled


def receipt_claims(outcome: CheckOutcome, nonces: list[bytes]) -> dict[str, Any]:
    """What the receipt signs. `checkpoint` names the newest signed transparency-log
    checkpoint when the check ran (`GET /v1/log/checkpoint?size=N`), so a bank can later
    prove the log it was answered from was never rewritten; null before the first one.
    Each subject is a commitment under its own nonce, which is not in the receipt."""
    subjects = []
    for subject, result, nonce in zip(outcome.subjects, outcome.results, nonces, strict=True):
        entry: dict[str, Any] = {
            "i": subject.index,
            "commitment": subject_commitment(nonce, subject.kind, subject.identifier, subject.name),
        }
        if result.error is not None:
            entry["error"] = result.error.code
        else:
            entry["listed"] = result.listed
            entry["listings"] = [f"{item.listing_id}/{item.version}" for item in result.listings]
            if result.name_mismatch:
                entry["name_mismatch"] = True
        subjects.append(entry)
    return {
        "typ": RECEIPT_TYPE,
        "v": RECEIPT_VERSION,
        "jti": outcome.check_id,
        "iat": int(outcome.checked_at.timestamp()),
        "checked_at": iso(outcome.checked_at),
        "bank": outcome.client_id,
        "purpose": outcome.purpose,
        "reference": outcome.reference,
        "log": {"seq": outcome.log_seq, "hash": outcome.log_hash.hex()},
        "checkpoint": None
        if outcome.checkpoint is None
        else {"tree_size": outcome.checkpoint[0], "root_hash": b64(outcome.checkpoint[1])},
        "subjects": subjects,
    }


def answer(outcome: CheckOutcome, signer: ReceiptSigner) -> CheckAnswer:
    """The answer: each result carries its subject's nonce beside the receipt, never in it."""
    nonces = [new_nonce() for _ in outcome.subjects]
    return CheckAnswer(
        check_id=outcome.check_id,
        checked_at=iso(outcome.checked_at),
        purpose=outcome.purpose,
        reference=outcome.reference,
        log_position=LogPosition(outcome.log_seq, outcome.log_hash.hex()),
        results=[
            msgspec.structs.replace(result, nonce=b64url(nonce))
            for result, nonce in zip(outcome.results, nonces, strict=True)
        ],
        receipt=signer.sign(receipt_claims(outcome, nonces)),
    )

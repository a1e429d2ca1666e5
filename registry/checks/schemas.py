"""What a bank sends and what it gets back. `BankListing` is the bank profile: an explicit
allow-list, so that a field added to listings later does not reach banks by accident."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, ClassVar

import msgspec

from registry.http.body import RequestStruct

# Why a bank checks (Art. 14 makes the check a duty before lending; the rest are the
# other decisions the Opinion lets a bank weigh listed status in). Recorded in the
# query log and the receipt; a regulator reads a bank's log by purpose.
PURPOSES: dict[str, str] = {
    "loan_application": "deciding a new loan or credit line",
    "credit_review": "reviewing an existing borrower's credit (renewal, increase)",
    "account_opening": "opening a new account",
    "guarantee_review": "accepting a guarantor or a guarantee",
    "post_loan_monitoring": "monitoring a borrower after the loan",
    "outbound_payment": "a large outbound payment the Opinion lets a bank restrict",
}

Text = Annotated[str, msgspec.Meta(max_length=256)]
# A subject's identifier fields and name: at most `SUBJECT_TEXT_MAX` characters, none of them
# one `registry.text` forbids, or the subject gets its own `error` and the rest of its batch
# is answered (`registry.checks.subjects`). Only the body's cap bounds them in the struct.
SUBJECT_TEXT_MAX = 256
SubjectText = Annotated[
    str,
    msgspec.Meta(
        description=f"At most {SUBJECT_TEXT_MAX} characters, with no control or format character; "
        "otherwise this subject's `error`"
    ),
]


class RegistrationIn(RequestStruct):
    """A foreign entity's home registration: ISO 3166-1 alpha-3 country and number."""

    country: SubjectText
    number: SubjectText


class CheckSubject(RequestStruct):
    """A person (`id_number` with its `id_type`, default `resident_id`; `nationality` with a
    passport; optionally `name`) or an organisation (one of `credit_code`,
    `organization_code`, `registration`)."""

    # Each subject's text is checked on its own (`registry.checks.subjects`).
    checked_by_handler: ClassVar[frozenset[str]] = frozenset(
        {"id_number", "id_type", "nationality", "credit_code", "organization_code", "registration", "name"}
    )

    id_number: SubjectText | None = None
    id_type: SubjectText | None = None
    nationality: SubjectText | None = None
    credit_code: SubjectText | None = None
    organization_code: SubjectText | None = None
    registration: RegistrationIn | None = None
    name: SubjectText | None = None


class CheckRequest(RequestStruct):
    subjects: list[CheckSubject]
    purpose: Text
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class BankPerformance(msgspec.Struct, frozen=True):
    status: str
    performed_cents: int | None = None
    unperformed_cents: int | None = None


class BankListing(msgspec.Struct, frozen=True, kw_only=True):
    """An active listing as a bank sees it: SPC Art. 6 case facts plus the term."""

    listing_id: str
    version: int
    name: str
    identifier_masked: str
    court_code: str
    court_name: str
    case_number: str
    basis_document_number: str
    basis_issuer: str
    obligations: str
    amount_cents: int | None
    performance: BankPerformance
    grounds: list[str]
    filed_on: date
    listed_on: date
    term_years: int | None
    expires_on: date | None


class SubjectError(msgspec.Struct, frozen=True):
    code: str
    detail: str


class SubjectResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    index: int
    kind: str | None = None
    identifier_masked: str | None = None
    listed: bool | None = None
    name_mismatch: bool = False
    listings: list[BankListing] = []
    error: SubjectError | None = None
    # base64url: the key of this subject's commitment in the receipt. Keep it beside the
    # receipt; with the subject, it proves which borrower the receipt covers.
    nonce: str | None = None


class LogPosition(msgspec.Struct, frozen=True):
    seq: int
    hash: str


class CheckAnswer(msgspec.Struct, frozen=True, kw_only=True):
    check_id: str
    checked_at: str
    purpose: str
    reference: str
    log_position: LogPosition
    results: list[SubjectResult]
    receipt: str


class VerifyRequest(RequestStruct):
    receipt: Annotated[str, msgspec.Meta(max_length=4_000_000)]
    # Optional: which borrower? The subject as it was checked, with the nonce its result carried.
    subject: CheckSubject | None = None
    nonce: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class WatchSubjectIn(RequestStruct):
    """The identifier fields of `CheckSubject`."""

    # Each subject's identifier is checked on its own; its `reference` with the body.
    checked_by_handler: ClassVar[frozenset[str]] = frozenset(
        {"id_number", "id_type", "nationality", "credit_code", "organization_code", "registration"}
    )

    id_number: SubjectText | None = None
    id_type: SubjectText | None = None
    nationality: SubjectText | None = None
    credit_code: SubjectText | None = None
    organization_code: SubjectText | None = None
    registration: RegistrationIn | None = None
    # Taken, as a check's subject has it, and not used: a subject is watched by its identifier
    # alone (a bank sending its check subjects is not refused for it; checked as any text).
    name: SubjectText | None = None
    # The bank's own key for the borrower (a customer number), echoed in changes; absent, not
    # empty, when there is none (as a check's `reference`).
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None


class WatchRequest(RequestStruct):
    subjects: list[WatchSubjectIn]


class EndpointRequest(RequestStruct):
    endpoint: Annotated[str, msgspec.Meta(max_length=2048)] | None


class VerifyAnswer(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    genuine: bool
    # genuine, malformed, unsupported_algorithm, unknown_kid, bad_signature, altered, not_a_receipt
    reason: str
    detail: str
    # When genuine: the registry key that signed it, and the signed claims (README, "Receipts").
    key_id: str | None = None
    claims: dict[str, Any] | None = None
    # With a subject (and nonce): whether the receipt covers it, and at which index.
    subject_covered: bool | None = None
    subject_index: int | None = None


class WatchSubjectResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    index: int
    # added, already_watched, reference_updated, removed or not_watched; absent with an `error`
    status: str | None = None
    identifier_masked: str | None = None
    error: SubjectError | None = None


class WatchResults(msgspec.Struct, frozen=True):
    results: list[WatchSubjectResult]


class PushStatus(msgspec.Struct, frozen=True):
    """How pushes to the bank's endpoint fare: failures in a row back off exponentially."""

    attempts: int  # failed pushes in a row (0 after a success)
    failures_total: int
    last_error: str | None  # never the answer's body: `HTTP 500`, `deadline exceeded`, ...
    next_attempt_at: str | None
    last_delivered_at: str | None
    pending_changes: int


class WatchlistSummary(msgspec.Struct, frozen=True):
    endpoint: str | None
    subjects: int
    push: PushStatus | None = None  # with an endpoint


class EndpointAnswer(msgspec.Struct, frozen=True):
    endpoint: str | None


class WatchChangeRead(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    seq: int
    change: str  # listed, amended, removed, expired
    occurred_at: str
    listing_id: str
    listing_version: int
    identifier_masked: str
    reference: str | None  # the bank's own key for the borrower
    court_code: str
    case_number: str
    # Removals and expiries only.
    reason: str | None = None
    effective_on: str | None = None


class WatchChanges(msgspec.Struct, frozen=True):
    changes: list[WatchChangeRead]
    next_after: int

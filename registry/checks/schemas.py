"""What a bank sends and what it gets back. `BankListing` is the bank profile: an explicit
allow-list, so that a field added to listings later does not reach banks by accident."""

from __future__ import annotations

from datetime import date
from typing import Annotated

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


class CheckSubject(RequestStruct):
    """A person (`id_number`, optionally `name`) or an organisation (`credit_code`)."""

    id_number: Text | None = None
    credit_code: Text | None = None
    name: Text | None = None


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


class WatchSubjectIn(RequestStruct):
    id_number: Text | None = None
    credit_code: Text | None = None
    # The bank's own key for the borrower (a customer number), echoed in changes.
    reference: Annotated[str, msgspec.Meta(max_length=128)] | None = None


class WatchRequest(RequestStruct):
    subjects: list[WatchSubjectIn]


class EndpointRequest(RequestStruct):
    endpoint: Annotated[str, msgspec.Meta(max_length=2048)] | None

"""A listing's `details` column, decoded once into one typed struct.

`details` holds the case facts a court certified beyond the indexed columns (the
enforcement basis, the obligations, their amount, how far they were performed), as
`registry.listings.prepare` writes them, plus what the registry adds (the filing date, the
creditor). Every reader takes them from `listing_details`, never by key.
"""

from __future__ import annotations

from typing import Any

import msgspec


class PublicPerformance(msgspec.Struct, frozen=True):
    status: str  # "none" (全部未履行) or "partial" (部分未履行)
    performed_cents: int | None = None
    unperformed_cents: int | None = None


class EnforcementBasis(msgspec.Struct, frozen=True):
    document_number: str  # 执行依据文号
    issuer: str


class ListingDecision(msgspec.Struct, frozen=True):
    document_number: str  # 决定书文号 (SPC Art. 5)
    decided_on: str
    initiated_by: str  # "creditor_application" or "court_initiative"


class TermExtension(msgspec.Struct, frozen=True):
    document_number: str
    decided_on: str
    reason: str  # an aggravating circumstance of SPC Art. 2


class SpecialSubjectDetails(msgspec.Struct, frozen=True):
    category: str  # one of registry.listings.schemas.SPECIAL_SUBJECTS
    employer: str | None = None  # 工作单位或上级主管部门, when the court knows it


class ListingDetails(msgspec.Struct, frozen=True):
    basis: EnforcementBasis
    obligations: str
    amount_cents: int | None = None
    performance: PublicPerformance = PublicPerformance("none")
    creditor: str | None = None
    # The HMAC of the creditor's code (never the code): the six-month bar's match.
    creditor_key: str | None = None
    # None on listings submitted before the decision was part of the contract.
    decision: ListingDecision | None = None
    extension: TermExtension | None = None
    special_subject: SpecialSubjectDetails | None = None
    # The earliest listed_on of any version (ISO date): a fixed term's five years count from it.
    # None on listings published before the registry kept it.
    first_listed_on: str | None = None


_decoder = msgspec.json.Decoder(ListingDetails)


def listing_details(raw: Any) -> ListingDetails:
    """`raw`: the column as a driver gives it, parsed JSON (SQLAlchemy's JSON type) or its
    text (the bank check's sqlite3 path, which decodes straight into the struct)."""
    if isinstance(raw, str | bytes):
        return _decoder.decode(raw)
    return msgspec.convert(raw, ListingDetails)

"""The court-facing contract: what a court submits, and what a court or admin reads back."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

import msgspec

GROUNDS = (
    "able_but_refuses",
    "obstructs_enforcement",
    "evades_enforcement",
    "breaches_property_reporting",
    "breaches_consumption_restriction",
    "breaches_settlement",
)
REMOVAL_REASONS = (
    "performed",
    "settlement_performed",
    "creditor_request",
    "no_property_found",
    "enforcement_suspended",
    "not_enforced",
    "enforcement_terminated",
    "wrongly_listed",
)
TERM_EXPIRED = "term_expired"
# Opinion Art. 2, 4 and SPC Art. 8: debtors whose non-performance their personnel or
# discipline body is told of. The first four are persons, the last three organisations.
PERSON_SPECIAL_SUBJECTS = ("party_member", "civil_servant", "npc_deputy", "cppcc_member")
ORGANIZATION_SPECIAL_SUBJECTS = ("state_organ", "state_owned_enterprise", "public_institution")
SPECIAL_SUBJECTS = PERSON_SPECIAL_SUBJECTS + ORGANIZATION_SPECIAL_SUBJECTS
# SPC Art. 5: a listing is decided on the creditor's application or on the court's own initiative.
INITIATIONS = ("creditor_application", "court_initiative")
# SPC Art. 2: the aggravating circumstances that extend a term by one to three years.
EXTENSION_REASONS = ("violence_or_threats", "multiple_dishonest_acts")
# SPC Art. 10 ("执字第", "执恢字第" before 2016): the case types that carry a listing.
LISTABLE_CASE_TYPES = ("执", "执恢")

# Characters, as sent and again once normalised (NFKC can lengthen text: U+FDFA is 18).
TEXT_MAX_CHARS = 200
LONG_TEXT_MAX_CHARS = 5000
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=TEXT_MAX_CHARS)]
LongText = Annotated[str, msgspec.Meta(min_length=1, max_length=LONG_TEXT_MAX_CHARS)]
Cents = Annotated[int, msgspec.Meta(ge=0, le=10**15)]


class Basis(msgspec.Struct):
    document_number: Text
    issuer: Text


class Decision(msgspec.Struct):
    """The court's decision to list (决定书, SPC Art. 5)."""

    document_number: Text
    decided_on: date
    initiated_by: Literal["creditor_application", "court_initiative"]


class Creditor(msgspec.Struct):
    """申请执行人: the name, and the credit code (organisation) or ID number (person) when known."""

    name: Text
    credit_code: Annotated[str, msgspec.Meta(min_length=1, max_length=40)] | None = None
    id_number: Annotated[str, msgspec.Meta(min_length=1, max_length=40)] | None = None


class Extension(msgspec.Struct):
    """The court's decision to extend a fixed term (SPC Art. 2) and its aggravating circumstance."""

    document_number: Text
    decided_on: date
    reason: Literal["violence_or_threats", "multiple_dishonest_acts"]


Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
# resident_id (default), hk_macao_travel_permit, taiwan_travel_permit,
# foreign_permanent_residence, passport (registry.identity.types.PERSON_ID_TYPES)
IdType = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
Country = Annotated[str, msgspec.Meta(min_length=1, max_length=8)]


class SpecialSubject(msgspec.Struct):
    """The court asserts that the debtor is a special subject (Opinion Art. 2, 4): one of
    SPECIAL_SUBJECTS, and the employer or superior body (工作单位或上级主管部门) when known."""

    category: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    employer: Text | None = None


class PersonDebtor(msgspec.Struct, tag="person", tag_field="kind"):
    name: Text
    id_number: Identifier
    id_type: IdType | None = None
    # ISO 3166-1 alpha-3, with a passport only.
    nationality: Country | None = None


class Registration(msgspec.Struct):
    """A foreign entity's home registration."""

    country: Country  # ISO 3166-1 alpha-3
    number: Identifier


class OrganizationDebtor(msgspec.Struct, tag="organization", tag_field="kind"):
    """Exactly one of `credit_code` (GB 32100), `organization_code` (GB 11714) and `registration`."""

    name: Text
    legal_representative: Text
    credit_code: Identifier | None = None
    organization_code: Identifier | None = None
    registration: Registration | None = None


class Performance(msgspec.Struct):
    status: str
    performed_cents: Cents | None = None
    unperformed_cents: Cents | None = None


class ListingIn(msgspec.Struct):
    """A listing as a court certifies it. Unknown extra fields are kept in the signed bytes."""

    court_code: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    case_number: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    filed_on: date
    basis: Basis
    debtor: PersonDebtor | OrganizationDebtor
    obligations: LongText
    performance: Performance
    grounds: Annotated[list[str], msgspec.Meta(min_length=1, max_length=6)]
    listed_on: date
    submission_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    decision: Decision
    amount_cents: Cents | None = None
    term_years: int | None = None
    # 申请执行人, required when the creditor applied: the six-month bar after a
    # creditor-requested removal (SPC Art. 10) is this creditor's. A plain name is accepted.
    creditor: Text | Creditor | None = None
    # Required by an amendment that changes listed_on or the term.
    extension: Extension | None = None
    special_subject: SpecialSubject | None = None


class RemovalIn(msgspec.Struct):
    listing_id: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    reason: str
    effective_on: date
    # The document that removes (ruling, written request, ...), and the day the deletion
    # condition arose: the three working days of SPC Art. 10 run from it.
    basis_document: Text
    triggered_on: date


class SignatureIn(msgspec.Struct):
    """Ed25519 over the RFC 8785 canonical JSON of the signed object, base64url without padding."""

    key_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    value: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


# The envelopes document the signed court endpoints (registry.http.body.SignedBody): the
# registry reads their exact bytes, so that the signature is checked over what was sent.


class ListingEnvelope(msgspec.Struct):
    """A listing and the listing court's signature over its canonical JSON."""

    listing: ListingIn
    signature: SignatureIn


class RemovalEnvelope(msgspec.Struct):
    """A removal and the listing court's signature over its canonical JSON."""

    removal: RemovalIn
    signature: SignatureIn


class ListingBatch(msgspec.Struct):
    envelopes: list[ListingEnvelope]


# ---- what the registry answers (court and admin audience) ----


class IngestResult(msgspec.Struct, omit_defaults=True):
    status: int
    outcome: Literal["created", "unchanged", "amended", "removed", "rejected"]
    listing_id: str | None = None
    version: int | None = None
    problem: dict[str, Any] | None = None


class VersionSummary(msgspec.Struct):
    version: int
    submission_id: str
    key_id: str
    content_sha256: str
    submitted_at: str


class RemovalRead(msgspec.Struct):
    reason: str
    effective_on: date
    basis_document: str | None
    removed_at: str
    key_id: str | None
    triggered_on: date | None  # None for removals recorded before the deadline was kept
    deadline_on: date | None  # the third working day after triggered_on (SPC Art. 10)
    deadline_provisional: bool  # counted on a year the working-day calendar does not cover
    on_time: bool | None


class ListingRead(msgspec.Struct):
    id: str
    status: Literal["active", "removed", "expired"]
    version: int
    court_code: str
    province_code: str | None
    case_number: str
    debtor: dict[str, Any]
    grounds: list[str]
    term_years: int | None
    filed_on: date
    listed_on: date
    expires_on: date | None
    details: dict[str, Any]
    published_at: str
    updated_at: str
    versions: list[VersionSummary]
    removal: RemovalRead | None


class EvidenceRead(msgspec.Struct):
    """The exact bytes a court signed, for anyone holding its public key to re-verify."""

    listing_id: str
    version: int
    key_id: str
    signed_json: str
    signature: str
    content_sha256: str


class BatchSummary(msgspec.Struct):
    created: int
    unchanged: int
    rejected: int


class BatchAnswer(msgspec.Struct):
    summary: BatchSummary
    results: list[IngestResult]  # one per envelope, in order


class LateRemoval(msgspec.Struct):
    """A removal recorded after its statutory deadline (SPC Art. 9-10: three working days)."""

    listing_id: str
    court_code: str
    case_number: str
    reason: str
    triggered_on: date
    deadline_on: date
    deadline_provisional: bool
    removed_at: str
    # Working days from the deadline to the day the removal was recorded (China time).
    working_days_late: int


class LateRemovalPage(msgspec.Struct):
    removals: list[LateRemoval]
    total: int

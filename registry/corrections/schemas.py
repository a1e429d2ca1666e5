"""The correction contract, one set of structs per audience: the applicant (public), the
deciding courts and admins, and the signed decisions courts send."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import msgspec

from registry.http.body import RequestStruct
from registry.listings.schemas import SignatureIn

# SPC Provisions Art. 11: the three things a listed person may say.
GROUNDS = ("wrongly_listed", "inaccurate_information", "should_be_deleted")
# Art. 9: what a court may find about its own listing.
FINDING_GROUNDS = ("wrongly_listed", "inaccurate_information")
ATTACHMENT_TYPES = ("application/pdf", "image/jpeg", "image/png")
STATUSES = (
    "under_review",
    "upheld",
    "dismissed",
    "under_reconsideration",
    "upheld_on_reconsideration",
    "dismissed_on_reconsideration",
    "found_by_court",
)

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
LongText = Annotated[str, msgspec.Meta(min_length=1, max_length=5000)]
Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
# A person's document (registry.identity.types.PERSON_ID_TYPES); an unknown one is 422
# `unknown_id_type`, as in a bank's check.
IdType = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=40,
        description="resident_id (default), hk_macao_travel_permit, taiwan_travel_permit, "
        "foreign_permanent_residence or passport (with `nationality`)",
    ),
]
Country = Annotated[str, msgspec.Meta(min_length=1, max_length=8, description="ISO 3166-1 alpha-3, e.g. CAN")]
# Base64 of at most the largest attachment the settings allow (checked again after decoding).
Content = Annotated[str, msgspec.Meta(min_length=1, max_length=30 * 1024 * 1024)]


# ---- the applicant ----


class ListingRef(RequestStruct):
    """The listing: its public id (the page's address), or its case number."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None
    case_number: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class HomeRegistration(RequestStruct):
    """A foreign entity's home registration: its country and its number there."""

    country: Country
    number: Identifier


class Applicant(RequestStruct):
    """The listed person, or the representative of a listed organisation, with the listed
    party's full identifier: it must be the listing's (never echoed back). Exactly one
    identifier, as in a bank's check: a person's `id_number` with its `id_type` (and
    `nationality` with a passport), or an organisation's `credit_code`, `organization_code`
    or `registration`."""

    name: Text
    id_number: Identifier | None = None
    id_type: IdType | None = None
    nationality: Country | None = None
    credit_code: Identifier | None = None
    organization_code: Identifier | None = None
    registration: HomeRegistration | None = None
    role: Literal["debtor", "representative"] = "debtor"


class AttachmentIn(RequestStruct):
    filename: Text
    media_type: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    content_base64: Content


# Chosen by the applicant (a random UUID will do) and kept until the answer arrives: only its
# sender knows it, so a resend with it is answered with the application, not refused.
IdempotencyKey = Annotated[str, msgspec.Meta(min_length=16, max_length=64, pattern="^[A-Za-z0-9_-]+$")]


class ApplicationIn(RequestStruct):
    listing: ListingRef
    applicant: Applicant
    ground: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    statement: LongText
    contact: Text
    attachments: list[AttachmentIn] = msgspec.field(default_factory=list)
    idempotency_key: IdempotencyKey | None = None


class ApplicationReceipt(msgspec.Struct):
    """Keep both: with them the applicant follows the application. The code is shown once,
    or again, newly issued, to a resend with the same idempotency key."""

    application_number: str
    tracking_code: str
    status: str
    filed_on: date
    review_due_on: date
    # A deadline counted Monday to Friday: the installed calendar does not cover its year.
    deadline_provisional: bool


class TrackingIn(RequestStruct):
    application_number: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    tracking_code: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class ReconsiderationIn(RequestStruct):
    application_number: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    tracking_code: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    statement: LongText


class DecisionPublic(msgspec.Struct):
    stage: Literal["review", "reconsideration"]
    court_code: str
    court_name: str
    outcome: Literal["upheld", "dismissed"]
    action: str
    document_number: str
    decided_on: date
    reasons: str


class ApplicationStatus(msgspec.Struct):
    """What the applicant sees: the procedure, never the identifier."""

    application_number: str
    status: str
    ground: str
    listing_id: str
    case_number: str
    court_code: str
    court_name: str
    filed_on: date
    review_due_on: date | None
    decisions: list[DecisionPublic]
    reconsideration_until: date | None
    reconsideration_court: str | None
    reconsideration_due_on: date | None
    may_request_reconsideration: bool
    correction_due_on: date | None
    carried_out: bool
    listing_status: str
    # A deadline counted Monday to Friday: the installed calendar does not cover its year.
    deadline_provisional: bool


# ---- the deciding courts and admins ----


class DecisionIn(msgspec.Struct):
    """A court's decision on an application, signed like a listing (SPC Art. 11-12)."""

    application_number: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    listing_id: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    stage: Literal["review", "reconsideration"]
    outcome: Literal["upheld", "dismissed"]
    # review/upheld: removal or amendment sent in the same request, or to_follow (within
    # three working days); reconsideration/upheld: ordered (the listing court carries it
    # out); dismissed: none.
    action: Literal["removal", "amendment", "to_follow", "ordered", "none"]
    document_number: Text
    decided_on: date
    reasons: LongText


class FindingIn(msgspec.Struct):
    """A wrongful or inaccurate listing the court found itself (SPC Art. 9)."""

    listing_id: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    ground: Literal["wrongly_listed", "inaccurate_information"]
    found_on: date
    action: Literal["removal", "amendment", "to_follow"]
    document_number: Text
    decided_on: date
    reasons: LongText


class DecisionEnvelope(msgspec.Struct):
    """The signed decision, with the listing court's signed removal or amendment when the
    decision carries one out in the same step (each as `POST .../removal` or `.../amendments`
    takes it)."""

    decision: DecisionIn
    signature: SignatureIn
    removal: dict[str, object] | None = None
    amendment: dict[str, object] | None = None


class FindingEnvelope(msgspec.Struct):
    finding: FindingIn
    signature: SignatureIn
    removal: dict[str, object] | None = None
    amendment: dict[str, object] | None = None


class AttachmentRead(msgspec.Struct):
    number: int
    filename: str
    media_type: str
    size: int
    sha256: str


class DecisionRead(msgspec.Struct):
    stage: str
    court_code: str
    outcome: str
    action: str
    decided_on: date
    on_time: bool
    key_id: str
    signature: str
    content_sha256: str
    signed_json: str
    recorded_at: str


class CorrectionRead(msgspec.Struct):
    """Everything the deciding court needs, the applicant's words and contact included."""

    id: str
    listing_id: str
    case_number: str
    court_code: str
    origin: Literal["application", "court"]
    ground: str
    status: str
    filed_at: str
    review_due_on: date | None
    applicant: dict[str, str] | None
    statement: str | None
    attachments: list[AttachmentRead]
    decisions: list[DecisionRead]
    reconsideration_court: str | None
    reconsideration_requested_at: str | None
    reconsideration_due_on: date | None
    reconsideration_statement: str | None
    correction_due_on: date | None
    deadline_provisional: bool
    carried_out_at: str | None
    carried_out_on_time: bool | None


class CorrectionSummary(msgspec.Struct):
    """One line of a court's queue or of the overdue list: what is due, by when."""

    id: str
    listing_id: str
    case_number: str
    court_code: str
    # The court whose move it is: the listing court, or the superior on reconsideration.
    deciding_court: str
    origin: str
    ground: str
    status: str
    # What is awaited: review, reconsideration, or correction (carry out an upheld one).
    awaiting: Literal["review", "reconsideration", "correction"] | None
    due_on: date | None
    overdue: bool
    days_overdue: int
    # A deadline counted Monday to Friday: the installed calendar does not cover its year.
    deadline_provisional: bool


class CorrectionPage(msgspec.Struct):
    corrections: list[CorrectionSummary]
    total: int


class DecisionResult(msgspec.Struct):
    id: str
    status: str
    correction_due_on: date | None
    carried_out: bool
    listing_version: int | None = None


# ---- removal certificates ----


class CertificateIn(RequestStruct):
    """The listing, and the full identifier of the person it listed (never echoed): exactly
    one, with the fields of `Applicant`."""

    listing: ListingRef
    id_number: Identifier | None = None
    id_type: IdType | None = None
    nationality: Country | None = None
    credit_code: Identifier | None = None
    organization_code: Identifier | None = None
    registration: HomeRegistration | None = None


class CertificateClaims(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What a certificate says, and nothing more."""

    iss: str
    typ: str
    # 2; absent from version 1 certificates.
    v: int | None = None
    jti: str
    iat: int
    listing_id: str
    court_code: str
    court_name: str
    case_number: str
    name: str
    subject_kind: str
    # base64url(HMAC-SHA256(key = the nonce, kind 0x1f identifier 0x1f)); the nonce is not in
    # the certificate, so only a verifier the holder gives it to can test a number.
    subject_commitment: str | None = None
    # Version 1 only: the same HMAC keyed with `subject_salt`, which the token carried.
    subject_salt: str | None = None
    subject_digest: str | None = None
    listed_on: str
    removed_on: str
    reason: str
    reason_text: str


class CertificateOut(msgspec.Struct):
    # A compact JWS (JWT, EdDSA) under the registry's key at /.well-known/jwks.json.
    certificate: str
    verification_url: str
    claims: CertificateClaims
    # base64url, the key of `subject_commitment`: kept apart from the certificate, and given
    # with the number only to a verifier who must confirm the certificate is the holder's.
    nonce: str


class VerifyIn(RequestStruct):
    certificate: Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]
    # Optional: the holder's identifier (the fields of `Applicant`), and the nonce they were
    # given with the certificate.
    id_number: Identifier | None = None
    id_type: IdType | None = None
    nationality: Country | None = None
    credit_code: Identifier | None = None
    organization_code: Identifier | None = None
    registration: HomeRegistration | None = None
    nonce: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class VerifyOut(msgspec.Struct, omit_defaults=True):
    genuine: bool
    # genuine, malformed, unsupported_algorithm, unknown_kid, altered, not_a_certificate
    reason: str
    detail: str
    claims: CertificateClaims | None = None
    # With a number: whether the certificate was issued to it.
    subject_matches: bool | None = None


class CorrectionEvent(msgspec.Struct):
    """One step of a correction, as the event log holds it (ids and codes only)."""

    seq: int
    occurred_at: str
    type: str
    court_code: str | None
    listing_id: str | None
    data: dict[str, object]


class CorrectionEventPage(msgspec.Struct):
    events: list[CorrectionEvent]
    # Ask again with `after` = this to get what came since (it moves past events of other
    # courts and of other types too).
    next_after: int

"""The correction procedure (SPC Provisions Art. 9, 11, 12) over a `Connection` in a transaction.

- `file_application`: the listed person applies; the listing is found by its id or case
  number *and* the blind index of the identifier the applicant gives (`registry.checks`
  computes it: one function for every lookup by identifier), so a wrong identifier is
  refused exactly as an unknown listing is. The applicant's words and files are encrypted.
- `decide`: the listing court (review) or its superior court (reconsideration) decides by a
  signed decision; an upheld review carries out its removal or amendment in the same
  transaction, or within three working days after (`carry_out`, a reader of the log).
- `record_finding`: a wrongful listing the court found itself (Art. 9), on the same deadlines.

Every step appends its event (ids and codes only) in the same transaction.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import unicodedata
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, or_, select, update

from registry.calendar import china_date, first_uncovered_day, working_days_between
from registry.checks.schemas import CheckSubject, RegistrationIn
from registry.checks.services import ParsedSubject, parse_subject
from registry.corrections.deadlines import (
    correction_deadline,
    reconsideration_deadline,
    reconsideration_window,
    review_deadline,
)
from registry.corrections.models import Correction, CorrectionAttachment, CorrectionDecision
from registry.corrections.schemas import (
    ATTACHMENT_TYPES,
    GROUNDS,
    ApplicationIn,
    ApplicationReceipt,
    ApplicationStatus,
    AttachmentIn,
    AttachmentRead,
    CorrectionEvent,
    CorrectionEventPage,
    CorrectionPage,
    CorrectionRead,
    CorrectionSummary,
    DecisionIn,
    DecisionPublic,
    DecisionRead,
    DecisionResult,
    FindingIn,
)
from registry.courts.models import Court
from registry.courts.services import court_exists
from registry.eventlog.readers import LogEvent, LogReader, read_events
from registry.eventlog.services import EventDraft, append_events, head, lock_head
from registry.eventlog.types import EventType
from registry.identity.crypto import BlindIndex, DataKeyring, Secrets
from registry.identity.identifiers import normalise_case_number, normalise_text
from registry.identity.signing import b64url
from registry.ids import is_id, new_id
from registry.listings import services as listings
from registry.listings.models import Listing
from registry.listings.prepare import Preparer, _canonical, _convert, _split_envelope, require_ascii_digits
from registry.listings.schemas import SignatureIn
from registry.problems import Problem
from registry.text import check_text
from registry.timeutil import iso

PURPOSE_APPLICATION = b"correction.application"
PURPOSE_RECONSIDERATION = b"correction.reconsideration"
PURPOSE_ATTACHMENT = b"correction.attachment"
PURPOSE_ATTACHMENT_NAME = b"correction.attachment_name"
PURPOSE_DECISION = b"correction.decision"
TRACKING_CODE_BYTES = 24

OPEN_REVIEW = ("under_review", "under_reconsideration")
# The signed removal or amendment a decision may carry beside it, carrying it out at once.
CARRIED_OUT_BY = ("removal", "amendment")
# The status a decision leaves, by its stage and outcome.
DECIDED = {
    ("review", "upheld"): "upheld",
    ("review", "dismissed"): "dismissed",
    ("reconsideration", "upheld"): "upheld_on_reconsideration",
    ("reconsideration", "dismissed"): "dismissed_on_reconsideration",
}
# Decided for the applicant (or found by the court): the listing must be corrected.
TO_CARRY_OUT = ("upheld", "upheld_on_reconsideration", "found_by_court")
# What a decision's own removal or amendment may be, by the ground it corrects (`corrects`).
ACTIONS_FOR = {
    "wrongly_listed": ("removal",),
    "should_be_deleted": ("removal",),
    "inaccurate_information": ("removal", "amendment"),
}

# What a file must begin with to be what it says it is: the declared type is not trusted.
_MAGIC = {
    "application/pdf": (b"%PDF-",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
}

NO_MATCH = Problem(
    404,
    "listing_not_found",
    "no published listing matches this listing and identifier",
)
NOT_FOUND = Problem(404, "correction_not_found", "no application has this number and tracking code")


def corrects(ground: str, change: str, reason: str | None = None) -> bool:
    """Whether a change of the listing (`amended`, `removed` with its `reason`, or `expired`)
    is the correction `ground` asks for (SPC Provisions Art. 9, 11): a wrongful listing is
    revoked, a removal with the reason `wrongly_listed`; a listing that should be deleted
    leaves the list, removed for any reason or at its term's end; inaccurate information is
    amended, or leaves with the listing. Anything else leaves the correction to be carried out."""
    if ground == "wrongly_listed":
        return change == "removed" and reason == "wrongly_listed"
    if ground == "should_be_deleted":
        return change in ("removed", "expired")
    return change in ("amended", "removed", "expired")


# ---- the applicant ----


def _tracking_hash(code: str) -> bytes:
    return hashlib.sha256(code.encode()).digest()


# The applicant's identifier fields (`Applicant`, `CertificateIn`, `VerifyIn`): a bank's
# subject's (`registry.checks.schemas.CheckSubject`), read by the same rules.
IDENTITY_FIELDS = ("id_number", "id_type", "nationality", "credit_code", "organization_code", "registration")
_IDENTIFIERS = ("id_number", "credit_code", "organization_code", "registration")
# The field a refusal of the identifier is about (`registry.identity.types`' codes); any other
# (`subject_identifier`: none or several identifiers, or an id_type without an id_number) is
# about the applicant's identifier as a whole.
_FIELD_OF = {
    "unknown_id_type": "id_type",
    "invalid_nationality": "nationality",
    "invalid_id_number": "id_number",
    "invalid_credit_code": "credit_code",
    "invalid_organization_code": "organization_code",
    "invalid_registration_country": "registration/country",
    "invalid_registration_number": "registration/number",
}


def names_identity(holder: Any) -> bool:
    """Whether `holder` gives any of the identifier fields."""
    return any(getattr(holder, name) is not None for name in IDENTITY_FIELDS)


def _identity_pointer(holder: Any, code: str, base: str) -> str | None:
    field = _FIELD_OF.get(code)
    if code in ("invalid_id_number", "invalid_credit_code") and getattr(holder, str(field)) is None:
        # Text no parser reads is called one of these two whatever it was given as: point at
        # the identifier given.
        field = next((name for name in _IDENTIFIERS if getattr(holder, name) is not None), None)
    return f"{base}/{field}" if field is not None else base or None


def parse_identity(holder: Any, blind_index: BlindIndex, base: str = "/applicant") -> ParsedSubject:
    """The listed party's identifier as `holder` gives it, of any type a listing is made under,
    validated and normalised as a bank's check does (`registry.checks.services.parse_subject`:
    exactly one identifier; the same codes): 422 with the pointer, below `base`, to the field
    at fault."""
    registration = holder.registration
    subject = CheckSubject(
        id_number=holder.id_number,
        id_type=holder.id_type,
        nationality=holder.nationality,
        credit_code=holder.credit_code,
        organization_code=holder.organization_code,
        registration=None
        if registration is None
        else RegistrationIn(country=registration.country, number=registration.number),
    )
    parsed = parse_subject(0, subject, blind_index)
    if parsed.error is not None:
        raise Problem(
            422,
            parsed.error.code,
            parsed.error.detail,
            pointer=_identity_pointer(holder, parsed.error.code, base),
        )
    return parsed


def _find_listing(
    conn: Connection, ref: Any, applicant: Any, secrets_: Secrets, base: str = "/applicant"
) -> Any:
    """The listing the applicant names, if the identifier given is its debtor's; else the one
    refusal for an unknown listing and a wrong identifier alike (no oracle)."""
    if (ref.id is None) == (ref.case_number is None):
        raise Problem(
            422, "invalid_field", "give the listing's id or its case number, not both", pointer="/listing"
        )
    subject = parse_identity(applicant, secrets_.blind_index, base)
    query = select(Listing).where(Listing.debtor_id_blind.in_(subject.candidates))
    if ref.id is not None:
        if not is_id(ref.id):
            raise NO_MATCH
        query = query.where(Listing.id == ref.id)
    else:
        check_text(ref.case_number, "/listing/case_number")
        query = query.where(Listing.case_number == normalise_case_number(ref.case_number))
    rows = conn.execute(query.order_by(Listing.listed_on.desc())).all()
    active = [row for row in rows if row.status == "active"]
    if not rows:
        raise NO_MATCH
    return (active or rows)[0]


def _attachment(item: AttachmentIn, index: int, max_bytes: int) -> tuple[bytes, str, str]:
    pointer = f"/attachments/{index}"
    if item.media_type not in ATTACHMENT_TYPES:
        raise Problem(
            415,
            "attachment_type_refused",
            f"attachments are {', '.join(ATTACHMENT_TYPES)}",
            pointer=f"{pointer}/media_type",
        )
    if len(item.content_base64) > (max_bytes + 2) // 3 * 4 + 4:
        raise Problem(
            413,
            "attachment_too_large",
            f"an attachment is at most {max_bytes} bytes",
            pointer=f"{pointer}/content_base64",
            extra={"limit": max_bytes},
        )
    try:
        content = base64.b64decode(item.content_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Problem(
            422, "invalid_field", "content_base64 is not base64", pointer=f"{pointer}/content_base64"
        ) from exc
    if len(content) > max_bytes:
        raise Problem(
            413,
            "attachment_too_large",
            f"an attachment is at most {max_bytes} bytes",
            pointer=f"{pointer}/content_base64",
            extra={"limit": max_bytes},
        )
    if not content.startswith(_MAGIC[item.media_type]):
        raise Problem(
            415,
            "attachment_type_refused",
            f"the file is not a {item.media_type}",
            pointer=f"{pointer}/content_base64",
        )
    check_text(item.filename, f"{pointer}/filename")
    return content, item.media_type, item.filename


def check_attachments(items: Sequence[AttachmentIn], max_count: int, max_bytes: int) -> None:
    """The attachments' bounds, before anything else is looked at."""
    if len(items) > max_count:
        raise Problem(
            422,
            "too_many_attachments",
            f"an application carries at most {max_count} attachments",
            pointer="/attachments",
            extra={"limit": max_count},
        )
    for index, item in enumerate(items):
        _attachment(item, index, max_bytes)


def file_application(
    conn: Connection,
    application: ApplicationIn,
    secrets_: Secrets,
    *,
    max_attachments: int,
    max_attachment_bytes: int,
    now: datetime,
) -> ApplicationReceipt:
    """Art. 11: record the application against the listing; the listing stays published."""
    if application.ground not in GROUNDS:
        raise Problem(422, "unknown_ground", f"ground must be one of {', '.join(GROUNDS)}", pointer="/ground")
    for pointer, text in (
        ("/applicant/name", application.applicant.name),
        ("/contact", application.contact),
    ):
        check_text(text, pointer)
        if not normalise_text(text):
            raise Problem(422, "invalid_field", "text is empty", pointer=pointer)
    check_text(application.statement, "/statement", multiline=True)
    if not application.statement.strip():
        raise Problem(422, "invalid_field", "text is empty", pointer="/statement")
    check_attachments(application.attachments, max_attachments, max_attachment_bytes)
    files = [
        _attachment(item, index, max_attachment_bytes) for index, item in enumerate(application.attachments)
    ]
    lock_head(conn)
    listing = _find_listing(conn, application.listing, application.applicant, secrets_)
    words = {
        "name": normalise_text(application.applicant.name),
        "role": application.applicant.role,
        "contact": normalise_text(application.contact),
        "statement": application.statement,
    }
    request_hash = (
        None
        if application.idempotency_key is None
        else _request_hash(application.idempotency_key, listing.id, application.ground, words, files)
    )
    if request_hash is not None:
        # Before the listing's status: an upheld application has removed it since.
        filed = conn.execute(
            select(Correction).where(
                Correction.listing_id == listing.id, Correction.request_hash == request_hash
            )
        ).one_or_none()
        if filed is not None:
            return _reissue(conn, filed, now)
    if listing.status != "active":
        raise Problem(
            409,
            "listing_not_active",
            "this listing is no longer published: ask for a removal certificate instead",
        )
    pending = conn.execute(
        select(Correction.id).where(Correction.listing_id == listing.id, Correction.status.in_(OPEN_REVIEW))
    ).first()
    if pending is not None:
        raise Problem(
            409,
            "correction_pending",
            "an application about this listing is under review: follow it with its number and code",
        )
    today = china_date(now)
    deadline = review_deadline(today)
    correction_id = new_id()
    code = secrets.token_urlsafe(TRACKING_CODE_BYTES)
    keyring = secrets_.keyring
    conn.execute(
        insert(Correction),
        [
            {
                "id": correction_id,
                "listing_id": listing.id,
                "court_code": listing.court_code,
                "origin": "application",
                "ground": application.ground,
                "status": "under_review",
                "tracking_hash": _tracking_hash(code),
                "request_hash": request_hash,
                "application_cipher": keyring.encrypt(
                    json.dumps(words, ensure_ascii=False).encode(), PURPOSE_APPLICATION
                ),
                "filed_at": now,
                "filed_on": today,
                "review_due_on": deadline.due,
                "deadline_provisional": deadline.provisional,
                "updated_at": now,
            }
        ],
    )
    if files:
        conn.execute(
            insert(CorrectionAttachment),
            [
                {
                    "correction_id": correction_id,
                    "number": number,
                    "media_type": media_type,
                    "size": len(content),
                    "sha256": hashlib.sha256(content).digest(),
                    "name_cipher": keyring.encrypt(filename.encode(), PURPOSE_ATTACHMENT_NAME),
                    "content_cipher": keyring.encrypt(content, PURPOSE_ATTACHMENT),
                }
                for number, (content, media_type, filename) in enumerate(files, start=1)
            ],
        )
    append_events(
        conn,
        [
            EventDraft(
                EventType.CORRECTION_FILED,
                "public",
                court_code=listing.court_code,
                listing_id=listing.id,
                listing_version=listing.version,
                data={
                    "correction_id": correction_id,
                    "ground": application.ground,
                    "attachments": len(files),
                    "review_due_on": deadline.due.isoformat(),
                },
            )
        ],
        now,
    )
    return ApplicationReceipt(
        application_number=correction_id,
        tracking_code=code,
        status="under_review",
        filed_on=today,
        review_due_on=deadline.due,
        deadline_provisional=deadline.provisional,
    )


def _request_hash(
    key: str, listing_id: str, ground: str, words: dict[str, str], files: list[tuple[bytes, str, str]]
) -> bytes:
    """What recognises a resent application: the applicant's own idempotency key (proof that
    it is the same sender: the listing, the identifier and even the statement may be known to
    others) with what the application says. Never the identifier: the listing stands for it."""
    said = [
        key,
        listing_id,
        ground,
        words,
        [
            [media_type, filename, hashlib.sha256(content).hexdigest()]
            for content, media_type, filename in files
        ],
    ]
    return hashlib.sha256(json.dumps(said, ensure_ascii=False, sort_keys=True).encode()).digest()


def _reissue(conn: Connection, row: Any, now: datetime) -> ApplicationReceipt:
    """The receipt of an application filed before, with a new tracking code: the first one is
    kept only as its hash, so it cannot be shown again, and it stops working."""
    code = secrets.token_urlsafe(TRACKING_CODE_BYTES)
    conn.execute(
        update(Correction)
        .where(Correction.id == row.id)
        .values(tracking_hash=_tracking_hash(code), updated_at=now)
    )
    return ApplicationReceipt(
        application_number=row.id,
        tracking_code=code,
        status=row.status,
        filed_on=row.filed_on,
        review_due_on=row.review_due_on,
        deadline_provisional=row.deadline_provisional,
    )


def application_number(text: str) -> str:
    """An application number as typed: a ULID, Crockford base32, which is case-insensitive
    (NFKC first: full-width letters and digits are the same number)."""
    return unicodedata.normalize("NFKC", text).strip().upper()


def _tracked(conn: Connection, number: str, code: str, *, lock: bool = False) -> Any:
    number = application_number(number)
    if not is_id(number):
        raise NOT_FOUND
    query = select(Correction).where(Correction.id == number, Correction.origin == "application")
    row = conn.execute(query.with_for_update() if lock else query).one_or_none()
    if row is None or row.tracking_hash is None:
        # The same work whether or not the number exists.
        hmac.compare_digest(_tracking_hash(code), bytes(32))
        raise NOT_FOUND
    if not hmac.compare_digest(_tracking_hash(code), bytes(row.tracking_hash)):
        raise NOT_FOUND
    return row


def _court_names(conn: Connection) -> dict[str, str]:
    return {row.code: row.name for row in conn.execute(select(Court.code, Court.name))}


def _decisions(conn: Connection, correction_id: str) -> list[Any]:
    return list(
        conn.execute(
            select(CorrectionDecision)
            .where(CorrectionDecision.correction_id == correction_id)
            .order_by(CorrectionDecision.created_at)
        )
    )


def _signed_decision(row: Any, keyring: DataKeyring) -> dict[str, Any]:
    signed: dict[str, Any] = json.loads(keyring.decrypt(bytes(row.signed_cipher), PURPOSE_DECISION))
    return signed


def application_status(
    conn: Connection, number: str, code: str, keyring: DataKeyring, today: date
) -> ApplicationStatus:
    """What the applicant sees with the number and the tracking code."""
    row = _tracked(conn, number, code)
    listing = conn.execute(
        select(Listing.case_number, Listing.status).where(Listing.id == row.listing_id)
    ).one()
    names = _court_names(conn)
    decisions = []
    for decision in _decisions(conn, row.id):
        signed = _signed_decision(decision, keyring)
        decisions.append(
            DecisionPublic(
                stage=decision.stage,
                court_code=decision.court_code,
                court_name=names.get(decision.court_code, decision.court_code),
                outcome=decision.outcome,
                action=decision.action,
                document_number=normalise_case_number(str(signed.get("document_number", ""))),
                decided_on=decision.decided_on,
                reasons=str(signed.get("reasons", "")),
            )
        )
    return ApplicationStatus(
        application_number=row.id,
        status=row.status,
        ground=row.ground,
        listing_id=row.listing_id,
        case_number=listing.case_number,
        court_code=row.court_code,
        court_name=names.get(row.court_code, row.court_code),
        filed_on=row.filed_on,
        review_due_on=row.review_due_on,
        decisions=decisions,
        reconsideration_until=row.reconsideration_until,
        reconsideration_court=row.reconsideration_court,
        reconsideration_due_on=row.reconsideration_due_on,
        # Only where the registry knows the court to send it to (else 409 no_superior_court:
        # the applicant asks that court directly).
        may_request_reconsideration=row.status == "dismissed"
        and row.reconsideration_until is not None
        and today <= row.reconsideration_until
        and _superior_of(conn, row.court_code) is not None,
        correction_due_on=row.correction_due_on,
        carried_out=row.carried_out_at is not None,
        listing_status=listing.status,
        deadline_provisional=row.deadline_provisional,
    )


def request_reconsideration(
    conn: Connection, number: str, code: str, statement: str, keyring: DataKeyring, *, now: datetime
) -> ApplicationStatus:
    """Art. 12: within ten days of a dismissal, to the court one level up."""
    check_text(statement, "/statement", multiline=True)
    if not statement.strip():
        raise Problem(422, "invalid_field", "text is empty", pointer="/statement")
    lock_head(conn)
    row = _tracked(conn, number, code, lock=True)
    today = china_date(now)
    if row.status != "dismissed":
        raise Problem(
            409,
            "reconsideration_not_available",
            "reconsideration follows a dismissal of the review, once",
        )
    if row.reconsideration_until is None or today > row.reconsideration_until:
        raise Problem(
            409,
            "reconsideration_too_late",
            "reconsideration is asked within ten days of the dismissal (SPC Provisions Art. 12)",
        )
    superior = conn.execute(select(Court.superior_code).where(Court.code == row.court_code)).scalar()
    if superior is None:
        raise Problem(
            409,
            "no_superior_court",
            "the registry does not know the superior court of the listing court: apply to it directly",
        )
    deadline = reconsideration_deadline(today)
    conn.execute(
        update(Correction)
        .where(Correction.id == row.id)
        .values(
            status="under_reconsideration",
            reconsideration_court=superior,
            reconsideration_requested_at=now,
            reconsideration_due_on=deadline.due,
            reconsideration_cipher=keyring.encrypt(statement.encode(), PURPOSE_RECONSIDERATION),
            deadline_provisional=row.deadline_provisional or deadline.provisional,
            updated_at=now,
        )
    )
    append_events(
        conn,
        [
            EventDraft(
                EventType.CORRECTION_RECONSIDERATION_REQUESTED,
                "public",
                court_code=superior,
                listing_id=row.listing_id,
                data={
                    "correction_id": row.id,
                    "listing_court": row.court_code,
                    "due_on": deadline.due.isoformat(),
                },
            )
        ],
        now,
    )
    return application_status(conn, number, code, keyring, today)


# ---- the courts ----


def _verify_decision(
    conn: Connection, envelope: Any, name: str, kind: type[Any], court: str, secrets_: Secrets, now: datetime
) -> tuple[Any, Preparer, bytes, str, bytes]:
    """The decision's body and its verified signature by a key of `court` (the rules of listings:
    known, not revoked, in validity, the court's own)."""
    body, signature = _split_envelope(envelope, name, also=CARRIED_OUT_BY)
    signed = _canonical(body)
    decision = _convert(body, kind, f"/{name}")
    check_text(decision.reasons, f"/{name}/reasons", multiline=True)
    if not decision.reasons.strip():
        raise Problem(422, "invalid_field", "text is empty", pointer=f"/{name}/reasons")
    document_number(decision.document_number, f"/{name}/document_number")
    key_ids = {signature.key_id}
    for inner in CARRIED_OUT_BY:
        part = envelope.get(inner) if isinstance(envelope, dict) else None
        sig = part.get("signature") if isinstance(part, dict) else None
        if isinstance(sig, dict) and isinstance(sig.get("key_id"), str):
            key_ids.add(sig["key_id"])
    preparer = Preparer(listings.load_context(conn, secrets_, now, key_ids))
    key_id, sig = preparer._verify(signature, signed, court)
    return decision, preparer, signed, key_id, sig


_ASCII_DIGITS = frozenset("0123456789")


def document_number(raw: str, pointer: str) -> str:
    """A decision's or finding's number (文书号) as it is shown: folded as a listing's document
    numbers are (`registry.listings.prepare`: NFKC, the case numbers' display form), not
    empty, with its digits in ASCII, and some: a number a person can look the document up by."""
    check_text(raw, pointer)
    text = normalise_case_number(raw)
    if not text:
        raise Problem(422, "invalid_field", "text is empty", pointer=pointer)
    require_ascii_digits(text, pointer)
    if _ASCII_DIGITS.isdisjoint(text):
        raise Problem(422, "invalid_field", "a document number holds its number", pointer=pointer)
    return text


def _carry_out(
    conn: Connection,
    envelope: dict[str, Any],
    action: str,
    listing: Any,
    ground: str,
    preparer: Preparer,
    *,
    actor: str,
    now: datetime,
) -> int | None:
    """The removal or amendment the decision carries, through the listings' own rules; the
    listing's version after it, or None when the action is to follow."""
    removal, amendment = envelope.get("removal"), envelope.get("amendment")
    expected = {"removal": (removal, amendment), "amendment": (amendment, removal)}.get(action)
    if expected is None:
        if removal is not None or amendment is not None:
            raise Problem(
                422,
                "decision_inconsistent",
                f"a decision whose action is {action} carries no removal or amendment",
                pointer="/decision/action",
            )
        return None
    if action not in ACTIONS_FOR[ground]:
        raise Problem(
            422,
            "decision_inconsistent",
            "a wrongful listing is revoked by a removal with the reason wrongly_listed, not amended"
            if ground == "wrongly_listed"
            else "a listing that should be deleted is corrected by its removal, not amended",
            pointer="/decision/action",
        )
    present, other = expected
    if present is None or other is not None:
        raise Problem(
            422,
            "decision_inconsistent",
            f"a decision whose action is {action} carries its signed {action} and nothing else",
            pointer=f"/{action}",
        )
    if action == "removal":
        try:
            prepare = preparer.removal(present)
        except Problem as problem:
            raise _inside(problem, action) from None

        def checked(court: str) -> Any:
            prepared = prepare(court)
            if ground == "wrongly_listed" and prepared.reason != "wrongly_listed":
                raise Problem(
                    422,
                    "decision_inconsistent",
                    "a wrongful listing is removed with the reason wrongly_listed",
                    pointer="/removal/reason",
                )
            return prepared

        try:
            result = listings.remove_listing(
                conn, listing.id, checked, actor=actor, now=now, client_court=listing.court_code
            )
        except Problem as problem:
            raise _inside(problem, action) from None
    else:
        try:
            prepared = preparer.listing(present)
            result = listings.amend_listing(
                conn, listing.id, prepared, actor=actor, now=now, client_court=listing.court_code
            )
        except Problem as problem:
            raise _inside(problem, action) from None
    if result.outcome == "unchanged":
        raise Problem(
            422,
            "decision_inconsistent",
            f"this {action} was already recorded: reference it with the action to_follow",
        )
    return result.version


def _inside(problem: Problem, member: str) -> Problem:
    """A refusal of the removal or amendment a decision carries, pointing into the decision's
    envelope (`/removal/removal/reason`, `/amendment/listing/...`)."""
    if problem.pointer:
        problem.pointer = f"/{member}{problem.pointer}"
    return problem


def _store_decision(
    conn: Connection,
    correction_id: str,
    stage: str,
    court: str,
    decision: Any,
    signed: bytes,
    key_id: str,
    signature: bytes,
    keyring: DataKeyring,
    *,
    on_time: bool,
    actor: str,
    now: datetime,
) -> None:
    outcome = getattr(decision, "outcome", "upheld")
    conn.execute(
        insert(CorrectionDecision),
        [
            {
                "correction_id": correction_id,
                "stage": stage,
                "court_code": court,
                "outcome": outcome,
                "action": decision.action,
                "decided_on": decision.decided_on,
                "content_sha256": hashlib.sha256(signed).digest(),
                "signed_cipher": keyring.encrypt(signed, PURPOSE_DECISION),
                "signature": signature,
                "key_id": key_id,
                "on_time": on_time,
                "decided_by": actor,
                "created_at": now,
            }
        ],
    )


def _recorded(
    conn: Connection, row: Any, envelope: dict[str, Any], client_court: str | None
) -> DecisionResult | None:
    """The result of this very signed decision (same bytes, key and signature) if it was
    recorded already: a court resending it, its answer lost, is told what it did, as a resent
    listing is `unchanged`. Whether it has been carried out is told as it is now."""
    body, signature = _split_envelope(envelope, "decision", also=CARRIED_OUT_BY)
    stored = conn.execute(
        select(CorrectionDecision).where(
            CorrectionDecision.correction_id == row.id,
            CorrectionDecision.content_sha256 == hashlib.sha256(_canonical(body)).digest(),
        )
    ).first()
    return _result_of(row, stored, signature, client_court)


def _recorded_finding(
    conn: Connection, listing_id: str, envelope: dict[str, Any], client_court: str | None
) -> DecisionResult | None:
    """The result of this very signed finding (same bytes, key and signature) about the
    listing, if it was recorded already: its resend is told what it did, as a decision's is."""
    body, signature = _split_envelope(envelope, "finding", also=CARRIED_OUT_BY)
    stored = conn.execute(
        select(CorrectionDecision)
        .join(Correction, Correction.id == CorrectionDecision.correction_id)
        .where(
            Correction.listing_id == listing_id,
            CorrectionDecision.stage == "finding",
            CorrectionDecision.content_sha256 == hashlib.sha256(_canonical(body)).digest(),
        )
    ).first()
    if stored is None:
        return None
    row = conn.execute(select(Correction).where(Correction.id == stored.correction_id)).one()
    return _result_of(row, stored, signature, client_court)


def _result_of(
    row: Any, stored: Any, signature: SignatureIn, client_court: str | None
) -> DecisionResult | None:
    """What the stored decision or finding did, if it is the one signed with `signature` (and
    was the client court's)."""
    if (
        stored is None
        or stored.key_id != signature.key_id
        or signature.value != b64url(bytes(stored.signature))
        or (client_court is not None and client_court != stored.court_code)
    ):
        return None
    upheld = stored.outcome == "upheld"
    version = None
    if stored.action in ("removal", "amendment"):
        # What the decision's own removal left (the version decided) or its amendment (the next).
        version = row.decided_version + (stored.action == "amendment")
    return DecisionResult(
        id=row.id,
        status="found_by_court" if stored.stage == "finding" else DECIDED[(stored.stage, stored.outcome)],
        correction_due_on=row.correction_due_on if upheld else None,
        carried_out=upheld and row.carried_out_at is not None,
        listing_version=version,
    )


def _superior_of(conn: Connection, court_code: str) -> str | None:
    superior: str | None = conn.execute(select(Court.superior_code).where(Court.code == court_code)).scalar()
    return superior


def decide(
    conn: Connection,
    correction_id: str,
    envelope: Any,
    secrets_: Secrets,
    *,
    client_court: str | None,
    actor: str,
    now: datetime,
) -> DecisionResult:
    """A signed decision on an application: the listing court reviews (Art. 11), the court one
    level up reconsiders (Art. 12). Refused from any other court."""
    lock_head(conn)
    row = (
        conn.execute(select(Correction).where(Correction.id == correction_id).with_for_update()).one_or_none()
        if is_id(correction_id)
        else None
    )
    if row is None or (
        client_court is not None
        and client_court not in (row.court_code, row.reconsideration_court)
        # The superior court before any reconsideration is asked of it: the application is
        # its to know of (it will reconsider it), and a review is not its to decide (403).
        and client_court != _superior_of(conn, row.court_code)
    ):
        raise Problem(404, "correction_not_found", "no correction has this id")
    if not isinstance(envelope, dict) or not isinstance(envelope.get("decision"), dict):
        raise Problem(422, "invalid_field", 'expected {"decision": {...}, "signature": {...}}', pointer="")
    stage = envelope["decision"].get("stage")
    if stage not in ("review", "reconsideration"):
        raise Problem(422, "invalid_field", "stage is review or reconsideration", pointer="/decision/stage")
    if row.status == "under_review" and stage == "review":
        court, due = row.court_code, row.review_due_on
    elif row.status == "under_reconsideration" and stage == "reconsideration":
        court, due = row.reconsideration_court, row.reconsideration_due_on
    else:
        recorded = _recorded(conn, row, envelope, client_court)
        if recorded is not None:
            return recorded
        raise Problem(
            409,
            "correction_not_open",
            f"the application is {row.status}: no {stage} decision is awaited",
            pointer="/decision/stage",
        )
    if client_court is not None and client_court != court:
        raise Problem(
            403,
            "not_deciding_court",
            "only the listing court reviews, and only its superior court reconsiders",
        )
    decision, preparer, signed, key_id, sig = _verify_decision(
        conn, envelope, "decision", DecisionIn, court, secrets_, now
    )
    if decision.application_number != row.id or decision.listing_id != row.listing_id:
        raise Problem(
            422,
            "decision_mismatch",
            "the signed decision names another application or listing",
            pointer="/decision/application_number",
        )
    today = china_date(now)
    earliest = row.filed_on if stage == "review" else china_date(row.reconsideration_requested_at)
    if not earliest <= decision.decided_on <= today:
        raise Problem(
            422,
            "date_out_of_range",
            f"decided_on is between {earliest} and {today}",
            pointer="/decision/decided_on",
        )
    allowed = {
        ("review", "upheld"): ("removal", "amendment", "to_follow"),
        ("review", "dismissed"): ("none",),
        ("reconsideration", "upheld"): ("ordered",),
        ("reconsideration", "dismissed"): ("none",),
    }[(stage, decision.outcome)]
    if decision.action not in allowed:
        raise Problem(
            422,
            "decision_inconsistent",
            f"a {stage} that is {decision.outcome} has the action {' or '.join(allowed)}",
            pointer="/decision/action",
        )
    listing = conn.execute(select(Listing).where(Listing.id == row.listing_id)).one()
    version = _carry_out(conn, envelope, decision.action, listing, row.ground, preparer, actor=actor, now=now)
    _store_decision(
        conn, row.id, stage, court, decision, signed, key_id, sig, secrets_.keyring,
        on_time=due is None or today <= due, actor=actor, now=now,
    )  # fmt: skip
    values: dict[str, Any] = {
        "updated_at": now,
        "decided_version": listing.version,
        "status": DECIDED[(stage, decision.outcome)],
    }
    if decision.outcome == "dismissed":
        if stage == "review":
            window = reconsideration_window(today)
            values["reconsideration_until"] = window.due
            values["deadline_provisional"] = row.deadline_provisional or window.provisional
    else:
        deadline = correction_deadline(decision.decided_on)
        values["correction_due_on"] = deadline.due
        values["deadline_provisional"] = row.deadline_provisional or deadline.provisional
        # Carried out by the decision's own removal or amendment, or before it: by the listing's
        # removal (or expiry). A listing that left the list before the decision is no longer
        # published and no removal of it can follow (one that is not active is refused):
        # nothing is left to carry out, whatever the ground asked for.
        if version is not None or listing.status != "active":
            values["carried_out_at"] = now
            values["carried_out_on_time"] = today <= deadline.due
    conn.execute(update(Correction).where(Correction.id == row.id).values(values))
    append_events(
        conn,
        [
            EventDraft(
                EventType.CORRECTION_DECIDED,
                actor,
                court_code=court,
                listing_id=row.listing_id,
                listing_version=version or listing.version,
                data={
                    "correction_id": row.id,
                    "stage": stage,
                    "outcome": decision.outcome,
                    "action": decision.action,
                    "key_id": key_id,
                    "signature": b64url(sig),
                    "content_sha256": hashlib.sha256(signed).hexdigest(),
                    "on_time": due is None or today <= due,
                },
            )
        ],
        now,
    )
    return DecisionResult(
        id=row.id,
        status=values["status"],
        correction_due_on=values.get("correction_due_on"),
        carried_out="carried_out_at" in values,
        listing_version=version,
    )


def record_finding(
    conn: Connection,
    envelope: Any,
    secrets_: Secrets,
    *,
    client_court: str | None,
    actor: str,
    now: datetime,
) -> tuple[DecisionResult, bool]:
    """Art. 9: the court found its listing wrongful or inaccurate: corrected within three
    working days of the finding, now (with the removal or amendment) or after (to_follow).
    With whether it was recorded now (False: the same signed finding was recorded before, and
    this is its result)."""
    lock_head(conn)
    if not isinstance(envelope, dict) or not isinstance(envelope.get("finding"), dict):
        raise Problem(422, "invalid_field", 'expected {"finding": {...}, "signature": {...}}', pointer="")
    listing_id = envelope["finding"].get("listing_id")
    listing = (
        conn.execute(select(Listing).where(Listing.id == listing_id)).one_or_none()
        if isinstance(listing_id, str) and is_id(listing_id)
        else None
    )
    if listing is None or (client_court is not None and listing.court_code != client_court):
        raise Problem(404, "listing_not_found", "no listing has this id", pointer="/finding/listing_id")
    recorded = _recorded_finding(conn, listing.id, envelope, client_court)
    if recorded is not None:
        # Sent again, its answer lost (its removal may have taken the listing off since).
        return recorded, False
    if listing.status != "active":
        raise Problem(409, "listing_not_active", f"the listing is already {listing.status}")
    finding, preparer, signed, key_id, sig = _verify_decision(
        conn, envelope, "finding", FindingIn, listing.court_code, secrets_, now
    )
    open_finding = conn.execute(
        select(Correction.id).where(
            Correction.listing_id == listing.id,
            Correction.status == "found_by_court",
            Correction.carried_out_at.is_(None),
        )
    ).first()
    if open_finding is not None:
        raise Problem(
            409,
            "finding_pending",
            f"finding {open_finding.id} on this listing is not carried out yet: correct the "
            "listing as it found before recording another",
        )
    today = china_date(now)
    if not listing.listed_on <= finding.found_on <= finding.decided_on <= today:
        raise Problem(
            422,
            "date_out_of_range",
            "listed_on <= found_on <= decided_on <= today",
            pointer="/finding/found_on",
        )
    version = _carry_out(
        conn, envelope, finding.action, listing, finding.ground, preparer, actor=actor, now=now
    )
    deadline = correction_deadline(finding.found_on)
    correction_id = new_id()
    conn.execute(
        insert(Correction),
        [
            {
                "id": correction_id,
                "listing_id": listing.id,
                "court_code": listing.court_code,
                "origin": "court",
                "ground": finding.ground,
                "status": "found_by_court",
                "tracking_hash": None,
                "application_cipher": None,
                "filed_at": now,
                "filed_on": finding.found_on,
                "review_due_on": None,
                "correction_due_on": deadline.due,
                "deadline_provisional": deadline.provisional,
                "carried_out_at": now if version is not None else None,
                "carried_out_on_time": (today <= deadline.due) if version is not None else None,
                "decided_version": listing.version,
                "updated_at": now,
            }
        ],
    )
    _store_decision(
        conn, correction_id, "finding", listing.court_code, finding, signed, key_id, sig,
        secrets_.keyring, on_time=True, actor=actor, now=now,
    )  # fmt: skip
    append_events(
        conn,
        [
            EventDraft(
                EventType.CORRECTION_FOUND_BY_COURT,
                actor,
                court_code=listing.court_code,
                listing_id=listing.id,
                listing_version=version or listing.version,
                data={
                    "correction_id": correction_id,
                    "ground": finding.ground,
                    "action": finding.action,
                    "key_id": key_id,
                    "signature": b64url(sig),
                    "content_sha256": hashlib.sha256(signed).hexdigest(),
                    "correction_due_on": deadline.due.isoformat(),
                },
            )
        ],
        now,
    )
    return (
        DecisionResult(
            id=correction_id,
            status="found_by_court",
            correction_due_on=deadline.due,
            carried_out=version is not None,
            listing_version=version,
        ),
        True,
    )


# ---- reading: the deciding courts, admins ----


def _visible(query: Any, court: str | None) -> Any:
    if court is None:
        return query
    return query.where(or_(Correction.court_code == court, Correction.reconsideration_court == court))


def read_correction(
    conn: Connection, correction_id: str, keyring: DataKeyring, viewer_court: str | None
) -> CorrectionRead:
    row = (
        conn.execute(
            _visible(select(Correction), viewer_court).where(Correction.id == correction_id)
        ).one_or_none()
        if is_id(correction_id)
        else None
    )
    if row is None:
        raise Problem(404, "correction_not_found", "no correction has this id")
    case_number = conn.execute(select(Listing.case_number).where(Listing.id == row.listing_id)).scalar_one()
    words = (
        json.loads(keyring.decrypt(bytes(row.application_cipher), PURPOSE_APPLICATION))
        if row.application_cipher is not None
        else None
    )
    attachments = [
        AttachmentRead(
            number=a.number,
            filename=keyring.decrypt(bytes(a.name_cipher), PURPOSE_ATTACHMENT_NAME).decode(),
            media_type=a.media_type,
            size=a.size,
            sha256=bytes(a.sha256).hex(),
        )
        for a in conn.execute(
            select(CorrectionAttachment)
            .where(CorrectionAttachment.correction_id == row.id)
            .order_by(CorrectionAttachment.number)
        )
    ]
    decisions = [
        DecisionRead(
            stage=d.stage,
            court_code=d.court_code,
            outcome=d.outcome,
            action=d.action,
            decided_on=d.decided_on,
            on_time=d.on_time,
            key_id=d.key_id,
            signature=b64url(bytes(d.signature)),
            content_sha256=bytes(d.content_sha256).hex(),
            signed_json=keyring.decrypt(bytes(d.signed_cipher), PURPOSE_DECISION).decode(),
            recorded_at=iso(d.created_at),
        )
        for d in _decisions(conn, row.id)
    ]
    return CorrectionRead(
        id=row.id,
        listing_id=row.listing_id,
        case_number=case_number,
        court_code=row.court_code,
        origin=row.origin,
        ground=row.ground,
        status=row.status,
        filed_at=iso(row.filed_at),
        review_due_on=row.review_due_on,
        applicant=None if words is None else {k: words[k] for k in ("name", "role", "contact")},
        statement=None if words is None else words["statement"],
        attachments=attachments,
        decisions=decisions,
        reconsideration_court=row.reconsideration_court,
        reconsideration_requested_at=iso(row.reconsideration_requested_at)
        if row.reconsideration_requested_at
        else None,
        reconsideration_due_on=row.reconsideration_due_on,
        reconsideration_statement=keyring.decrypt(
            bytes(row.reconsideration_cipher), PURPOSE_RECONSIDERATION
        ).decode()
        if row.reconsideration_cipher is not None
        else None,
        correction_due_on=row.correction_due_on,
        deadline_provisional=row.deadline_provisional,
        carried_out_at=iso(row.carried_out_at) if row.carried_out_at else None,
        carried_out_on_time=row.carried_out_on_time,
    )


def read_attachment(
    conn: Connection, correction_id: str, number: int, keyring: DataKeyring, viewer_court: str | None
) -> tuple[bytes, str]:
    read_correction(conn, correction_id, keyring, viewer_court)  # the same visibility
    row = conn.execute(
        select(CorrectionAttachment).where(
            CorrectionAttachment.correction_id == correction_id, CorrectionAttachment.number == number
        )
    ).one_or_none()
    if row is None:
        raise Problem(404, "attachment_not_found", "this correction has no such attachment")
    return keyring.decrypt(bytes(row.content_cipher), PURPOSE_ATTACHMENT), row.media_type


def _awaiting(row: Any) -> tuple[str | None, date | None, str]:
    """What is awaited of whom, by when: (what, due day, deciding court)."""
    if row.status == "under_review":
        return "review", row.review_due_on, row.court_code
    if row.status == "under_reconsideration":
        return "reconsideration", row.reconsideration_due_on, row.reconsideration_court
    if row.status in TO_CARRY_OUT and row.carried_out_at is None:
        return "correction", row.correction_due_on, row.court_code
    return None, None, row.reconsideration_court or row.court_code


def _summary(row: Any, today: date) -> CorrectionSummary:
    awaiting, due, deciding = _awaiting(row)
    overdue = due is not None and today > due
    return CorrectionSummary(
        id=row.id,
        listing_id=row.listing_id,
        case_number=row.case_number,
        court_code=row.court_code,
        deciding_court=deciding,
        origin=row.origin,
        ground=row.ground,
        status=row.status,
        awaiting=awaiting,  # type: ignore[arg-type]
        due_on=due,
        overdue=overdue,
        days_overdue=working_days_between(due, today) if overdue and due is not None else 0,
        deadline_provisional=row.deadline_provisional,
    )


_OPEN = or_(
    Correction.status.in_(OPEN_REVIEW),
    and_(Correction.status.in_(TO_CARRY_OUT), Correction.carried_out_at.is_(None)),
)


def list_corrections(
    conn: Connection,
    court: str | None,
    *,
    state: str,
    today: date,
    limit: int,
    offset: int,
) -> CorrectionPage:
    """A court's queue (its own listings' applications and the reconsiderations sent to it),
    or every court's for an admin: `open` (something awaited), `overdue`, or `all`. A court
    the registry does not know is refused (400 `unknown_court`), not answered with nothing."""
    if court is not None and not court_exists(conn, court):
        raise Problem(400, "unknown_court", f"no court has the code {court}", pointer="/query/court")
    query = _visible(
        select(Correction, Listing.case_number).join(Listing, Listing.id == Correction.listing_id), court
    )
    if state != "all":
        query = query.where(_OPEN)
    rows = [_summary(r, today) for r in conn.execute(query.order_by(Correction.filed_at, Correction.id))]
    if court is not None:
        # A reconsideration court sees the cases sent to it, not the listing court's others.
        rows = [r for r in rows if court in (r.court_code, r.deciding_court)]
    if state == "overdue":
        rows = [r for r in rows if r.overdue]
    return CorrectionPage(corrections=rows[offset : offset + limit], total=len(rows))


def overdue_counts(conn: Connection, today: date) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Open corrections by what is awaited, and overdue ones by (court, what): for /metrics."""
    open_counts: dict[str, int] = {"review": 0, "reconsideration": 0, "correction": 0}
    overdue: dict[tuple[str, str], int] = {}
    for row in conn.execute(select(Correction).where(_OPEN)):
        awaiting, due, deciding = _awaiting(row)
        if awaiting is None:
            continue
        open_counts[awaiting] += 1
        if due is not None and today > due:
            key = (deciding, awaiting)
            overdue[key] = overdue.get(key, 0) + 1
    return open_counts, overdue


def provisional_correction_deadlines(conn: Connection) -> list[date]:
    """Correction deadlines counted Monday to Friday on a year the calendar still does not cover."""
    start = first_uncovered_day()
    columns = (
        Correction.review_due_on,
        Correction.reconsideration_until,
        Correction.reconsideration_due_on,
        Correction.correction_due_on,
    )
    rows = conn.execute(
        select(*columns).where(
            Correction.deadline_provisional.is_(True), or_(*(column >= start for column in columns))
        )
    )
    # One flag per correction: of its deadlines, those on an uncovered year are the provisional ones.
    return [day for row in rows for day in row if day is not None and day >= start]


# ---- carrying out: a reader of the log ----


_CHANGES: dict[str, str] = {
    EventType.LISTING_AMENDED: "amended",
    EventType.LISTING_REMOVED: "removed",
    EventType.LISTING_EXPIRED: "expired",
}


def carry_out(conn: Connection, events: Sequence[LogEvent], now: datetime) -> None:
    """A change of a listing whose correction was upheld or found carries it out when it is
    the correction its ground asks for (`corrects`: an amendment after the decision, a version
    above the one decided on, only for inaccurate information; a removal with the reason
    wrongly_listed for a wrongful listing): on time when recorded by the third working day. (A
    listing already gone when the decision came was marked carried out then, if that removal
    was the correction.)"""
    by_listing: dict[str, list[LogEvent]] = {}
    for event in events:
        if event.listing_id is not None:
            by_listing.setdefault(event.listing_id, []).append(event)
    if not by_listing:
        return
    waiting = conn.execute(
        select(Correction).where(
            Correction.listing_id.in_(sorted(by_listing)),
            Correction.status.in_(TO_CARRY_OUT),
            Correction.carried_out_at.is_(None),
        )
    )
    done: list[EventDraft] = []
    for row in waiting:
        for event in by_listing[row.listing_id]:
            change = _CHANGES.get(event.type)
            if change is None or (
                change == "amended" and (event.listing_version or 0) <= (row.decided_version or 0)
            ):
                continue
            reason = event.data.get("reason")
            if corrects(row.ground, change, reason if isinstance(reason, str) else None):
                on_time = (
                    row.correction_due_on is None or china_date(event.occurred_at) <= row.correction_due_on
                )
                conn.execute(
                    update(Correction)
                    .where(Correction.id == row.id)
                    .values(carried_out_at=event.occurred_at, carried_out_on_time=on_time, updated_at=now)
                )
                done.append(
                    EventDraft(
                        EventType.CORRECTION_CARRIED_OUT,
                        "registry",
                        court_code=row.court_code,
                        listing_id=row.listing_id,
                        listing_version=event.listing_version,
                        data={"correction_id": row.id, "event_seq": event.seq, "on_time": on_time},
                    )
                )
                break
    append_events(conn, done, now)


READER = LogReader(
    "corrections_carry_out",
    carry_out,
    types=frozenset({EventType.LISTING_AMENDED, EventType.LISTING_REMOVED, EventType.LISTING_EXPIRED}),
)


CORRECTION_EVENTS = frozenset(
    {
        EventType.CORRECTION_FILED,
        EventType.CORRECTION_DECIDED,
        EventType.CORRECTION_RECONSIDERATION_REQUESTED,
        EventType.CORRECTION_FOUND_BY_COURT,
        EventType.CORRECTION_CARRIED_OUT,
    }
)


def correction_events(conn: Connection, court: str | None, after: int, limit: int) -> CorrectionEventPage:
    """The correction steps a court follows, in log order: those about its own listings and the
    reconsiderations sent to it (every court's for an admin). A court client polls this with
    `after` (its own cursor) to learn of new applications and decisions as they come."""
    last, _ = head(conn)
    upto = min(last, after + limit * 10)
    events = read_events(conn, after, None, CORRECTION_EVENTS, upto=upto)
    if court is not None and events:
        listing_ids = sorted({e.listing_id for e in events if e.listing_id is not None})
        owners = {
            row.id: row.court_code
            for row in conn.execute(select(Listing.id, Listing.court_code).where(Listing.id.in_(listing_ids)))
        }
        events = [e for e in events if court in (e.court_code, owners.get(e.listing_id or ""))]
    page = events[:limit]
    next_after = page[-1].seq if len(events) > limit else upto
    return CorrectionEventPage(
        events=[
            CorrectionEvent(
                seq=e.seq,
                occurred_at=iso(e.occurred_at),
                type=e.type,
                court_code=e.court_code,
                listing_id=e.listing_id,
                data=e.data,
            )
            for e in page
        ],
        next_after=max(next_after, after),
    )

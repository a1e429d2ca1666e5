"""Turning a signed envelope into rows: validate, verify, encrypt. No database, no I/O.

This is the CPU-bound half of ingest (an Ed25519 verification alone is ~60 µs), so it is
written as plain functions over picklable values that a process pool can run; the
database half (`services.py`) stays in the process that owns the connection.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NoReturn, TypeVar

import msgspec

from registry.calendar import china_date
from registry.http.body import field_error, invalid_field, pointer_token
from registry.identity.canonical import CanonicalizationError, canonical_json
from registry.identity.crypto import BlindIndex, DataKeyring
from registry.identity.identifiers import (
    CaseNumber,
    IdentifierError,
    normalise_case_number,
    normalise_court_code,
    normalise_identifier,
    normalise_text,
    parse_case_number,
    parse_credit_code,
    parse_id_number,
    parse_legacy_case_number,
)
from registry.identity.signing import verify_signature, weak_public_key
from registry.identity.types import Identity, parse_organization, parse_person
from registry.listings.schemas import (
    GROUNDS,
    LISTABLE_CASE_TYPES,
    LONG_TEXT_MAX_CHARS,
    ORGANIZATION_SPECIAL_SUBJECTS,
    PERSON_SPECIAL_SUBJECTS,
    REMOVAL_REASONS,
    SPECIAL_SUBJECTS,
    TEXT_MAX_CHARS,
    ListingIn,
    OrganizationDebtor,
    RemovalIn,
    SignatureIn,
)
from registry.problems import Problem
from registry.text import check_text

PURPOSE_DEBTOR_ID = b"listing.debtor_id"
PURPOSE_SIGNED = b"listing.signed"
PURPOSE_REMOVAL = b"removal.signed"
ADULT_AGE = 18
EARLIEST_DATE = date(1990, 1, 1)
# Case numbers took today's form on 2016-01-01 (最高人民法院关于人民法院案件案号的若干规定).
NEW_CASE_NUMBERS_FROM = date(2016, 1, 1)
BASE_TERM_YEARS = 2  # SPC Art. 2: grounds 2-6 list for two years ...
MAX_TERM_YEARS = 5  # ... extendable by one to three
T = TypeVar("T")


@dataclass(frozen=True)
class KeyInfo:
    court_code: str
    public_key: bytes
    valid_from: datetime
    valid_until: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class PrepareContext:
    """A snapshot of what validation needs, small enough to send to worker processes."""

    courts: dict[str, str | None]  # court code -> province code
    keys: dict[str, KeyInfo]
    data_keys: dict[str, bytes]
    active_data_key_id: str
    blind_index_key: bytes
    now: datetime
    # court code -> registered name: a pre-2016 case number names its court by abbreviation.
    court_names: dict[str, str] = field(default_factory=dict)
    # During a blind-index key rotation: the retiring key, under which prior listings may
    # still be indexed (the duplicate and re-listing rules look under both).
    previous_blind_index_key: bytes | None = None

    @property
    def today(self) -> date:
        # Listings are dated in China Standard Time, the courts' calendar.
        return china_date(self.now)


@dataclass
class PreparedListing:
    court_code: str
    province_code: str | None
    case_number: str
    submission_id: str
    key_id: str
    signature: bytes
    content_sha256: bytes
    signed_cipher: bytes
    debtor_kind: str
    debtor_name: str
    debtor_id_type: str
    debtor_id_blind: bytes
    debtor_id_cipher: bytes
    debtor_id_masked: str
    debtor_sex: str | None
    debtor_birth_year: int | None
    legal_representative: str | None
    grounds: list[str]
    term_years: int | None
    filed_on: date
    listed_on: date
    expires_on: date | None
    creditor: str | None
    initiated_by: str = "court_initiative"
    # HMAC of the creditor's credit code or ID number, hex: matches a creditor without keeping it.
    creditor_key: str | None = None
    # The debtor's and the creditor's indexes under the retiring key, during a key rotation.
    debtor_id_blind_retiring: bytes | None = None
    creditor_key_retiring: str | None = None
    extension: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # One of SPECIAL_SUBJECTS, or None (its employer is in `details`).
    special_subject: str | None = None


@dataclass
class PreparedRemoval:
    listing_id: str
    reason: str
    effective_on: date
    triggered_on: date
    basis_document: str
    key_id: str
    signature: bytes
    content_sha256: bytes
    signed_cipher: bytes
    court_code: str


class Preparer:
    """Holds the crypto objects built from a context, so a worker builds them once per chunk.

    `find_key` looks up a signing key the context does not hold (worker processes are
    given only the keys a request names, or none, and ask their own connection).
    """

    def __init__(
        self, context: PrepareContext, find_key: Callable[[str], KeyInfo | None] | None = None
    ) -> None:
        self.context = context
        self._find_key = find_key
        self.keyring = DataKeyring(context.data_keys, context.active_data_key_id)
        self.blind_index = BlindIndex(context.blind_index_key, context.previous_blind_index_key)

    # ---- envelopes ----

    def listing(self, envelope: Any) -> PreparedListing:
        body, signature = _split_envelope(envelope, "listing")
        signed = _canonical(body)
        listing = _convert(body, ListingIn, "/listing")
        prepared = self._validate_listing(listing)
        key_id, sig = self._verify(signature, signed, prepared.court_code)
        prepared.key_id = key_id
        prepared.signature = sig
        prepared.content_sha256 = hashlib.sha256(signed).digest()
        prepared.signed_cipher = self.keyring.encrypt(signed, PURPOSE_SIGNED)
        return prepared

    def removal(self, envelope: Any) -> Callable[[str], PreparedRemoval]:
        """Checks the removal itself now, and returns what verifies its signature against the
        listing court, known once the listing is loaded."""
        body, signature = _split_envelope(envelope, "removal")
        signed = _canonical(body)
        removal = _convert(body, RemovalIn, "/removal")
        if removal.reason not in REMOVAL_REASONS:
            raise Problem(
                422,
                "unknown_reason",
                f"reason must be one of {', '.join(REMOVAL_REASONS)}",
                pointer="/removal/reason",
            )
        for name, day in (("effective_on", removal.effective_on), ("triggered_on", removal.triggered_on)):
            if day > self.context.today:
                raise Problem(
                    422, "date_out_of_range", f"{name} is in the future", pointer=f"/removal/{name}"
                )
        return lambda listing_court: self._signed_removal(removal, signature, signed, listing_court)

    def _signed_removal(
        self, removal: RemovalIn, signature: SignatureIn, signed: bytes, listing_court: str
    ) -> PreparedRemoval:
        key_id, sig = self._verify(signature, signed, listing_court)
        return PreparedRemoval(
            listing_id=removal.listing_id,
            reason=removal.reason,
            effective_on=removal.effective_on,
            triggered_on=removal.triggered_on,
            # A document number, as the listing's are: one spelling (full-width brackets).
            basis_document=_document_number(removal.basis_document, "/removal/basis_document"),
            key_id=key_id,
            signature=sig,
            content_sha256=hashlib.sha256(signed).digest(),
            signed_cipher=self.keyring.encrypt(signed, PURPOSE_REMOVAL),
            court_code=listing_court,
        )

    # ---- rules ----

    def _validate_listing(self, listing: ListingIn) -> PreparedListing:
        ctx = self.context
        court_code = _identifier(normalise_court_code, listing.court_code, "/listing/court_code")
        if court_code not in ctx.courts:
            raise Problem(
                422, "unknown_court", f"court {court_code} is not registered", pointer="/listing/court_code"
            )
        case = self._case_number(listing, court_code)
        if case.case_type not in LISTABLE_CASE_TYPES:
            raise Problem(
                422,
                "case_not_enforcement",
                f"a {case.case_type} case carries no listing: only enforcement implementation cases "
                "(执, 执恢) do",
                pointer="/listing/case_number",
            )
        if case.year != listing.filed_on.year:
            raise Problem(
                422,
                "case_number_year_mismatch",
                "a case number's year is the year the case was filed",
                pointer="/listing/case_number",
            )
        _date_between(listing.filed_on, EARLIEST_DATE, ctx.today, "/listing/filed_on")
        _date_between(listing.listed_on, listing.filed_on, ctx.today, "/listing/listed_on")

        decision = _decision(listing)
        grounds = _grounds(listing.grounds)
        term = _term(grounds, listing.term_years)
        expires_on = add_months(listing.listed_on, 12 * term) if term else None
        if expires_on is not None and expires_on < ctx.today:
            # Art. 2: expires_on is the term's last day (Civil Code Art. 201-202: the listing
            # day does not count) and runs to its end (Art. 203: 24:00); the listing leaves the
            # public list as the next day starts. One that arrives after its last day would be
            # published past its term, so it is never published.
            raise Problem(
                422,
                "term_already_ended",
                f"the fixed term ended on {expires_on.isoformat()}: the listing cannot be published",
                pointer="/listing/term_years",
            )
        extension = _extension(listing, term, ctx.today)
        _performance(listing)

        debtor = listing.debtor
        name = _text(debtor.name, "/listing/debtor/name")
        if isinstance(debtor, OrganizationDebtor):
            identity = _organization_identity(debtor)
            kind, sex, birth = "organization", None, None
            legal_rep: str | None = _text(debtor.legal_representative, "/listing/debtor/legal_representative")
        else:
            identity = _person_identity(
                debtor.id_type, debtor.id_number, debtor.nationality, listing.listed_on
            )
            if identity.birth_date is not None and identity.birth_date > listing.listed_on:
                raise Problem(
                    422,
                    "invalid_id_number",
                    "the debtor's birth date is after the listing date",
                    pointer="/listing/debtor/id_number",
                )
            # Civil Code Art. 201: of age from the day after the 18th birthday.
            if identity.birth_date is not None and listing.listed_on <= add_months(
                identity.birth_date, 12 * ADULT_AGE
            ):
                raise Problem(
                    422,
                    "debtor_minor",
                    "a minor is never listed (SPC Provisions Art. 4)",
                    pointer="/listing/debtor/id_number",
                )
            kind, sex, birth, legal_rep = "person", identity.sex, identity.birth_date, None

        details: dict[str, Any] = {
            "basis": {
                "document_number": _document_number(
                    listing.basis.document_number, "/listing/basis/document_number"
                ),
                "issuer": _text(listing.basis.issuer, "/listing/basis/issuer"),
            },
            "decision": decision,
            "obligations": _text(
                listing.obligations, "/listing/obligations", multiline=True, limit=LONG_TEXT_MAX_CHARS
            ),
            "amount_cents": listing.amount_cents,
            "performance": {
                "status": listing.performance.status,
                "performed_cents": listing.performance.performed_cents,
                "unperformed_cents": listing.performance.unperformed_cents,
            },
        }
        creditor, creditor_keys = self._creditor(listing)
        blinds = self.blind_index.candidates(identity.index_input)
        if extension is not None:
            details["extension"] = extension
        special = _special_subject(listing, kind)
        if special is not None:
            details["special_subject"] = special
        return PreparedListing(
            court_code=court_code,
            province_code=ctx.courts[court_code],
            case_number=case.text,
            submission_id=_submission_id(listing.submission_id),
            key_id="",
            signature=b"",
            content_sha256=b"",
            signed_cipher=b"",
            debtor_kind=kind,
            debtor_name=name,
            debtor_id_type=identity.id_type,
            debtor_id_blind=blinds[0],
            debtor_id_blind_retiring=blinds[1] if len(blinds) > 1 else None,
            debtor_id_cipher=self.keyring.encrypt(identity.number.encode(), PURPOSE_DEBTOR_ID),
            debtor_id_masked=identity.masked,
            debtor_sex=sex,
            debtor_birth_year=None if birth is None else birth.year,
            legal_representative=legal_rep,
            grounds=grounds,
            term_years=term,
            filed_on=listing.filed_on,
            listed_on=listing.listed_on,
            expires_on=expires_on,
            creditor=creditor,
            initiated_by=decision["initiated_by"],
            creditor_key=creditor_keys[0] if creditor_keys else None,
            creditor_key_retiring=creditor_keys[1] if len(creditor_keys) > 1 else None,
            extension=extension,
            details=details,
            special_subject=None if special is None else special["category"],
        )

    def _case_number(self, listing: ListingIn, court_code: str) -> CaseNumber:
        """Today's form, naming the court by its code; or, for a case filed before 2016, the
        old form naming it by its abbreviation (`（2015）朝执字第01234号`), whose characters must
        appear in order in the court's registered name."""
        pointer = "/listing/case_number"
        try:
            case = parse_case_number(listing.case_number)
        except IdentifierError as exc:
            legacy = parse_legacy_case_number(listing.case_number)
            if legacy is None:
                raise Problem(422, exc.code, exc.message, pointer=pointer) from exc
            if listing.filed_on >= NEW_CASE_NUMBERS_FROM:
                raise Problem(
                    422,
                    "invalid_case_number",
                    "a case filed from 2016-01-01 on has a case number of today's form, "
                    "e.g. （2024）京0105执1234号",
                    pointer=pointer,
                ) from exc
            name = self.context.court_names.get(court_code, "")
            if not _abbreviates(legacy.court_code, name):
                raise Problem(
                    422,
                    "case_number_court_mismatch",
                    f"{legacy.court_code} does not abbreviate the name of court {court_code}",
                    pointer=pointer,
                ) from exc
            return legacy
        if case.court_code != court_code:
            raise Problem(
                422,
                "case_number_court_mismatch",
                f"case number belongs to court {case.court_code}, not {court_code}",
                pointer=pointer,
            )
        return case

    def _creditor(self, listing: ListingIn) -> tuple[str | None, tuple[str, ...]]:
        """The creditor's name, and the blind index of its code when the court gave one
        (under the retiring key too during a key rotation)."""
        raw = listing.creditor
        if raw is None:
            return None, ()
        if isinstance(raw, str):
            return _text(raw, "/listing/creditor"), ()
        name = _text(raw.name, "/listing/creditor/name")
        if raw.credit_code is not None and raw.id_number is not None:
            raise Problem(
                422,
                "invalid_field",
                "a creditor has a credit_code or an id_number, not both",
                pointer="/listing/creditor",
            )
        index = creditor_index_input(listing)
        if index is None:
            return name, ()
        return name, tuple(blind.hex() for blind in self.blind_index.candidates(index))

    def _verify(self, signature: SignatureIn, signed: bytes, court_code: str) -> tuple[str, bytes]:
        key = self.context.keys.get(signature.key_id)
        if key is None and self._find_key is not None:
            key = self._find_key(signature.key_id)
            if key is not None:
                self.context.keys[signature.key_id] = key
        if key is None:
            raise Problem(422, "unknown_key", "no court key has this key_id", pointer="/signature/key_id")
        if key.court_code != court_code:
            raise Problem(
                422, "key_court_mismatch", "the key belongs to another court", pointer="/signature/key_id"
            )
        now = self.context.now
        if key.revoked_at is not None and key.revoked_at <= now:
            raise Problem(422, "key_revoked", "the signing key has been revoked", pointer="/signature/key_id")
        if key.valid_from > now or (key.valid_until is not None and key.valid_until <= now):
            raise Problem(
                422, "key_expired", "the signing key is outside its validity", pointer="/signature/key_id"
            )
        try:
            sig = base64.urlsafe_b64decode(signature.value + "=" * (-len(signature.value) % 4))
        except (binascii.Error, ValueError) as exc:
            raise Problem(
                422, "signature_invalid", "signature value is not base64url", pointer="/signature/value"
            ) from exc
        if not verify_signature(key.public_key, sig, signed):
            # A key registered before registration checked keys can never verify: tell the
            # court to replace it rather than to re-sign.
            weak = weak_public_key(key.public_key)
            detail = (
                "the signature does not verify over the RFC 8785 canonical form of the body"
                if weak is None
                else f"no signature verifies under this key ({weak}): register a new key and revoke this one"
            )
            raise Problem(422, "signature_invalid", detail, pointer="/signature/value")
        return signature.key_id, sig


def _split_envelope(
    envelope: Any, name: str, also: tuple[str, ...] = ()
) -> tuple[dict[str, Any], SignatureIn]:
    """The signed body and its signature; a member beside them (other than `also`) is refused,
    as in every request body (it is not signed, and would be kept as if it were)."""
    expected = f'expected {{"{name}": {{...}}, "signature": {{...}}}}'
    if not isinstance(envelope, dict):
        raise invalid_field(expected, "")
    if not isinstance(envelope.get(name), dict):
        raise invalid_field(expected, f"/{name}")
    unknown = [member for member in envelope if member not in (name, "signature", *also)]
    if unknown:
        raise invalid_field(f"unknown member: {expected}", "/" + pointer_token(unknown[0]))
    signature = _convert(envelope.get("signature"), SignatureIn, "/signature")
    return envelope[name], signature


def _canonical(body: dict[str, Any]) -> bytes:
    try:
        return canonical_json(body)
    except CanonicalizationError as exc:
        raise Problem(422, "invalid_field", f"the body has no RFC 8785 canonical form: {exc}") from exc


def _convert(value: Any, kind: type[T], base: str) -> T:
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        message, pointer = field_error(exc, base)
        code = "invalid_date" if "date" in message else "invalid_field"
        raise Problem(422, code, message, pointer=pointer) from exc


def creditor_index_input(listing: ListingIn, *, stored: bool = False) -> str | None:
    """What the creditor's blind index hashes, when the court named its code or number (the
    listing is valid: `Preparer` checked it, or it is stored signed). A blind-index key
    rotation recomputes it from the stored signed listing (`stored`): a credit code is then
    indexed in the form it was accepted in, unchecked, so that a rule added since (the GB 11714
    check of the organisation code inside) cannot stop the rotation."""
    raw = listing.creditor
    if raw is None or isinstance(raw, str):
        return None
    if raw.credit_code is not None:
        if stored:
            return "creditor:" + normalise_identifier(raw.credit_code).replace("-", "")
        return "creditor:" + _identifier(parse_credit_code, raw.credit_code, "/listing/creditor/credit_code")
    if raw.id_number is not None:
        person = _identifier(parse_id_number, raw.id_number, "/listing/creditor/id_number")
        return "creditor:" + person.number
    return None


def _identifier(parse: Callable[[str], T], raw: str, pointer: str) -> T:
    try:
        result = parse(raw)
    except IdentifierError as exc:
        raise Problem(422, exc.code, exc.message, pointer=pointer) from exc
    return result


def _text(raw: str, pointer: str, *, multiline: bool = False, limit: int = TEXT_MAX_CHARS) -> str:
    # The one text check (the body decoder runs it too), on the text as sent: normalising
    # would turn some controls (U+001C-U+001F, U+0085) into spaces.
    check_text(raw, pointer, multiline=multiline)
    text = normalise_text(raw)
    if not text:
        raise Problem(422, "invalid_field", "text is empty", pointer=pointer)
    if len(text) > limit:
        # The schema counted the text as sent; NFKC can lengthen it (U+FDFA is 18 characters),
        # and the normalised text is what is stored and shown.
        raise Problem(
            422, "invalid_field", f"text is longer than {limit} characters once normalised", pointer=pointer
        )
    return text


def require_ascii_digits(text: str, pointer: str) -> str:
    """A document's number is read and compared by people and programs: its digits are ASCII
    (NFKC folds full-width digits, never another script's: ٢٠٢٤ would pass for a year). A
    digit of another script is a non-ASCII character that `str.isdecimal` accepts (Unicode's
    Nd: the decimal digits of every script)."""
    if not text.isascii() and any(char.isdecimal() for char in text if not char.isascii()):
        raise Problem(422, "invalid_field", "a document number is written with ASCII digits", pointer=pointer)
    return text


def _submission_id(raw: str) -> str:
    """The court's idempotency key: compared byte for byte, so one spelling of it. Full-width
    characters fold to ASCII (NFKC); what is left is printable ASCII without spaces."""
    check_text(raw, "/listing/submission_id")
    text = unicodedata.normalize("NFKC", raw)
    if not text.isascii() or not text.isprintable() or " " in text or not 1 <= len(text) <= 128:
        raise Problem(
            422,
            "invalid_field",
            "submission_id is 1 to 128 printable ASCII characters without spaces",
            pointer="/listing/submission_id",
        )
    return text


def _document_number(raw: str, pointer: str) -> str:
    """A court document's number (文书号), in the case numbers' display form."""
    return require_ascii_digits(normalise_case_number(_text(raw, pointer)), pointer)


def _abbreviates(abbreviation: str, court_name: str) -> bool:
    """朝 abbreviates 北京市朝阳区人民法院: every character, in order, in the name (a trailing 法,
    "court", excepted)."""
    rest = iter(court_name)
    return bool(court_name) and all(char in rest for char in abbreviation.removesuffix("法"))


def _decision(listing: ListingIn) -> dict[str, Any]:
    """SPC Art. 5: the decision to list, on the creditor's application or the court's initiative."""
    decision = listing.decision
    _date_between(decision.decided_on, listing.filed_on, listing.listed_on, "/listing/decision/decided_on")
    if decision.initiated_by == "creditor_application" and listing.creditor is None:
        raise Problem(
            422,
            "creditor_required",
            "a listing on the creditor's application names the creditor (申请执行人)",
            pointer="/listing/creditor",
        )
    return {
        "document_number": _document_number(decision.document_number, "/listing/decision/document_number"),
        "decided_on": decision.decided_on.isoformat(),
        "initiated_by": decision.initiated_by,
    }


def _extension(listing: ListingIn, term: int | None, today: date) -> dict[str, Any] | None:
    """SPC Art. 2: an extension adds one to three years to the two, for an aggravating
    circumstance; whether the listing's term may change is the amendment's question."""
    extension = listing.extension
    if extension is None:
        if term is not None and term > BASE_TERM_YEARS:
            raise Problem(
                422,
                "extension_required",
                "a term over two years needs the extension decided for an aggravating circumstance "
                "(SPC Art. 2)",
                pointer="/listing/extension",
            )
        return None
    if term is None or term <= BASE_TERM_YEARS:
        raise Problem(
            422,
            "term_invalid",
            "an extension adds one to three years to the two of grounds 2-6: term_years is 3 to 5",
            pointer="/listing/term_years",
        )
    _date_between(extension.decided_on, listing.filed_on, today, "/listing/extension/decided_on")
    return {
        "document_number": _document_number(extension.document_number, "/listing/extension/document_number"),
        "decided_on": extension.decided_on.isoformat(),
        "reason": extension.reason,
    }


def _date_between(value: date, earliest: date, latest: date, pointer: str) -> None:
    if not earliest <= value <= latest:
        raise Problem(
            422, "date_out_of_range", f"date must be between {earliest} and {latest}", pointer=pointer
        )


def _special_subject(listing: ListingIn, kind: str) -> dict[str, Any] | None:
    """Opinion Art. 2, 4: the category the court asserts, which must fit the debtor's kind (a
    civil servant is a person, a state organ an organisation), and the employer if given."""
    special = listing.special_subject
    if special is None:
        return None
    if special.category not in SPECIAL_SUBJECTS:
        raise Problem(
            422,
            "unknown_special_subject",
            f"special_subject.category must be one of {', '.join(SPECIAL_SUBJECTS)}",
            pointer="/listing/special_subject/category",
        )
    fits = PERSON_SPECIAL_SUBJECTS if kind == "person" else ORGANIZATION_SPECIAL_SUBJECTS
    if special.category not in fits:
        raise Problem(
            422,
            "special_subject_mismatch",
            f"a {kind} debtor's special_subject.category is one of {', '.join(fits)}",
            pointer="/listing/special_subject/category",
        )
    employer = special.employer
    return {
        "category": special.category,
        "employer": None if employer is None else _text(employer, "/listing/special_subject/employer"),
    }


def _grounds(raw: list[str]) -> list[str]:
    unknown = [g for g in raw if g not in GROUNDS]
    if unknown:
        raise Problem(
            422, "unknown_ground", f"grounds must be among {', '.join(GROUNDS)}", pointer="/listing/grounds"
        )
    if len(set(raw)) != len(raw):
        raise Problem(422, "invalid_field", "a ground is repeated", pointer="/listing/grounds")
    return sorted(raw, key=GROUNDS.index)


def _term(grounds: list[str], term: int | None) -> int | None:
    """SPC Art. 2: ground 1 alone has no fixed term; grounds 2-6 list for 2 years, up to 5 extended."""
    if grounds == ["able_but_refuses"]:
        if term is not None:
            raise Problem(
                422,
                "term_invalid",
                "a listing on able_but_refuses alone has no fixed term",
                pointer="/listing/term_years",
            )
        return None
    if term is None or not 2 <= term <= 5:
        raise Problem(
            422,
            "term_invalid",
            "grounds 2-6 list for 2 years, extendable to 5",
            pointer="/listing/term_years",
        )
    return term


def _performance(listing: ListingIn) -> None:
    """SPC Art. 6: the performance status and its figures say one thing. `none`: nothing
    performed, so the unperformed part is the whole amount; `partial`: something performed and
    something not, so each part given is above 0 and below the amount, and both add up to it."""
    perf = listing.performance
    if perf.status not in ("none", "partial"):
        raise Problem(
            422, "invalid_field", "performance.status is none or partial", pointer="/listing/performance"
        )
    amount = listing.amount_cents
    performed, unperformed = perf.performed_cents, perf.unperformed_cents
    parts = (performed, unperformed)
    if amount is not None and any(part is not None and part > amount for part in parts):
        _inconsistent("performed_cents and unperformed_cents cannot exceed amount_cents")
    if perf.status == "none":
        if performed:
            _inconsistent("nothing performed yet performed_cents is set")
        if amount is not None and unperformed is not None and unperformed != amount:
            _inconsistent("nothing performed: unperformed_cents is the whole amount_cents")
        return
    if any(part is not None and part <= 0 for part in parts):
        _inconsistent("partly performed: performed_cents and unperformed_cents are both above 0")
    if amount is not None and any(part is not None and part >= amount for part in parts):
        _inconsistent("partly performed: performed_cents and unperformed_cents are each below amount_cents")
    if amount is not None and None not in parts and sum(part or 0 for part in parts) != amount:
        _inconsistent("performed + unperformed must equal amount_cents")


def _inconsistent(detail: str) -> NoReturn:
    raise Problem(422, "performance_inconsistent", detail, pointer="/listing/performance")


def add_months(day: date, months: int) -> date:
    """Calendar months; the 31st of a month becomes the last day of a shorter one."""
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    first_of_next = date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
    return date(year, month + 1, min(day.day, (first_of_next - date.resolution).day))


# Where each identifier error points in a listing's debtor.
_PERSON_POINTERS = {
    "unknown_id_type": "/listing/debtor/id_type",
    "invalid_nationality": "/listing/debtor/nationality",
}
_ORGANIZATION_POINTERS = {
    "invalid_credit_code": "/listing/debtor/credit_code",
    "invalid_organization_code": "/listing/debtor/organization_code",
    "invalid_registration_country": "/listing/debtor/registration/country",
    "invalid_registration_number": "/listing/debtor/registration/number",
    "organization_identifier": "/listing/debtor",
}


def _person_identity(id_type: str | None, raw: str, nationality: str | None, listed_on: date) -> Identity:
    try:
        # An old residence card's birth year is read against the listing's date, as the
        # minor check is.
        return parse_person(id_type, raw, nationality, on=listed_on)
    except IdentifierError as exc:
        pointer = _PERSON_POINTERS.get(exc.code, "/listing/debtor/id_number")
        raise Problem(422, exc.code, exc.message, pointer=pointer) from exc


def _organization_identity(debtor: OrganizationDebtor) -> Identity:
    registration = debtor.registration
    try:
        return parse_organization(
            debtor.credit_code,
            debtor.organization_code,
            None if registration is None else (registration.country, registration.number),
        )
    except IdentifierError as exc:
        pointer = _ORGANIZATION_POINTERS.get(exc.code, "/listing/debtor")
        raise Problem(422, exc.code, exc.message, pointer=pointer) from exc

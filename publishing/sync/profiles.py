"""Field profiles: what each kind of agency may receive about a listing (data minimisation).

Each profile is an explicit msgspec struct: a field that is not declared here cannot leave,
whatever the listing row holds. `public` is the registry's one public allow-list
(`registry.listings.disclosure.public_entry`), unchanged.

| profile | legal basis | debtors | identifier |
| --- | --- | --- | --- |
| `credit_reference` | Art. 13, credit reference database | persons and organisations | full |
| `housing_construction` | Art. 12, housing and construction credit files | organisations | full credit code |
| `enterprise_supervision` | Art. 17 (persons: Company Law 2023 Art. 178) | both | full |
| `personnel_oversight` | Art. 2, 4, personnel and discipline bodies | special subjects only | full |
| `public` | SPC Provisions Art. 6 | persons and organisations | masked |
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, Connection, Select, and_

from registry.eventlog.types import EventType
from registry.identity.crypto import DataKeyring
from registry.identity.types import identity_of
from registry.listings.details import PublicPerformance, listing_details
from registry.listings.disclosure import PublicEntry, public_columns, public_entry
from registry.listings.models import Listing
from registry.listings.prepare import PURPOSE_DEBTOR_ID


class RemovalRecord(msgspec.Struct, frozen=True):
    reason: str
    removed_on: date | None


class CreditReferenceRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Art. 13: what the credit reference database records, for persons and organisations."""

    id: str
    version: int
    status: str
    kind: str
    name: str
    # The full number of `id_type` (registry.identity.types.ID_TYPES); a passport's and a
    # foreign registration's as COUNTRY:NUMBER.
    identifier: str
    id_type: str
    sex: str | None
    birth_date: date | None
    legal_representative: str | None
    court_code: str
    court_name: str
    case_number: str
    basis_document_number: str
    basis_issuer: str
    obligations: str
    amount_cents: int | None
    performance: PublicPerformance
    grounds: list[str]
    filed_on: date
    listed_on: date
    term_years: int | None
    expires_on: date | None
    removal: RemovalRecord | None


class HousingConstructionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Art. 12: organisations in the housing and construction credit files, their legal
    representatives and the obligations they have not performed."""

    id: str
    version: int
    status: str
    name: str
    # The full code; `id_type` says which: credit_code, organization_code, or registration
    # (COUNTRY:NUMBER).
    credit_code: str
    id_type: str
    legal_representative: str | None
    court_code: str
    court_name: str
    case_number: str
    basis_document_number: str
    basis_issuer: str
    obligations: str
    amount_cents: int | None
    performance: PublicPerformance
    grounds: list[str]
    listed_on: date
    removal: RemovalRecord | None


class EnterpriseSupervisionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Art. 17: which organisation to classify, on whose decision; no obligations or amounts."""

    id: str
    version: int
    status: str
    kind: str  # "organization"
    name: str
    # The full code; `id_type` says which: credit_code, organization_code, or registration
    # (COUNTRY:NUMBER).
    credit_code: str
    id_type: str
    legal_representative: str | None
    court_code: str
    court_name: str
    case_number: str
    grounds: list[str]
    listed_on: date
    removal: RemovalRecord | None


class EnterpriseSupervisionPersonRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Company Law 2023 Art. 178: a listed person may not serve as a company's director,
    supervisor or senior manager. Who, on which case, and whether still listed: nothing more."""

    id: str
    version: int
    status: str
    kind: str  # "person"
    name: str
    id_number: str
    id_type: str  # which document `id_number` is (registry.identity.types.PERSON_ID_TYPES)
    court_code: str
    court_name: str
    case_number: str
    listed_on: date
    removal: RemovalRecord | None


class PersonnelOversightRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Opinion Art. 2, 4: the personnel and discipline bodies (组织人事部门) learn which party
    member, civil servant, deputy or state body has not performed, for whom they answer (the
    employer or superior body the court named), and what is unperformed. Special subjects only."""

    id: str
    version: int
    status: str
    kind: str
    name: str
    # The full identifier of `id_type` (registry.identity.types.ID_TYPES): a person's number,
    # an organisation's code.
    identifier: str
    id_type: str
    legal_representative: str | None
    special_subject: str
    employer: str | None
    court_code: str
    court_name: str
    case_number: str
    basis_document_number: str
    basis_issuer: str
    obligations: str
    amount_cents: int | None
    performance: PublicPerformance
    grounds: list[str]
    listed_on: date
    removal: RemovalRecord | None


ProfileRecord = (
    CreditReferenceRecord
    | HousingConstructionRecord
    | EnterpriseSupervisionRecord
    | EnterpriseSupervisionPersonRecord
    | PersonnelOversightRecord
    | PublicEntry
)


@dataclass(frozen=True)
class Profile:
    name: str
    kinds: frozenset[str]  # debtor kinds admitted
    full_identifier: bool
    # Only listings whose court named the debtor a special subject (Opinion Art. 2, 4).
    special_only: bool = False

    def admits_clause(self) -> ColumnElement[bool]:
        """`admits` as a condition on `listings`, for the snapshot and the drift report."""
        clause: ColumnElement[bool] = Listing.debtor_kind.in_(sorted(self.kinds))
        if self.special_only:
            clause = and_(clause, Listing.special_subject.is_not(None))
        return clause


BOTH = frozenset({"person", "organization"})
PROFILES: dict[str, Profile] = {
    "credit_reference": Profile("credit_reference", BOTH, True),
    "housing_construction": Profile("housing_construction", frozenset({"organization"}), True),
    "enterprise_supervision": Profile("enterprise_supervision", BOTH, True),
    "personnel_oversight": Profile("personnel_oversight", BOTH, True, special_only=True),
    "public": Profile("public", BOTH, False),
}


def listing_columns() -> Select[Any]:
    """`public_columns()` plus what the agency profiles add (lifecycle, the ciphertext)."""
    return public_columns().add_columns(
        Listing.version,
        Listing.debtor_id_cipher,
        Listing.listed_on,
        Listing.term_years,
        Listing.expires_on,
        Listing.removed_on,
        Listing.removal_reason,
        Listing.special_subject,
        Listing.special_subject_dropped_in,
        Listing.special_subject_marked_in,
    )


def load_listings(conn: Connection, ids: Iterable[str]) -> dict[str, Any]:
    wanted = sorted(set(ids))
    rows: dict[str, Any] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        for row in conn.execute(listing_columns().where(Listing.id.in_(chunk))):
            rows[row.id] = row
    return rows


def _removal(row: Any) -> RemovalRecord | None:
    return None if row.removal_reason is None else RemovalRecord(row.removal_reason, row.removed_on)


def admits(profile: Profile, row: Any) -> bool:
    return row.debtor_kind in profile.kinds and (not profile.special_only or row.special_subject is not None)


def leaves_scope(profile: Profile, event_type: str, version: int | None, row: Any) -> bool:
    """The amendment that dropped the special-subject mark, seen by a special-only profile:
    its agencies held the listing and must now let it go (sent with no record, as a listing
    that left the public list is to the public profile)."""
    return (
        profile.special_only
        and event_type == EventType.LISTING_AMENDED
        and row.debtor_kind in profile.kinds
        and row.special_subject is None
        and version is not None
        and row.special_subject_dropped_in == version
    )


def marked_at(row: Any, version: int | None) -> bool:
    """Whether the listing bore the special-subject mark at `version` (its latest marking:
    a mark added, dropped and added again is known by the last addition only)."""
    if version is None:
        return row.special_subject is not None
    marked_from = row.special_subject_marked_in or 1
    if row.special_subject is not None:
        return version >= marked_from
    dropped_in = row.special_subject_dropped_in
    return dropped_in is not None and marked_from <= version < dropped_in


def enters_scope(profile: Profile, event_type: str, version: int | None, row: Any) -> bool:
    """The amendment that added the special-subject mark, seen by a special-only profile: its
    agencies act from there, as on a listing published with the mark."""
    return (
        profile.special_only
        and event_type == EventType.LISTING_AMENDED
        and row.debtor_kind in profile.kinds
        and version is not None
        and row.special_subject_marked_in == version
        and marked_at(row, version)
    )


def admitted_at(profile: Profile, version: int | None, row: Any) -> bool:
    """`admits` for the listing as it was at `version`: a special-only profile covers the
    versions that bore the mark, whatever the row says now."""
    if not profile.special_only:
        return admits(profile, row)
    return row.debtor_kind in profile.kinds and marked_at(row, version)


def render(profile: Profile, row: Any, keyring: DataKeyring, today: date) -> ProfileRecord | None:
    """The profile's view of one listing row, or None when the profile must not see it
    (a debtor kind it does not cover; for `public`, a listing that is no longer active)."""
    if not admits(profile, row):
        return None
    if profile.name == "public":
        return public_entry(row, today) if row.status == "active" else None
    identity = identity_of(
        row.debtor_id_type,
        keyring.decrypt(bytes(row.debtor_id_cipher), PURPOSE_DEBTOR_ID).decode(),
        # An old residence card's two-digit birth year is read against the listing's date, as
        # when it was listed: against today it could fall a century apart from the court's.
        on=row.listed_on,
    )
    identifier = identity.number
    details = listing_details(row.details)
    if profile.name == "credit_reference":
        person = row.debtor_kind == "person"
        return CreditReferenceRecord(
            id=row.id,
            version=row.version,
            status=row.status,
            kind=row.debtor_kind,
            name=row.debtor_name,
            identifier=identifier,
            id_type=identity.id_type,
            sex=row.debtor_sex if person else None,
            birth_date=identity.birth_date if person else None,
            legal_representative=None if person else row.legal_representative,
            court_code=row.court_code,
            court_name=row.court_name,
            case_number=row.case_number,
            basis_document_number=details.basis.document_number,
            basis_issuer=details.basis.issuer,
            obligations=details.obligations,
            amount_cents=details.amount_cents,
            performance=details.performance,
            grounds=list(row.grounds),
            filed_on=row.filed_on,
            listed_on=row.listed_on,
            term_years=row.term_years,
            expires_on=row.expires_on,
            removal=_removal(row),
        )
    if profile.name == "housing_construction":
        return HousingConstructionRecord(
            id=row.id,
            version=row.version,
            status=row.status,
            name=row.debtor_name,
            credit_code=identifier,
            id_type=identity.id_type,
            legal_representative=row.legal_representative,
            court_code=row.court_code,
            court_name=row.court_name,
            case_number=row.case_number,
            basis_document_number=details.basis.document_number,
            basis_issuer=details.basis.issuer,
            obligations=details.obligations,
            amount_cents=details.amount_cents,
            performance=details.performance,
            grounds=list(row.grounds),
            listed_on=row.listed_on,
            removal=_removal(row),
        )
    if profile.name == "personnel_oversight":
        special = details.special_subject
        return PersonnelOversightRecord(
            id=row.id,
            version=row.version,
            status=row.status,
            kind=row.debtor_kind,
            name=row.debtor_name,
            identifier=identifier,
            id_type=identity.id_type,
            legal_representative=None if row.debtor_kind == "person" else row.legal_representative,
            special_subject=row.special_subject,
            employer=None if special is None else special.employer,
            court_code=row.court_code,
            court_name=row.court_name,
            case_number=row.case_number,
            basis_document_number=details.basis.document_number,
            basis_issuer=details.basis.issuer,
            obligations=details.obligations,
            amount_cents=details.amount_cents,
            performance=details.performance,
            grounds=list(row.grounds),
            listed_on=row.listed_on,
            removal=_removal(row),
        )
    if row.debtor_kind == "person":
        return EnterpriseSupervisionPersonRecord(
            id=row.id,
            version=row.version,
            status=row.status,
            kind="person",
            name=row.debtor_name,
            id_number=identifier,
            id_type=identity.id_type,
            court_code=row.court_code,
            court_name=row.court_name,
            case_number=row.case_number,
            listed_on=row.listed_on,
            removal=_removal(row),
        )
    return EnterpriseSupervisionRecord(
        id=row.id,
        version=row.version,
        status=row.status,
        kind="organization",
        name=row.debtor_name,
        credit_code=identifier,
        id_type=identity.id_type,
        legal_representative=row.legal_representative,
        court_code=row.court_code,
        court_name=row.court_name,
        case_number=row.case_number,
        grounds=list(row.grounds),
        listed_on=row.listed_on,
        removal=_removal(row),
    )

"""What the law publishes about a listing (SPC Provisions Art. 6), and nothing else.

Every public surface (search hits, the public web page, feeds, exports, the `public`
agency profile) builds its entries here, so that one allow-list decides what leaves.
No full identifier, no creditor, no signature material, no client ids.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec
from sqlalchemy import Select, select

from registry.calendar import china_date
from registry.courts.models import Court
from registry.identity.identifiers import PROVINCES
from registry.listings.details import PublicPerformance, listing_details
from registry.listings.models import Listing


class PublicEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: str  # "person" or "organization"
    name: str
    sex: str | None  # "M"/"F", persons only
    # Persons only: the age reached in the year of publication (publication year minus birth
    # year). Fixed for the entry's life and never finer than the birth year, so that no
    # public field, however often read, narrows the birth date below one year.
    age_at_publication: int | None
    # registry.identity.types.ID_TYPES: the document the identifier is
    id_type: str
    # Persons: masked (`11****1984********`: province and birth year, registry.identity.types.
    # mask_person); organisations: the code in full (public registration data).
    identifier_masked: str
    legal_representative: str | None  # organisations only
    court_code: str
    court_name: str
    province_code: str | None
    province: str | None
    case_number: str
    basis_document_number: str
    basis_issuer: str
    obligations: str
    amount_cents: int | None
    performance: PublicPerformance
    grounds: list[str]
    filed_on: date
    published_on: date


def public_columns() -> Select[*tuple[Any, ...]]:
    """The listing and court columns `public_entry` needs; add filters and order to taste."""
    return select(
        Listing.id,
        Listing.status,
        Listing.debtor_kind,
        Listing.debtor_name,
        Listing.debtor_sex,
        Listing.debtor_birth_year,
        Listing.debtor_id_type,
        Listing.debtor_id_masked,
        Listing.legal_representative,
        Listing.court_code,
        Court.name.label("court_name"),
        Listing.province_code,
        Listing.case_number,
        Listing.details,
        Listing.grounds,
        Listing.filed_on,
        Listing.published_at,
    ).join(Court, Court.code == Listing.court_code)


def age_at_publication(birth_year: int, published_on: date) -> int:
    """The age reached in the year of publication: never finer than the birth year."""
    return published_on.year - birth_year


def public_entry(row: Any, today: date | None = None) -> PublicEntry:
    """`row` carries the columns of `public_columns()` (a Row, or anything with those attributes).
    `today` is not used: nothing public depends on the day an entry is read."""
    details = listing_details(row.details)
    person = row.debtor_kind == "person"
    birth_year = row.debtor_birth_year
    published_on = china_date(row.published_at)
    return PublicEntry(
        id=row.id,
        kind=row.debtor_kind,
        name=row.debtor_name,
        sex=row.debtor_sex if person else None,
        age_at_publication=age_at_publication(birth_year, published_on)
        if person and birth_year is not None
        else None,
        id_type=row.debtor_id_type,
        identifier_masked=row.debtor_id_masked,
        legal_representative=None if person else row.legal_representative,
        court_code=row.court_code,
        court_name=row.court_name,
        province_code=row.province_code,
        province=PROVINCES.get(row.province_code) if row.province_code else None,
        case_number=row.case_number,
        basis_document_number=details.basis.document_number,
        basis_issuer=details.basis.issuer,
        obligations=details.obligations,
        amount_cents=details.amount_cents,
        performance=details.performance,
        grounds=list(row.grounds),
        filed_on=row.filed_on,
        published_on=published_on,
    )

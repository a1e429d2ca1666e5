"""The identity a bank's subject names, for checks and watchlists alike."""

from __future__ import annotations

from registry.checks.schemas import CheckSubject, WatchSubjectIn
from registry.identity.types import Identity, parse_subject


def subject_identity(subject: CheckSubject | WatchSubjectIn) -> Identity:
    """A person (`id_type`, `id_number`, `nationality`) or an organisation (`credit_code`,
    `organization_code` or `registration`): IdentifierError unless exactly one validates."""
    registration = subject.registration
    return parse_subject(
        id_number=subject.id_number,
        id_type=subject.id_type,
        nationality=subject.nationality,
        credit_code=subject.credit_code,
        organization_code=subject.organization_code,
        registration=None if registration is None else (registration.country, registration.number),
    )

"""The identity a bank's subject names, for checks and watchlists alike."""

from __future__ import annotations

from registry.checks.schemas import SUBJECT_TEXT_MAX, CheckSubject, WatchSubjectIn
from registry.identity.identifiers import IdentifierError
from registry.identity.types import Identity, parse_subject
from registry.problems import Problem
from registry.text import check_text


def _readable(text: str | None, field: str, code: str) -> None:
    """IdentifierError `code` when `text` is too long or holds a character `registry.text`
    forbids (its rule and wording; the character named as U+XXXX, the text never shown)."""
    if text is None:
        return
    if len(text) > SUBJECT_TEXT_MAX:
        raise IdentifierError(code, f"{field} is at most {SUBJECT_TEXT_MAX} characters")
    try:
        check_text(text, None)
    except Problem as problem:
        raise IdentifierError(code, f"{field}: {problem.detail}") from None


def subject_identity(subject: CheckSubject | WatchSubjectIn) -> Identity:
    """A person (`id_type`, `id_number`, `nationality`) or an organisation (`credit_code`,
    `organization_code` or `registration`): IdentifierError unless exactly one validates.

    The body-wide text check leaves a subject's identifier fields and name to this one
    (`checked_by_handler`): text that is too long or holds a control or format character is
    this subject's error, with its field's code (`subject_identifier` for a name), and the
    rest of its batch is answered."""
    _readable(subject.id_number, "id_number", "invalid_id_number")
    _readable(subject.id_type, "id_type", "unknown_id_type")
    _readable(subject.nationality, "nationality", "invalid_nationality")
    _readable(subject.credit_code, "credit_code", "invalid_credit_code")
    _readable(subject.organization_code, "organization_code", "invalid_organization_code")
    registration = subject.registration
    if registration is not None:
        _readable(registration.country, "registration country", "invalid_registration_country")
        _readable(registration.number, "registration number", "invalid_registration_number")
    if isinstance(subject, CheckSubject):
        _readable(subject.name, "name", "subject_identifier")
    return parse_subject(
        id_number=subject.id_number,
        id_type=subject.id_type,
        nationality=subject.nationality,
        credit_code=subject.credit_code,
        organization_code=subject.organization_code,
        registration=None if registration is None else (registration.country, registration.number),
    )

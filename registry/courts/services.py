"""Courts and their signing keys."""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from registry.courts.models import Court, CourtKey
from registry.eventlog.services import EventDraft, append_events
from registry.eventlog.types import EventType
from registry.identity.identifiers import (
    PROVINCES,
    IdentifierError,
    ascii_digits,
    normalise_court_code,
    normalise_text,
    province_of_court,
)
from registry.identity.signing import b64url, weak_public_key
from registry.problems import Problem
from registry.text import check_text
from registry.timeutil import iso


def key_id_for(public_key: bytes) -> str:
    """A key's id is its fingerprint, so the same key can never be registered twice."""
    return "ck_" + hashlib.sha256(public_key).hexdigest()[:16]


SUPREME_COURT = "最高法"
# A court's or an API client's name: a short text, as a listing's short text fields.
NAME_MAX = 200


def checked_name(raw: str, what: str, pointer: str) -> str:
    """`raw` as a name is kept: the one text rule (`registry.text`) on the text as given
    (normalising would turn some controls into spaces), then NFKC with white space collapsed,
    and 1 to `NAME_MAX` characters. Else 422 `invalid_field`, naming `what` (the command
    line shows only the detail) and pointing at `pointer`."""
    if not raw.isascii():
        try:
            raw.encode()
        except UnicodeEncodeError:
            # A lone surrogate: a command-line argument that was not UTF-8 (no database takes it).
            raise Problem(422, "invalid_field", f"{what} is not UTF-8 text", pointer=pointer) from None
    try:
        check_text(raw, pointer)
    except Problem as problem:
        raise Problem(problem.status, problem.code, f"{what}: {problem.detail}", pointer=pointer) from None
    name = normalise_text(raw)
    if not name:
        raise Problem(422, "invalid_field", f"{what} is blank", pointer=pointer)
    if len(name) > NAME_MAX:
        raise Problem(
            422, "invalid_field", f"{what} holds {len(name)} characters, at most {NAME_MAX}", pointer=pointer
        )
    return name


# Courts are never deleted: a court once found need not be looked up again.
_KNOWN_COURTS: set[str] = set()


def court_exists(conn: Connection, code: str) -> bool:
    """Whether a court is registered under `code`: a filter naming none is refused, not
    answered with nothing (read as "not listed", or as zero figures)."""
    if code in _KNOWN_COURTS:
        return True
    if conn.execute(select(Court.code).where(Court.code == code)).first() is None:
        return False
    _KNOWN_COURTS.add(code)
    return True


def court_level(code: str) -> int:
    """0 the SPC, 1 a high court (province abbreviation), 2 an intermediate court (two digits),
    3 a basic court (four digits): the shapes of court codes in case numbers."""
    if code == SUPREME_COURT:
        return 0
    return {0: 1, 2: 2, 4: 3}.get(len(code) - 1, 3)


def check_superior(code: str, superior: str) -> None:
    """A superior court is one level up and, below the SPC, in the same province."""
    if court_level(superior) != court_level(code) - 1 or (
        superior != SUPREME_COURT and superior[0] != code[0]
    ):
        raise Problem(
            422,
            "superior_court_invalid",
            f"the superior court of {code} is the court one level up in its province "
            "(basic -> intermediate -> high -> 最高法)",
            pointer="/superior_code",
        )


def checked_province(raw: str | None, code: str) -> str | None:
    """The province code a court is registered with: `raw` (NFKC, so full-width digits fold;
    never another script's digits) if it is a known two-digit code and the court code's own
    province, else 422 `invalid_field`. None: the court code's province (none for 最高法 or
    a military court, whose province any known code may name)."""
    own = province_of_court(code)
    if raw is None:
        return own
    province = "".join(unicodedata.normalize("NFKC", raw).split())
    if not ascii_digits(province) or province not in PROVINCES:
        raise Problem(
            422,
            "invalid_field",
            "the province (--province) is a two-digit province code, e.g. 11 for 北京",
            pointer="/province_code",
        )
    if own is not None and province != own:
        raise Problem(
            422,
            "invalid_field",
            f"the province (--province) of {code} is {own} ({PROVINCES[own]}), not {province}",
            pointer="/province_code",
        )
    return province


def add_court(
    conn: Connection,
    code: str,
    name: str,
    province_code: str | None,
    *,
    actor: str,
    now: datetime,
    superior: str | None = None,
) -> str:
    try:
        code = normalise_court_code(code)
        superior = normalise_court_code(superior) if superior is not None else None
    except IdentifierError as exc:
        raise Problem(422, exc.code, exc.message) from exc
    name = checked_name(name, "the court name", "/name")
    province = checked_province(province_code, code)
    if conn.execute(select(Court.code).where(Court.code == code)).first() is not None:
        raise Problem(409, "court_exists", f"court {code} is already registered")
    if superior is not None:
        check_superior(code, superior)
        if conn.execute(select(Court.code).where(Court.code == superior)).first() is None:
            raise Problem(404, "court_not_found", f"superior court {superior} is not registered")
    conn.execute(
        insert(Court),
        [
            {
                "code": code,
                "name": name,
                "province_code": province,
                "created_at": now,
                "superior_code": superior,
            }
        ],
    )
    data: dict[str, Any] = {"name": name}
    if superior is not None:
        data["superior_code"] = superior
    append_events(conn, [EventDraft(EventType.COURT_ADDED, actor, court_code=code, data=data)], now)
    return code


def set_superior(conn: Connection, code: str, superior: str, *, actor: str, now: datetime) -> None:
    """Name (or change) the court one level up of a registered court."""
    try:
        code = normalise_court_code(code)
        superior = normalise_court_code(superior)
    except IdentifierError as exc:
        raise Problem(422, exc.code, exc.message) from exc
    check_superior(code, superior)
    found = set(conn.execute(select(Court.code).where(Court.code.in_([code, superior]))).scalars())
    for needed in (code, superior):
        if needed not in found:
            raise Problem(404, "court_not_found", f"court {needed} is not registered")
    conn.execute(update(Court).where(Court.code == code).values(superior_code=superior))
    append_events(
        conn,
        [EventDraft(EventType.COURT_SUPERIOR_SET, actor, court_code=code, data={"superior_code": superior})],
        now,
    )


def check_key_validity(valid_from: datetime, valid_until: datetime | None) -> None:
    """A key whose validity ends before it starts could never sign: a typo, refused."""
    if valid_until is not None and valid_until <= valid_from:
        raise Problem(
            422,
            "invalid_field",
            "valid_until must be later than now (when the key starts)",
            pointer="/valid_until",
        )


def add_key(
    conn: Connection,
    court_code: str,
    public_key: bytes,
    *,
    valid_from: datetime,
    valid_until: datetime | None,
    actor: str,
    now: datetime,
) -> str:
    weak = weak_public_key(public_key)
    if weak is not None:
        raise Problem(422, "invalid_public_key", weak)
    check_key_validity(valid_from, valid_until)
    try:
        court_code = normalise_court_code(court_code)
    except IdentifierError as exc:
        raise Problem(422, exc.code, exc.message) from exc
    if conn.execute(select(Court.code).where(Court.code == court_code)).first() is None:
        raise Problem(404, "court_not_found", f"court {court_code} is not registered")
    key_id = key_id_for(public_key)
    if conn.execute(select(CourtKey.key_id).where(CourtKey.key_id == key_id)).first() is not None:
        raise Problem(409, "key_exists", "this public key is already registered")
    conn.execute(
        insert(CourtKey),
        [
            {
                "key_id": key_id,
                "court_code": court_code,
                "public_key": public_key,
                "valid_from": valid_from,
                "valid_until": valid_until,
                "revoked_at": None,
                "revocation_reason": None,
                "created_at": now,
            }
        ],
    )
    append_events(
        conn,
        [
            EventDraft(
                EventType.COURT_KEY_ADDED,
                actor,
                court_code=court_code,
                data={
                    "key_id": key_id,
                    "public_key": public_key.hex(),
                    "valid_from": iso(valid_from),
                    "valid_until": iso(valid_until) if valid_until else None,
                },
            )
        ],
        now,
    )
    return key_id


def revoke_key(conn: Connection, key_id: str, reason: str, *, actor: str, now: datetime) -> None:
    reason = checked_name(reason, "the revocation reason", "/reason")
    row = conn.execute(select(CourtKey).where(CourtKey.key_id == key_id)).one_or_none()
    if row is None:
        raise Problem(404, "key_not_found", "no court key has this id")
    if row.revoked_at is not None:
        raise Problem(409, "key_revoked", "the key is already revoked")
    conn.execute(
        update(CourtKey).where(CourtKey.key_id == key_id).values(revoked_at=now, revocation_reason=reason)
    )
    append_events(
        conn,
        [
            EventDraft(
                EventType.COURT_KEY_REVOKED,
                actor,
                court_code=row.court_code,
                data={"key_id": key_id, "reason": reason},
            )
        ],
        now,
    )


def unusable_court_keys(conn: Connection) -> list[tuple[str, str, str]]:
    """Unrevoked court keys no signature can verify under (key id, court, why): registered
    before registration refused such keys. Their courts need a new key."""
    rows = conn.execute(
        select(CourtKey.key_id, CourtKey.court_code, CourtKey.public_key).where(CourtKey.revoked_at.is_(None))
    )
    return [
        (key_id, court_code, why)
        for key_id, court_code, public_key in rows
        if (why := weak_public_key(bytes(public_key))) is not None
    ]


def list_courts(conn: Connection) -> list[dict[str, Any]]:
    """Courts with their public keys: public information, so anyone can re-verify a signature."""
    keys: dict[str, list[dict[str, Any]]] = {}
    for key in conn.execute(select(CourtKey).order_by(CourtKey.created_at)):
        keys.setdefault(key.court_code, []).append(
            {
                "key_id": key.key_id,
                "alg": "Ed25519",
                "public_key": b64url(bytes(key.public_key)),
                "valid_from": iso(key.valid_from),
                "valid_until": iso(key.valid_until) if key.valid_until else None,
                "revoked_at": iso(key.revoked_at) if key.revoked_at else None,
            }
        )
    return [
        {
            "code": c.code,
            "name": c.name,
            "province_code": c.province_code,
            "superior_code": c.superior_code,
            "keys": keys.get(c.code, []),
        }
        for c in conn.execute(select(Court).order_by(Court.code))
    ]

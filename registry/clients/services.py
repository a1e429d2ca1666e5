"""API clients: keys, roles, and the court a court client is bound to."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from registry.clients.models import ApiClient
from registry.courts.models import Court
from registry.courts.services import checked_name
from registry.eventlog.services import EventDraft, append_events
from registry.eventlog.types import EventType
from registry.identity.identifiers import IdentifierError, normalise_court_code
from registry.ids import new_id
from registry.problems import Problem
from registry.timeutil import iso

ROLES = ("admin", "court", "bank", "agency", "media")
KEY_PREFIX = "rk_"


@dataclass(frozen=True)
class Principal:
    client_id: str
    role: str
    court_code: str | None

    @property
    def actor(self) -> str:
        return f"client:{self.client_id}"

    @property
    def bound_court(self) -> str | None:
        """The only court whose listings this client may touch; None means any (admin)."""
        return self.court_code if self.role == "court" else None


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(api_key: str) -> bytes:
    # Keys are 256 bits of randomness, so a fast hash is enough: there is nothing to guess.
    return hashlib.sha256(api_key.encode()).digest()


def create_client(
    conn: Connection, name: str, role: str, court_code: str | None, *, actor: str, now: datetime
) -> tuple[str, str]:
    """Returns (client id, API key). The key is shown once and never stored. The name is a
    short text (`checked_name`); the court code is folded as `registry court add` folds it."""
    if role not in ROLES:
        raise Problem(422, "unknown_role", f"role must be one of {', '.join(ROLES)}")
    if (role == "court") != (court_code is not None):
        raise Problem(
            422, "court_binding", "a court client is bound to exactly one court; other roles to none"
        )
    name = checked_name(name, "the client name", "/name")
    if court_code is not None:
        try:
            court_code = normalise_court_code(court_code)
        except IdentifierError as exc:
            raise Problem(422, exc.code, exc.message, pointer="/court_code") from exc
    if (
        court_code is not None
        and conn.execute(select(Court.code).where(Court.code == court_code)).first() is None
    ):
        raise Problem(404, "court_not_found", f"court {court_code} is not registered")
    client_id = "cl_" + new_id().lower()
    api_key = new_api_key()
    conn.execute(
        insert(ApiClient),
        [
            {
                "id": client_id,
                "name": name,
                "role": role,
                "court_code": court_code,
                "key_hash": hash_key(api_key),
                "key_prefix": api_key[:10],
                "created_at": now,
                "revoked_at": None,
            }
        ],
    )
    append_events(
        conn,
        [
            EventDraft(
                EventType.CLIENT_CREATED,
                actor,
                court_code=court_code,
                data={"client_id": client_id, "role": role},
            )
        ],
        now,
    )
    return client_id, api_key


def revoke_client(conn: Connection, client_id: str, *, actor: str, now: datetime) -> None:
    updated = conn.execute(
        update(ApiClient)
        .where(ApiClient.id == client_id, ApiClient.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if updated.rowcount != 1:
        raise Problem(404, "client_not_found", "no active client has this id")
    append_events(conn, [EventDraft(EventType.CLIENT_REVOKED, actor, data={"client_id": client_id})], now)


def rotate_key(conn: Connection, client_id: str, *, actor: str, now: datetime) -> str:
    """A new API key for an active client, the old one refused from this commit on: the
    client keeps its id, and with it its subscriptions, unanswered notices, watchlist and
    query log (a new client would start without them). Returns the key, shown once."""
    api_key = new_api_key()
    updated = conn.execute(
        update(ApiClient)
        .where(ApiClient.id == client_id, ApiClient.revoked_at.is_(None))
        .values(key_hash=hash_key(api_key), key_prefix=api_key[:10])
    )
    if updated.rowcount != 1:
        raise Problem(404, "client_not_found", "no active client has this id")
    append_events(conn, [EventDraft(EventType.CLIENT_KEY_ROTATED, actor, data={"client_id": client_id})], now)
    return api_key


def authenticate(conn: Connection, api_key: str) -> Principal | None:
    row = conn.execute(
        select(ApiClient.id, ApiClient.role, ApiClient.court_code).where(
            ApiClient.key_hash == hash_key(api_key), ApiClient.revoked_at.is_(None)
        )
    ).first()
    return None if row is None else Principal(row.id, row.role, row.court_code)


def list_clients(conn: Connection) -> list[dict[str, Any]]:
    return [
        {
            "id": c.id,
            "name": c.name,
            "role": c.role,
            "court_code": c.court_code,
            "key_prefix": c.key_prefix,
            "created_at": iso(c.created_at),
            "revoked_at": iso(c.revoked_at) if c.revoked_at else None,
        }
        for c in conn.execute(select(ApiClient).order_by(ApiClient.created_at))
    ]

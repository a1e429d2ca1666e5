"""The event log as admins read it (`GET /v1/events`)."""

from __future__ import annotations

from typing import Any

import msgspec


class EventRead(msgspec.Struct, kw_only=True):
    seq: int
    occurred_at: str
    type: str
    actor: str
    court_code: str | None
    listing_id: str | None
    listing_version: int | None
    # Free-form by design: each event type records its own facts (README, "Following the
    # event log"), never a personal identifier.
    data: dict[str, Any]
    hash: str  # SHA-256 over this event and its predecessor's hash, hex


class EventPage(msgspec.Struct, kw_only=True):
    events: list[EventRead]
    next_after: int
    head: int

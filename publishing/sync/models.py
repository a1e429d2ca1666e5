from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base
from registry.timeutil import UtcDateTime


class Subscription(Base):
    """One agency's feed of the event log, filtered through one field profile.

    `cursor` is the last log position the agency has acknowledged (a 2xx to a push, or an
    ack call when pulling): everything at or below it is done, everything above is owed.
    `delivered_head` is the furthest position handed out to a pulling agency, the limit
    of what it may acknowledge. `start_seq` is the first position it may read after: its
    `from_seq`, lowered only by an admin's replay; nothing before it ever leaves. A
    subscription whose client is revoked is `ended` (`ended_at`) for good. A push worker
    holds the subscription through the lease (`lease_owner`, `lease_until`) while it
    delivers, so two workers never send at once.
    """

    __tablename__ = "sync_subscriptions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("api_clients.id"), index=True)
    profile: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(8))  # "push" or "pull"
    endpoint_url: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))  # "active", "paused", "failing", "ended"
    cursor: Mapped[int] = mapped_column(BigInteger)
    start_seq: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    delivered_head: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    failures_total: Mapped[int] = mapped_column(BigInteger)
    delivered_total: Mapped[int] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_delivered_seq: Mapped[int | None] = mapped_column(BigInteger)
    last_delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # A worker that found its lease taken over mid-delivery (it stopped; nothing was lost).
    lease_lost_total: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    last_lease_lost_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # Removals acknowledged through the removal lane, ahead of the cursor (`LaneEvent`).
    lane_delivered_total: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    lane_last_delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class LaneEvent(Base):
    """A removal (or a lift) that a push subscription's agency acknowledged through the
    removal lane, ahead of the subscription's cursor (docs/sync.md, "The removal lane").

    Only events above the cursor have a row: the main lane passes over them when it reaches
    them, and the cursor move that passes them deletes their rows (a replay deletes them
    all, so that everything after the replayed position is sent again, in order).
    """

    __tablename__ = "sync_lane_events"

    subscription_id: Mapped[str] = mapped_column(ForeignKey("sync_subscriptions.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    listing_id: Mapped[str] = mapped_column(String(32))
    acked_at: Mapped[datetime] = mapped_column(UtcDateTime())


class SyncState(Base):
    """What one subscription's agency has acknowledged about one listing: the basis of the
    drift report, and (occurred_at -> acked_at) of the delivery latency figures."""

    __tablename__ = "sync_states"

    subscription_id: Mapped[str] = mapped_column(ForeignKey("sync_subscriptions.id"), primary_key=True)
    listing_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    listing_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # "active" or "removed" as the agency knows it
    seq: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    acked_at: Mapped[datetime] = mapped_column(UtcDateTime())

    # The latency figures read one subscription's latest acknowledgements.
    __table_args__ = (Index("ix_sync_states_subscription_acked_at", "subscription_id", "acked_at"),)


class AssistanceNotice(Base):
    """The court's assistance notice (协助执行通知书, 2010 Opinion Art. 19) to one subscribed
    agency about one listing: `impose` when listed, `lift` when removed (Art. 21).

    The agency acknowledges it, or files an objection (Art. 20): recorded and routed to the
    court, but the measure stands and the notice stays owed until acknowledged. Unacknowledged
    past `due_at`, it is overdue and listed for escalation (Art. 24).
    """

    __tablename__ = "assistance_notices"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("sync_subscriptions.id"))
    client_id: Mapped[str] = mapped_column(ForeignKey("api_clients.id"))
    listing_id: Mapped[str] = mapped_column(ForeignKey("listings.id"))
    listing_version: Mapped[int] = mapped_column(Integer)
    court_code: Mapped[str] = mapped_column(String(16), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # "impose" or "lift"
    seq: Mapped[int] = mapped_column(BigInteger)  # the event that called for it
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    due_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    objection: Mapped[str | None] = mapped_column(Text)
    objected_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        UniqueConstraint("subscription_id", "listing_id", "kind", "seq"),
        # An agency's notices a page at a time, in the order they were issued.
        Index("ix_assistance_notices_client_seq", "client_id", "seq", "id"),
    )

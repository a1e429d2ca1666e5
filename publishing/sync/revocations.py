"""A revoked client's subscriptions end: a reader of the event log (cursor `sync.revocations`)
turns each `client.revoked` into `ended` subscriptions, each recorded as
`sync.subscription_ended`.

Nothing waits for this reader to stop the flow: every path that sends or serves an agency's
data checks the client itself (revoked keys do not authenticate; push claims, the check
before each request and notice issue pass over revoked clients), so a revocation stops
pushes, pulls and notices the moment it commits. The reader makes the end permanent and
visible: an ended subscription cannot be resumed or replayed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, select, update

from publishing.sync.models import Subscription
from registry.eventlog.readers import LogEvent, LogReader
from registry.eventlog.services import EventDraft, append_events, lock_head
from registry.eventlog.types import EventType

CURSOR = "sync.revocations"


def end_subscriptions(conn: Connection, events: Sequence[LogEvent], now: datetime) -> None:
    clients = [e.data["client_id"] for e in events if isinstance(e.data.get("client_id"), str)]
    if clients:
        # The log head before the subscription rows, the one lock order of every writer: a
        # pause, resume or replay takes them in that order too, and the other would deadlock.
        lock_head(conn)
    for client_id in clients:
        ended = end_client_subscriptions(conn, client_id, now)
        if ended:
            append_events(
                conn,
                [
                    EventDraft(
                        EventType.SUBSCRIPTION_ENDED,
                        "system:revocation",
                        data={"subscription_id": sub_id, "client_id": client_id, "reason": "client_revoked"},
                    )
                    for sub_id in ended
                ],
                now,
            )


def end_client_subscriptions(conn: Connection, client_id: str, now: datetime) -> list[str]:
    """End every subscription of the client not ended yet; returns their ids."""
    ids = list(
        conn.execute(
            select(Subscription.id)
            .where(Subscription.client_id == client_id, Subscription.state != "ended")
            .order_by(Subscription.id)
        ).scalars()
    )
    if ids:
        conn.execute(
            update(Subscription)
            .where(Subscription.id.in_(ids))
            .values(
                state="ended",
                ended_at=now,
                next_attempt_at=None,
                lease_owner=None,
                lease_until=None,
                updated_at=now,
            )
        )
    return ids


READER = LogReader(CURSOR, end_subscriptions, {EventType.CLIENT_REVOKED})

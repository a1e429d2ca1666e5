"""Subscriptions and their cursors: create, pause, resume, replay; pull and acknowledge.

All functions take a synchronous `Connection` in the caller's transaction (run them with
`conn.run_sync`), so that a refusal leaves nothing written.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

import msgspec
from sqlalchemy import Connection, Table, case, delete, func, insert, select, update

from publishing.sync.models import LaneEvent, Subscription, SyncState
from publishing.sync.profiles import (
    PROFILES,
    Profile,
    ProfileRecord,
    admits,
    leaves_scope,
    load_listings,
    render,
)
from registry.clients.models import ApiClient
from registry.db import dialect_insert
from registry.endpoints import PushPolicy
from registry.eventlog.models import Event
from registry.eventlog.readers import EVENT_COLUMNS, LogEvent, read_events
from registry.eventlog.services import EventDraft, append_events, head, lock_head
from registry.eventlog.types import LISTING_EVENTS, REMOVAL_EVENTS, EventType
from registry.identity.crypto import DataKeyring
from registry.ids import new_id
from registry.problems import Problem
from registry.timeutil import as_utc, iso

MODES = ("push", "pull")
SUBSCRIPTIONS = cast(Table, Subscription.__table__)
# Clients whose key still works: a revoked client's subscriptions receive nothing more.
ACTIVE_CLIENTS = select(ApiClient.id).where(ApiClient.revoked_at.is_(None))


class RemovalInfo(msgspec.Struct, frozen=True):
    reason: str
    effective_on: str


class EventHead(msgspec.Struct, frozen=True, kw_only=True):
    """What an event an agency receives says of itself, whatever the profile."""

    seq: int
    idempotency_key: str
    type: str
    occurred_at: str
    listing_id: str
    listing_version: int


class SyncEvent(EventHead, frozen=True, kw_only=True):
    """One event as an agency receives it. `listing` is the profile's view of the listing
    as it stands when the event is sent (receivers apply events in `seq` order and keep
    the highest `listing_version`); it is null only for the `public` profile once a
    listing has left the public list."""

    listing: ProfileRecord | None
    removal: RemovalInfo | None = None


# ---- administration ----


ENDPOINT = {"pointer": "/endpoint_url", "code": "invalid_endpoint_url"}


def validate_endpoint(url: str, policy: PushPolicy) -> str:
    """The endpoint's form and, when it is an address, the address (`vet_endpoint` resolves
    a name: run it first, outside the transaction)."""
    return policy.check_url(url, **ENDPOINT)


async def vet_endpoint(url: str | None, policy: PushPolicy) -> None:
    if url is not None:
        await policy.vet(url, **ENDPOINT)


def profile_of(name: str) -> Profile:
    profile = PROFILES.get(name)
    if profile is None:
        raise Problem(
            422,
            "unknown_profile",
            f"profile must be one of {', '.join(sorted(PROFILES))}",
            pointer="/profile",
        )
    return profile


def create_subscription(
    conn: Connection,
    *,
    client_id: str,
    profile: str,
    mode: str,
    endpoint_url: str | None,
    from_seq: int,
    actor: str,
    now: datetime,
    policy: PushPolicy,
) -> dict[str, Any]:
    profile_of(profile)
    if mode not in MODES:
        raise Problem(422, "unknown_mode", "mode must be push or pull", pointer="/mode")
    if mode == "push":
        if endpoint_url is None:
            raise Problem(
                422, "endpoint_required", "a push subscription needs an endpoint_url", pointer="/endpoint_url"
            )
        endpoint_url = validate_endpoint(endpoint_url, policy)
    elif endpoint_url is not None:
        raise Problem(
            422, "endpoint_not_allowed", "a pull subscription has no endpoint_url", pointer="/endpoint_url"
        )
    last_seq, _ = head(conn)
    if from_seq < 0 or from_seq > last_seq:
        raise Problem(
            422, "cursor_beyond_head", f"from_seq must be between 0 and {last_seq}", pointer="/from_seq"
        )
    agency = conn.execute(
        select(ApiClient.role, ApiClient.revoked_at).where(ApiClient.id == client_id)
    ).first()
    if agency is None or agency.revoked_at is not None:
        raise Problem(404, "client_not_found", "no active client has this id", pointer="/client_id")
    if agency.role != "agency":
        raise Problem(
            422, "not_an_agency", "subscriptions belong to clients with the agency role", pointer="/client_id"
        )
    sub_id = "sub_" + new_id().lower()
    conn.execute(
        insert(Subscription).values(
            id=sub_id,
            client_id=client_id,
            profile=profile,
            mode=mode,
            endpoint_url=endpoint_url,
            state="active",
            cursor=from_seq,
            start_seq=from_seq,
            delivered_head=from_seq,
            attempts=0,
            failures_total=0,
            delivered_total=0,
            created_at=now,
            updated_at=now,
        )
    )
    _audit(
        conn,
        EventType.SUBSCRIPTION_CREATED,
        actor,
        now,
        sub_id,
        client_id=client_id,
        profile=profile,
        mode=mode,
    )
    return inspect_subscription(conn, sub_id)


def _audit(conn: Connection, kind: EventType, actor: str, now: datetime, sub_id: str, **data: Any) -> None:
    append_events(conn, [EventDraft(kind, actor, data={"subscription_id": sub_id, **data})], now)


def load_subscription(conn: Connection, sub_id: str, *, lock: bool = False) -> Any:
    query = select(SUBSCRIPTIONS).where(SUBSCRIPTIONS.c.id == sub_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise Problem(404, "subscription_not_found", "no subscription has this id")
    return row


def _not_ended(sub: Any) -> None:
    if sub.state == "ended":
        raise Problem(409, "subscription_ended", "this subscription ended when its client was revoked")


def readable(sub: Any) -> None:
    """Refuse the agency every read of its profile's data (events, snapshot, drift, notices)
    while the subscription is paused or ended, as for pushes."""
    _not_ended(sub)
    if sub.state == "paused":
        raise Problem(409, "subscription_paused", "this subscription is paused")


def set_state(conn: Connection, sub_id: str, state: str, *, actor: str, now: datetime) -> dict[str, Any]:
    """Pause, or resume (which also clears a `failing` flag and its retry count).

    Never of an ended subscription, even when the revocation's reader ends it meanwhile: the
    log head first (the one lock order; the change is logged), then the row, checked locked."""
    lock_head(conn)
    _not_ended(load_subscription(conn, sub_id, lock=True))
    values: dict[str, Any] = {"state": state, "updated_at": now}
    if state == "active":
        values |= {"attempts": 0, "next_attempt_at": None}
    conn.execute(update(Subscription).where(Subscription.id == sub_id).values(**values))
    paused = state == "paused"
    _audit(
        conn, EventType.SUBSCRIPTION_PAUSED if paused else EventType.SUBSCRIPTION_RESUMED, actor, now, sub_id
    )
    return inspect_subscription(conn, sub_id)


def replay(conn: Connection, sub_id: str, from_seq: int, *, actor: str, now: datetime) -> dict[str, Any]:
    """Deliver again everything after `from_seq` (receivers deduplicate by idempotency key).
    A replay from before the subscription's start moves the start back: the admin's decision.
    It clears a `failing` flag but leaves a paused subscription paused: it applies on resume.
    Locked as `set_state` is, lest it replay a subscription ended meanwhile."""
    last_seq, _ = lock_head(conn)
    sub = load_subscription(conn, sub_id, lock=True)
    _not_ended(sub)
    if from_seq < 0 or from_seq > last_seq:
        raise Problem(
            422, "cursor_beyond_head", f"from_seq must be between 0 and {last_seq}", pointer="/from_seq"
        )
    conn.execute(
        update(Subscription)
        .where(Subscription.id == sub_id)
        .values(
            cursor=from_seq,
            start_seq=min(int(sub.start_seq), from_seq),
            delivered_head=from_seq,
            state=case((Subscription.state == "failing", "active"), else_=Subscription.state),
            attempts=0,
            next_attempt_at=None,
            updated_at=now,
        )
    )
    # Everything after `from_seq` goes again, in order: the lane's removals too.
    conn.execute(delete(LaneEvent).where(LaneEvent.subscription_id == sub_id))
    _audit(conn, EventType.SUBSCRIPTION_REPLAYED, actor, now, sub_id, from_seq=from_seq)
    return inspect_subscription(conn, sub_id)


def inspect_subscription(conn: Connection, sub_id: str) -> dict[str, Any]:
    sub = load_subscription(conn, sub_id)
    last_seq, _ = head(conn)
    return {
        "id": sub.id,
        "client_id": sub.client_id,
        "profile": sub.profile,
        "mode": sub.mode,
        "endpoint_url": sub.endpoint_url,
        "state": sub.state,
        "cursor": sub.cursor,
        "start_seq": sub.start_seq,
        "head": last_seq,
        # An ended subscription is owed nothing: its backlog would grow for ever and alert.
        "backlog": 0 if sub.state == "ended" else max(0, last_seq - sub.cursor),
        "last_delivered_seq": sub.last_delivered_seq,
        "last_delivered_at": iso(sub.last_delivered_at) if sub.last_delivered_at else None,
        "delivered_total": sub.delivered_total,
        "failures_total": sub.failures_total,
        "attempts": sub.attempts,
        "next_attempt_at": iso(sub.next_attempt_at) if sub.next_attempt_at else None,
        "last_error": sub.last_error,
        "lease_lost_total": sub.lease_lost_total,
        "last_lease_lost_at": iso(sub.last_lease_lost_at) if sub.last_lease_lost_at else None,
        "removal_lane": {
            "delivered_total": sub.lane_delivered_total,
            "last_delivered_at": iso(sub.lane_last_delivered_at) if sub.lane_last_delivered_at else None,
            "ahead_of_cursor": conn.execute(
                select(func.count()).select_from(LaneEvent).where(LaneEvent.subscription_id == sub_id)
            ).scalar_one(),
        },
        "ended_at": iso(sub.ended_at) if sub.ended_at else None,
        "created_at": iso(sub.created_at),
    }


def list_subscriptions(conn: Connection, client_id: str | None = None) -> list[dict[str, Any]]:
    query = select(Subscription.id).order_by(Subscription.created_at, Subscription.id)
    if client_id is not None:
        query = query.where(Subscription.client_id == client_id)
    return [inspect_subscription(conn, sub_id) for sub_id in conn.execute(query).scalars()]


# ---- the events an agency receives ----


class RenderedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One admitted log event rendered for a profile, before it is addressed to a
    subscription: the same for every subscription of that profile."""

    seq: int
    type: str
    occurred_at: str
    listing_id: str
    listing_version: int
    listing: ProfileRecord | None
    removal: RemovalInfo | None


def render_range(
    conn: Connection, profile: Profile, after: int, limit: int, keyring: DataKeyring, today: date
) -> tuple[list[RenderedEvent], int]:
    """Up to `limit` log events after `after`, filtered and rendered for the profile: read,
    loaded, decrypted and rendered once, whatever number of subscriptions it is sent to.

    Returns the events and the position scanned to: events the profile does not admit
    (other debtor kinds, non-listing events) are passed over, and the cursor moves past them.
    """
    raw = read_events(conn, after, limit)
    if not raw:
        return [], after
    return [rendered for rendered, _ in _render(conn, profile, raw, keyring, today)], raw[-1].seq


def _render(
    conn: Connection, profile: Profile, raw: list[LogEvent], keyring: DataKeyring, today: date
) -> list[tuple[RenderedEvent, bool]]:
    """The admitted events of `raw`, rendered, each with whether its listing leaves the
    profile's scope with it."""
    out: list[tuple[RenderedEvent, bool]] = []
    for event, version, row, left in _admitted(conn, profile, raw):
        removal = None
        if event.type in REMOVAL_EVENTS:
            removal = RemovalInfo(event.data["reason"], event.data["effective_on"])
        rendered = RenderedEvent(
            seq=event.seq,
            type=event.type,
            occurred_at=iso(event.occurred_at),
            listing_id=row.id,
            listing_version=version,
            listing=None if left else render(profile, row, keyring, today),
            removal=removal,
        )
        out.append((rendered, left))
    return out


# ---- the removal lane (push only; docs/sync.md, "The removal lane") ----

# Removals one lane request carries at most, and log events one look for them reads past.
LANE_BATCH = 100


@dataclass(frozen=True)
class LaneLook:
    """What one look for removals found: the removals to send ahead (rendered) and the log
    position looked up to (the next look starts there)."""

    events: list[RenderedEvent]
    looked_to: int


def lane_removals(
    conn: Connection,
    profile: Profile,
    cursor: int,
    after: int,
    sent: Collection[int],
    keyring: DataKeyring,
    today: date,
) -> LaneLook:
    """Removals (and lifts: amendments by which a listing leaves the profile's scope) above
    `after` whose listing's every earlier event is at or below the acknowledged `cursor`, not
    already sent through the lane (`sent`), rendered as the main lane renders them.

    A removal of a listing that still has an event in (cursor, its seq) is left to the main
    lane: never a removal before its own listing's earlier events.
    """
    last_seq, _ = head(conn)
    kinds = set(REMOVAL_EVENTS) | ({EventType.LISTING_AMENDED} if profile.special_only else set())
    found = conn.execute(
        select(Event.seq, Event.listing_id)
        .where(Event.seq > after, Event.seq <= last_seq, Event.type.in_(sorted(kinds)))
        .order_by(Event.seq)
        .limit(LANE_BATCH)
    ).all()
    looked_to = found[-1].seq if len(found) == LANE_BATCH else last_seq
    wanted = {row.listing_id: row.seq for row in found if row.seq not in sent and row.listing_id is not None}
    if not wanted:
        return LaneLook([], looked_to)
    # The first event of each listing above the cursor that the agency is sent: the candidate
    # itself, or it waits. Only listing events count: an acknowledged notice or a correction
    # of the listing is never pushed, and must not hold its removal behind the backlog.
    first_above = conn.execute(
        select(Event.listing_id, func.min(Event.seq))
        .where(
            Event.listing_id.in_(sorted(wanted)),
            Event.seq > cursor,
            Event.type.in_(sorted(LISTING_EVENTS)),
        )
        .group_by(Event.listing_id)
    ).all()
    ready = sorted(wanted[listing_id] for listing_id, first in first_above if wanted[listing_id] == first)
    if not ready:
        return LaneLook([], looked_to)
    raw = [LogEvent(*row) for row in conn.execute(select(*EVENT_COLUMNS).where(Event.seq.in_(ready)))]
    raw.sort(key=lambda event: event.seq)
    events = [
        rendered
        for rendered, left in _render(conn, profile, raw, keyring, today)
        if rendered.type in REMOVAL_EVENTS or left
    ]
    return LaneLook(events, looked_to)


def lane_sent(conn: Connection, sub_id: str) -> set[int]:
    """The events the lane has had acknowledged above the subscription's cursor."""
    return set(conn.execute(select(LaneEvent.seq).where(LaneEvent.subscription_id == sub_id)).scalars())


def record_lane(
    conn: Connection,
    sub_id: str,
    owner: str,
    events: list[SyncEvent],
    now: datetime,
    lease_until: datetime,
) -> bool:
    """The agency acknowledged `events` through the lane: note them ahead of the cursor (the
    main lane passes over them), record what the agency now holds, renew the lease. Only
    while `owner` holds the lease; returns whether it did."""
    renewed = conn.execute(
        update(Subscription)
        .where(Subscription.id == sub_id, Subscription.lease_owner == owner)
        .values(
            lease_until=lease_until,
            attempts=0,
            next_attempt_at=None,
            last_error=None,
            delivered_total=Subscription.delivered_total + len(events),
            lane_delivered_total=Subscription.lane_delivered_total + len(events),
            lane_last_delivered_at=now,
            updated_at=now,
        )
    )
    if renewed.rowcount != 1:
        return False
    conn.execute(
        dialect_insert(conn, LaneEvent).on_conflict_do_nothing(),
        [
            {"subscription_id": sub_id, "seq": e.seq, "listing_id": e.listing_id, "acked_at": now}
            for e in events
        ],
    )
    upsert_states(conn, [held_state(sub_id, e, now) for e in events])
    return True


def for_subscription(
    sub_id: str, rendered: list[RenderedEvent], skip: Collection[int] = ()
) -> list[SyncEvent]:
    """The rendered events as one subscription receives them (its idempotency keys), but
    those in `skip` (already acknowledged through the removal lane)."""
    return [
        SyncEvent(
            seq=e.seq,
            idempotency_key=f"{sub_id}:{e.seq}",
            type=e.type,
            occurred_at=e.occurred_at,
            listing_id=e.listing_id,
            listing_version=e.listing_version,
            listing=e.listing,
            removal=e.removal,
        )
        for e in rendered
        if e.seq not in skip
    ]


def collect_events(
    conn: Connection,
    sub_id: str,
    profile: Profile,
    after: int,
    limit: int,
    keyring: DataKeyring,
    today: date,
) -> tuple[list[SyncEvent], int]:
    """`render_range` addressed to one subscription (pull: one agency reads at a time)."""
    rendered, scanned = render_range(conn, profile, after, limit, keyring, today)
    return for_subscription(sub_id, rendered), scanned


def _admitted(
    conn: Connection, profile: Profile, events: list[LogEvent]
) -> list[tuple[LogEvent, int, Any, bool]]:
    """(event, its listing version, the listing row, whether the listing leaves the profile's
    scope with it) of each listing event the profile admits."""
    listed = [e for e in events if e.type in LISTING_EVENTS]
    rows = load_listings(conn, (e.listing_id for e in listed if e.listing_id is not None))
    admitted = []
    for event in listed:
        row = rows.get(event.listing_id) if event.listing_id is not None else None
        if row is None or event.listing_version is None:
            continue
        if admits(profile, row):
            admitted.append((event, event.listing_version, row, False))
        elif leaves_scope(profile, event.type, event.listing_version, row):
            admitted.append((event, event.listing_version, row, True))
    return admitted


def owned_subscription(conn: Connection, sub_id: str, client_id: str, mode: str | None = None) -> Any:
    """The subscription, if this agency owns it (404 otherwise: others' ids are not confirmed)."""
    sub = conn.execute(select(SUBSCRIPTIONS).where(SUBSCRIPTIONS.c.id == sub_id)).first()
    if sub is None or sub.client_id != client_id:
        raise Problem(404, "subscription_not_found", "you have no subscription with this id")
    if mode is not None and sub.mode != mode:
        raise Problem(409, "wrong_mode", f"this is a {sub.mode} subscription")
    return sub


def pull_events(
    conn: Connection,
    sub_id: str,
    client_id: str,
    after: int | None,
    limit: int,
    keyring: DataKeyring,
    today: date,
) -> dict[str, Any]:
    sub = owned_subscription(conn, sub_id, client_id, "pull")
    readable(sub)
    start = sub.cursor if after is None else after
    last_seq, _ = head(conn)
    if start > last_seq:
        raise Problem(
            422, "cursor_beyond_head", f"after must be at most the log head {last_seq}", pointer="after"
        )
    if start < sub.start_seq:
        # What the log held before the subscription began was never this agency's to read
        # (removed and expired listings among it); only an admin's replay moves the start.
        raise Problem(
            422,
            "cursor_before_start",
            f"this subscription starts after log position {sub.start_seq}",
            pointer="after",
            extra={"start_seq": int(sub.start_seq)},
        )
    events, scanned = collect_events(conn, sub_id, profile_of(sub.profile), start, limit, keyring, today)
    if scanned > sub.delivered_head:
        conn.execute(update(Subscription).where(Subscription.id == sub_id).values(delivered_head=scanned))
    return {
        "events": [msgspec.to_builtins(e) for e in events],
        "next_after": scanned,
        "head": last_seq,
        "cursor": sub.cursor,
    }


def acknowledge(conn: Connection, sub_id: str, client_id: str, cursor: int, now: datetime) -> dict[str, Any]:
    """The agency has applied everything up to `cursor`, which must have been handed out."""
    sub = owned_subscription(conn, sub_id, client_id, "pull")
    _not_ended(sub)
    if cursor > sub.delivered_head:
        raise Problem(
            409,
            "cursor_not_delivered",
            f"nothing beyond {sub.delivered_head} was delivered to this subscription",
            pointer="/cursor",
        )
    if cursor < sub.cursor:
        raise Problem(409, "cursor_behind", f"already acknowledged up to {sub.cursor}", pointer="/cursor")
    if cursor > sub.cursor:
        states, admitted = acked_states(conn, sub_id, profile_of(sub.profile), sub.cursor, cursor, now)
        if not advance(conn, sub_id, sub.cursor, cursor, now, states, admitted):
            raise Problem(409, "cursor_conflict", "another acknowledgement moved the cursor; read it again")
    return {"cursor": cursor}


def acked_states(
    conn: Connection, sub_id: str, profile: Profile, old: int, new: int, now: datetime
) -> tuple[list[dict[str, Any]], int]:
    """What the agency holds once it has acknowledged (old, new]: per listing, the last
    admitted event; and how many admitted events that range holds."""
    states: dict[str, dict[str, Any]] = {}
    admitted = 0
    position = old
    while position < new:
        raw = read_events(conn, position, min(1000, new - position))
        if not raw:
            break
        for event, version, row, left in _admitted(conn, profile, raw):
            admitted += 1
            # A listing that left the profile's scope is, to its agency, a removed one.
            event_type = EventType.LISTING_REMOVED if left else event.type
            states[row.id] = state_row(sub_id, row.id, version, event_type, event.seq, event.occurred_at, now)
        position = raw[-1].seq
    return list(states.values()), admitted


def state_row(
    sub_id: str,
    listing_id: str,
    version: int,
    event_type: str,
    seq: int,
    occurred_at: datetime,
    now: datetime,
) -> dict[str, Any]:
    return {
        "subscription_id": sub_id,
        "listing_id": listing_id,
        "listing_version": version,
        "status": "removed" if event_type in REMOVAL_EVENTS else "active",
        "seq": seq,
        "occurred_at": occurred_at,
        "acked_at": now,
    }


def held_state(sub_id: str, event: SyncEvent, now: datetime) -> dict[str, Any]:
    """What the agency holds of the event's listing once it acknowledged a pushed `event`:
    sent with no record, the listing has left its profile (removed, expired, or out of its
    scope), which to the agency is a removed one."""
    return state_row(
        sub_id,
        event.listing_id,
        event.listing_version,
        EventType.LISTING_REMOVED if event.listing is None else event.type,
        event.seq,
        datetime.fromisoformat(event.occurred_at),
        now,
    )


def advance(
    conn: Connection,
    sub_id: str,
    old: int,
    new: int,
    now: datetime,
    states: list[dict[str, Any]],
    admitted: int,
    *,
    lease_owner: str | None = None,
    lease_until: datetime | None = None,
    lane_passed: bool = False,
) -> bool:
    """Move the cursor from `old` to `new` and record what the agency now holds.

    `lane_passed`: the move passes events the removal lane sent, whose rows go with it.

    With `lease_owner`, only while that worker still holds the lease (and the lease is
    renewed to `lease_until`): a worker whose lease ran out must not move a cursor another
    worker now owns. Returns whether it moved.
    """
    query = update(Subscription).where(Subscription.id == sub_id, Subscription.cursor == old)
    values: dict[str, Any] = {
        "cursor": new,
        "delivered_head": func.max(Subscription.delivered_head, new)
        if conn.dialect.name == "sqlite"
        else func.greatest(Subscription.delivered_head, new),
        "attempts": 0,
        "next_attempt_at": None,
        "last_error": None,
        "last_delivered_seq": new,
        "last_delivered_at": now,
        "delivered_total": Subscription.delivered_total + admitted,
        "updated_at": now,
    }
    if lease_owner is not None:
        query = query.where(Subscription.lease_owner == lease_owner)
        values["lease_until"] = lease_until
    if conn.execute(query.values(**values)).rowcount != 1:
        return False
    if lane_passed:
        conn.execute(delete(LaneEvent).where(LaneEvent.subscription_id == sub_id, LaneEvent.seq <= new))
    # Several events of one listing in one range: the last one is what the agency holds.
    latest = {row["listing_id"]: row for row in states}
    upsert_states(conn, list(latest.values()))
    return True


def upsert_states(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """One row per (subscription, listing): the last event the agency acknowledged."""
    if not rows:
        return
    stmt = dialect_insert(conn, SyncState)
    stmt = stmt.on_conflict_do_update(
        index_elements=[SyncState.subscription_id, SyncState.listing_id],
        set_={
            "listing_version": stmt.excluded.listing_version,
            "status": stmt.excluded.status,
            "seq": stmt.excluded.seq,
            "occurred_at": stmt.excluded.occurred_at,
            "acked_at": stmt.excluded.acked_at,
        },
    )
    for start in range(0, len(rows), 1000):
        conn.execute(stmt, rows[start : start + 1000])


def latency_percentiles(conn: Connection, sub_id: str, sample: int = 1000) -> dict[str, float | None]:
    """Seconds from an event's commit to the agency's acknowledgement, over the latest acks."""
    rows = conn.execute(
        select(SyncState.occurred_at, SyncState.acked_at)
        .where(SyncState.subscription_id == sub_id)
        .order_by(SyncState.acked_at.desc())
        .limit(sample)
    ).all()
    values = sorted((as_utc(r.acked_at) - as_utc(r.occurred_at)).total_seconds() for r in rows)
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None, "samples": 0}

    def pick(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))], 3)

    return {
        "p50": pick(0.5),
        "p90": pick(0.9),
        "p99": pick(0.99),
        "max": round(values[-1], 3),
        "samples": len(values),
    }


def subscription_status(conn: Connection, sub_id: str) -> dict[str, Any]:
    return inspect_subscription(conn, sub_id) | {"latency_seconds": latency_percentiles(conn, sub_id)}

"""What agency sync answers over HTTP: subscriptions for admins, acknowledgements and
notices for agencies. (The events themselves are `services.SyncEvent`, per profile.)"""

from __future__ import annotations

from typing import Any

import msgspec

from publishing.sync.services import EventHead, RemovalInfo


class LatencySeconds(msgspec.Struct, kw_only=True):
    """From an event's commit to the agency's acknowledgement, over the latest 1,000."""

    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None
    samples: int


class RemovalLane(msgspec.Struct, kw_only=True):
    """Removals sent ahead of the backlog (push only; docs/sync.md, "The removal lane")."""

    delivered_total: int
    last_delivered_at: str | None
    ahead_of_cursor: int  # acknowledged through the lane, the cursor not yet past them


class SubscriptionRead(msgspec.Struct, kw_only=True):
    id: str
    client_id: str
    profile: str
    mode: str  # push or pull
    endpoint_url: str | None
    state: str  # active, paused, failing (until an admin acts) or ended (its client was revoked)
    cursor: int
    start_seq: int  # nothing at or before it is ever delivered (lowered only by a replay)
    head: int
    backlog: int
    last_delivered_seq: int | None
    last_delivered_at: str | None
    delivered_total: int
    failures_total: int
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    # A worker found its lease taken over mid-delivery (a request outlived it): it stopped.
    lease_lost_total: int
    last_lease_lost_at: str | None
    removal_lane: RemovalLane
    ended_at: str | None
    created_at: str


class SubscriptionStatus(SubscriptionRead, kw_only=True):
    latency_seconds: LatencySeconds


class StatusList(msgspec.Struct):
    subscriptions: list[SubscriptionStatus]


class DriftCounts(msgspec.Struct, kw_only=True):
    missing_at_agency: int
    not_removed_at_agency: int
    outdated_at_agency: int


class DriftSamples(msgspec.Struct, kw_only=True):
    missing_at_agency: list[str]
    not_removed_at_agency: list[str]
    outdated_at_agency: list[str]


class DriftReport(msgspec.Struct, kw_only=True):
    subscription: str
    profile: str
    cursor: int
    head: int
    pending_listings: int
    active_in_agreement: int
    drift: DriftCounts
    in_drift: int
    samples: DriftSamples  # listing ids, a few of each kind


class SyncEventRead(EventHead, frozen=True, kw_only=True):
    """One event as a pull subscription reads it (`services.SyncEvent`, as pushes carry it)."""

    # Your profile's record of the listing as it stands now: the fields of the profile's
    # struct in publishing/sync/profiles.py (CreditReferenceRecord, HousingConstructionRecord,
    # EnterpriseSupervisionRecord) or the public entry. Four shapes in one field, told apart
    # by the subscription rather than a tag, which a schema cannot say: documented as an
    # object. Null once the listing has left the profile: for the public profile, the public
    # list; for personnel_oversight, the amendment that dropped the special-subject mark.
    listing: dict[str, Any] | None
    removal: RemovalInfo | None = None


class PullPage(msgspec.Struct, kw_only=True):
    events: list[SyncEventRead]
    next_after: int  # acknowledge this once you have applied the page
    head: int
    cursor: int  # what you have acknowledged so far


class AckAnswer(msgspec.Struct):
    cursor: int


class NoticeSummary(msgspec.Struct, kw_only=True):
    id: str
    subscription_id: str
    listing_id: str
    listing_version: int
    court_code: str
    kind: str  # impose or lift
    issued_at: str
    due_at: str
    acknowledged_at: str | None
    objection: str | None
    objected_at: str | None
    overdue: bool


class AgencyNotice(NoticeSummary, kw_only=True):
    client_id: str  # the agency the notice was sent to


class NoticeRead(NoticeSummary, kw_only=True):
    title: str
    legal_basis: str
    court_name: str
    case_number: str
    profile: str
    # The debtor through the subscription's profile: the fields of that profile's record
    # (see the events' `listing`); null once the public profile no longer shows the listing.
    debtor: dict[str, Any] | None
    measures: list[str]

"""Every type of event the log holds, and the sets readers select by.

The values are the strings stored in `events.type` (and hashed into the chain): a new
type is added here, never renamed.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    LISTING_PUBLISHED = "listing.published"
    LISTING_AMENDED = "listing.amended"
    LISTING_REMOVED = "listing.removed"
    LISTING_EXPIRED = "listing.expired"
    COURT_ADDED = "court.added"
    COURT_KEY_ADDED = "court.key_added"
    COURT_KEY_REVOKED = "court.key_revoked"
    CLIENT_CREATED = "client.created"
    CLIENT_REVOKED = "client.revoked"
    CLIENT_KEY_ROTATED = "client.key_rotated"
    KEYS_ROTATED = "keys.rotated"
    SUBSCRIPTION_CREATED = "sync.subscription_created"
    SUBSCRIPTION_PAUSED = "sync.subscription_paused"
    SUBSCRIPTION_RESUMED = "sync.subscription_resumed"
    SUBSCRIPTION_REPLAYED = "sync.subscription_replayed"
    SUBSCRIPTION_ENDED = "sync.subscription_ended"
    NOTICE_ACKNOWLEDGED = "notice.acknowledged"
    NOTICE_OBJECTED = "notice.objected"
    COURT_SUPERIOR_SET = "court.superior_set"
    # Correction and review (SPC Provisions Art. 9, 11, 12): ids and codes only, never the
    # applicant's statement, contact or attachments.
    CORRECTION_FILED = "correction.filed"
    CORRECTION_DECIDED = "correction.decided"
    CORRECTION_RECONSIDERATION_REQUESTED = "correction.reconsideration_requested"
    CORRECTION_FOUND_BY_COURT = "correction.found_by_court"
    CORRECTION_CARRIED_OUT = "correction.carried_out"
    CERTIFICATE_ISSUED = "certificate.issued"


# A listing's life: what search, feeds, watchlists, notices, agencies and the transparency log follow.
LISTING_EVENTS = frozenset(
    {
        EventType.LISTING_PUBLISHED,
        EventType.LISTING_AMENDED,
        EventType.LISTING_REMOVED,
        EventType.LISTING_EXPIRED,
    }
)
# The listing leaves the public list: removed by its court, or its fixed term ended.
REMOVAL_EVENTS = frozenset({EventType.LISTING_REMOVED, EventType.LISTING_EXPIRED})

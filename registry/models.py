"""Every table, imported in one place for Alembic's autogenerate."""

from publishing.sync.models import AssistanceNotice, Subscription, SyncState
from registry.checks.models import CheckLogEntry, CheckUsage, WatchChange, WatchRegistration, WatchSubject
from registry.clients.models import ApiClient
from registry.courts.models import Court, CourtKey
from registry.db import Base
from registry.eventlog.models import Event, LogHead, ReaderCursor
from registry.listings.models import Listing, ListingVersion, Removal
from search.models import SearchDoc

__all__ = [
    "ApiClient",
    "AssistanceNotice",
    "Base",
    "CheckLogEntry",
    "CheckUsage",
    "Court",
    "CourtKey",
    "Event",
    "Listing",
    "ListingVersion",
    "LogHead",
    "ReaderCursor",
    "Removal",
    "SearchDoc",
    "Subscription",
    "SyncState",
    "WatchChange",
    "WatchRegistration",
    "WatchSubject",
]

"""Every table, imported in one place for Alembic's autogenerate (publishing/ tables too:
this list is part of the composition root)."""

from publishing.feeds.models import Publication
from publishing.sync.models import AssistanceNotice, Subscription, SyncState
from registry.checks.models import CheckLogEntry, CheckUsage, WatchChange, WatchRegistration, WatchSubject
from registry.clients.models import ApiClient
from registry.courts.models import Court, CourtKey
from registry.db import Base
from registry.eventlog.models import Event, LogHead, ReaderCursor
from registry.listings.models import Listing, ListingVersion, Removal
from registry.translog.models import LogCheckpoint, LogLeaf, LogNode, LogSalt
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
    "LogCheckpoint",
    "LogHead",
    "LogLeaf",
    "LogNode",
    "LogSalt",
    "Publication",
    "ReaderCursor",
    "Removal",
    "SearchDoc",
    "Subscription",
    "SyncState",
    "WatchChange",
    "WatchRegistration",
    "WatchSubject",
]

"""The one list of what makes up the service. Adding a package means adding it here."""

from __future__ import annotations

from publishing.exports.plugin import plugin as exports
from publishing.feeds.plugin import plugin as feeds
from publishing.statistics.plugin import plugin as statistics
from publishing.sync.plugin import plugin as sync
from registry.checks.plugin import plugin as checks
from registry.clients.plugin import plugin as clients
from registry.corrections.plugin import plugin as corrections
from registry.courts.plugin import plugin as courts
from registry.eventlog.plugin import plugin as eventlog
from registry.identity.plugin import plugin as identity
from registry.listings.plugin import plugin as listings
from registry.translog.plugin import plugin as translog
from registry.wiring import Plugin
from search.plugin import plugin as search

PLUGINS: tuple[Plugin, ...] = (
    identity,
    courts,
    clients,
    listings,
    corrections,
    eventlog,
    checks,
    translog,
    search,
    sync,
    feeds,
    exports,
    statistics,
)

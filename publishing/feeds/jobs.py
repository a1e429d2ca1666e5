"""The feeds' background job: follow the event log into `publications`."""

from __future__ import annotations

from publishing.feeds.reader import follow_log
from registry.runtime import Services


async def follow_publications(services: Services) -> int:
    """Catch up with the log, one transaction per batch; returns how many events were read."""
    total = 0
    while True:
        read = await services.db.write(follow_log)
        if read == 0:
            return total
        total += read

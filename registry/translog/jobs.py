"""The transparency log's background work: log new events, then sign a checkpoint."""

from __future__ import annotations

import logging
from dataclasses import replace

from registry.eventlog.readers import follow
from registry.runtime import Services
from registry.timeutil import utcnow
from registry.translog.services import READER, make_checkpoint

logger = logging.getLogger("registry.translog")


# Events per write transaction: about 0.1 s of the writer, so that a removal arriving while
# the log catches up on a backlog waits that long at most for this job.
EVENTS_PER_TRANSACTION = 2_000


async def advance_log(services: Services) -> int | None:
    """Append every pending listing event (one transaction per batch), then sign the tree
    if it grew. Returns the new checkpoint's size, or None when nothing changed."""
    await follow(services.db, replace(READER, batch=EVENTS_PER_TRANSACTION))
    size = await services.db.write_behind(
        make_checkpoint, services.signer, services.settings.translog.origin, utcnow()
    )
    if size is not None:
        logger.info("signed log checkpoint at tree size %d", size)
    return size

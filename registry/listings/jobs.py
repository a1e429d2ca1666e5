"""Background work of the listings: fixed terms end on their own (SPC Art. 2, 10)."""

from __future__ import annotations

import logging

from registry.calendar import china_date
from registry.listings.services import expire_due
from registry.runtime import Services
from registry.timeutil import utcnow

logger = logging.getLogger("registry.listings")


async def expire_fixed_terms(services: Services) -> int:
    """Remove every listing whose fixed term has ended; returns how many."""
    total = 0
    while True:
        now = utcnow()
        expired = await services.db.write(expire_due, today=china_date(now), now=now)
        total += expired
        if expired == 0:
            break
    if total:
        logger.info("expired %d fixed-term listings", total)
    return total

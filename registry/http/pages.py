"""What every public HTML page of the service answers with, whichever package renders it."""

from __future__ import annotations

# No script, no frames, nothing from elsewhere; forms only to this site. `no-referrer`
# because a search URL can carry a full ID number. `no-store`: a removed listing, or a
# statistic since corrected, must not linger in a shared cache.
PUBLIC_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

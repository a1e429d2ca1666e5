"""The registry's public signing keys."""

from __future__ import annotations

from typing import Any

from litestar import get

from registry.http.dependencies import Injected
from registry.runtime import Services


@get("/.well-known/jwks.json", media_type="application/jwk-set+json", tags=["public"], sync_to_thread=False)
def jwks(services: Injected[Services]) -> dict[str, Any]:
    """The registry's public signing keys (RFC 7517/8037): verify pushes, receipts, exports
    and checkpoints with them."""
    return services.signer.jwks()

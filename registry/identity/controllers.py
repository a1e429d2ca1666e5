"""The registry's public signing keys."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from registry.runtime import services_of


@get("/.well-known/jwks.json", media_type="application/jwk-set+json", tags=["public"], sync_to_thread=False)
def jwks(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The registry's public signing keys (RFC 7517/8037): verify pushes, receipts, exports
    and checkpoints with them."""
    return services_of(request.app).signer.jwks()

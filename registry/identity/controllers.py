"""The registry's public signing keys."""

from __future__ import annotations

import msgspec
from litestar import get

from registry.http.dependencies import Injected
from registry.identity.schemas import JWKSet
from registry.runtime import Services


@get("/.well-known/jwks.json", media_type="application/jwk-set+json", tags=["public"], sync_to_thread=False)
def jwks(services: Injected[Services]) -> JWKSet:
    """The registry's public signing keys (RFC 7517/8037): verify pushes, receipts, exports
    and checkpoints with them."""
    return msgspec.convert(services.signer.jwks(), JWKSet)

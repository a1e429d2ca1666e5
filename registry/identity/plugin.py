"""The registry's keys: `/.well-known/jwks.json`, `registry keys ...`, and a running
process following its signing key file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from registry.identity import models as _models  # noqa: F401 - registers registry_keys
from registry.identity.cli import keys
from registry.identity.controllers import jwks
from registry.wiring import Plugin

if TYPE_CHECKING:
    from registry.runtime import Services


@asynccontextmanager
async def follow_signing_keys(services: Services) -> AsyncIterator[None]:
    """A web or worker process follows the signing key file, as it follows the secrets file:
    after `registry keys rotate-signing` it publishes the new key at /.well-known/jwks.json
    and signs with it, without a restart (`registry.identity.registry_key.FileSigner`)."""
    services.signer.follow()
    yield


plugin = Plugin(name="identity", routes=[jwks], cli=[keys], resources=[follow_signing_keys])

"""The registry's keys: `/.well-known/jwks.json`, `registry keys ...`."""

from __future__ import annotations

from registry.identity import models as _models  # noqa: F401 - registers registry_keys
from registry.identity.cli import keys
from registry.identity.controllers import jwks
from registry.wiring import Plugin

plugin = Plugin(name="identity", routes=[jwks], cli=[keys])

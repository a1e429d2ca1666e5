"""Courts and their public keys (`/v1/courts`, `registry court ...`)."""

from __future__ import annotations

from registry.courts.cli import court
from registry.courts.controllers import CourtController
from registry.wiring import Plugin

plugin = Plugin(name="courts", routes=[CourtController], cli=[court])

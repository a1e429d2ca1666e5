"""API clients (`registry client ...`)."""

from __future__ import annotations

from registry.clients.cli import client
from registry.wiring import Plugin

plugin = Plugin(name="clients", cli=[client])

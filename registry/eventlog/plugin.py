"""The event log for admins (`/v1/events`) and `registry audit verify`."""

from __future__ import annotations

from registry.eventlog.cli import audit
from registry.eventlog.controllers import EventController
from registry.eventlog.wake import log_notifications
from registry.wiring import Plugin

plugin = Plugin(name="eventlog", routes=[EventController], cli=[audit], resources=[log_notifications])

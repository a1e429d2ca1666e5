"""The delta API's page (`GET /v1/publications`)."""

from __future__ import annotations

import msgspec

from publishing.feeds.entries import PublicationItem


class DeltaPage(msgspec.Struct, kw_only=True):
    items: list[PublicationItem]  # oldest first
    next_after: int  # pass back as `after`
    position: int  # how far into the event log this page's answer reaches

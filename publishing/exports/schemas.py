"""The list of signed daily exports."""

from __future__ import annotations

import msgspec


class ExportLink(msgspec.Struct):
    date: str
    manifest: str  # URL of manifest.json
    signature: str  # URL of manifest.json.sig, a detached signature over the manifest
    # True once a listing it holds was removed: its data files are no longer served (SPC
    # Art. 10), its manifest and signature stay.
    withdrawn: bool


class ExportList(msgspec.Struct):
    exports: list[ExportLink]  # newest first

"""Correction and review (SPC Provisions Art. 9, 11, 12)."""

from __future__ import annotations

from registry.corrections import models as _models  # noqa: F401 - registers the tables
from registry.wiring import Plugin

plugin = Plugin(name="corrections")

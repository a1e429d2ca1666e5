"""Fixtures of the key tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.settings import Settings
from tests.support.harness import Registry


@pytest.fixture
def secrets_file(settings: Settings, registry: Registry) -> Iterator[Path]:
    """The test writes the keys the running server follows; put them back afterwards."""
    path = Path(settings.keys.secrets_file)
    saved = path.read_bytes()
    try:
        yield path
    finally:
        path.write_bytes(saved)

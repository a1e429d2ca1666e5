"""`registry serve --port P` without REGISTRY_PUBLIC_BASE_URL links to where it listens: the
feeds' and exports' links took REGISTRY_PORT (8000), where nothing answered."""

from __future__ import annotations

from pathlib import Path

import feedparser
import httpx
import pytest

from registry.settings import Settings
from tests.support.harness import Registry
from tests.support.processes import web_process

pytestmark = pytest.mark.slow


def test_links_name_the_port_given_on_the_command_line(
    registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    with web_process(settings, {}, tmp_path / "web.log") as url:
        feed = feedparser.parse(httpx.get(f"{url}/feeds/atom.xml").content)
        links = {link.rel: link.href for link in feed.feed.links}
        assert links["self"].startswith(f"{url}/feeds/atom.xml"), links
        assert httpx.get(links["self"]).status_code == 200

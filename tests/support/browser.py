"""Real headless Chromium for the page tests (Debian's `chromium`, driven by Playwright),
with axe-core for accessibility. One module-scoped `browser` fixture: a test module imports it
(`from tests.support.browser import browser`) and gets Chromium, installed with apt-get when it
is missing; the tests skip, saying why, only when it cannot be installed at all."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}


def install_chromium() -> str | None:
    """Installs Debian's chromium if it is missing; returns why it cannot be had, or None."""
    if CHROMIUM.exists():
        return None
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return "/usr/bin/chromium is missing and apt-get cannot install it here (needs Debian and root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
    )
    for step in steps:
        done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            return f"{' '.join(step)} failed: {done.stderr.strip()[-500:]}"
    return None if CHROMIUM.exists() else "apt-get installed chromium but /usr/bin/chromium is absent"


@pytest.fixture(scope="module")
def browser(engine: sa.Engine, server_url: str) -> Iterator[Browser]:
    """One Chromium per module. Playwright's sync API keeps an event loop running in this
    thread while it lives, so the fixtures that call asyncio.run (the migrations) come first,
    and the loop is gone before other modules' tests run."""
    reason = install_chromium()
    if reason is not None:
        pytest.skip(reason)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it stands."""
    violations: list[dict[str, Any]] = Axe().run(page).response["violations"]
    return [v for v in violations if v.get("impact") in ("serious", "critical")]


def no_horizontal_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))

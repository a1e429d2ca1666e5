"""scripts/demo.sh, run as a reader runs it (in a scratch copy of the checkout's layout):
the admin API key it writes is a secret, readable by its owner only (issue 15 #14)."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.harness import free_port

ROOT = Path(__file__).resolve().parents[2]


def _checkout(tmp_path: Path) -> Path:
    """scripts/demo.sh beside a no-op bootstrap and this checkout's .venv."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "demo.sh", tmp_path / "scripts" / "demo.sh")
    bootstrap = tmp_path / "scripts" / "bootstrap.sh"
    bootstrap.write_text("#!/usr/bin/env bash\n")
    bootstrap.chmod(0o755)
    (tmp_path / ".venv").symlink_to(Path(registry_venv()))
    return tmp_path


def registry_venv() -> str:
    return os.environ.get("VIRTUAL_ENV", str(ROOT / ".venv"))


def _run_demo(root: Path) -> None:
    """Start the script, wait until it serves, stop it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env |= {"REGISTRY_PORT": str(port), "REGISTRY_SCHEDULER": "false", "DEMO_LISTINGS": "3"}
    # An open umask, as on many desktops: the script must not rely on the caller's.
    process = subprocess.Popen(
        ["bash", "-c", "umask 022 && exec scripts/demo.sh"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/.well-known/jwks.json", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the demo did not start"
            time.sleep(0.5)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@pytest.mark.slow
def test_the_demo_admin_key_file_is_0600(tmp_path: Path) -> None:
    root = _checkout(tmp_path)
    _run_demo(root)
    key = root / "var" / "demo-admin.key"
    assert key.read_text().strip()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600

    # A key file an earlier version left world-readable is closed on the next start.
    key.chmod(0o644)
    _run_demo(root)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600

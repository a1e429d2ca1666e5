"""The worker's health check: a heartbeat file for `registry worker --check` (containers) and
systemd's notify protocol (READY=1, then WATCHDOG=1) for `Type=notify` units."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from registry.settings import Settings
from service import heartbeat as heartbeat_module
from tests.support.harness import cli_env, registry_bin


def _check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [registry_bin(), "worker", "--check", "--max-age", "30"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.slow
def test_a_running_worker_beats_and_tells_systemd(
    settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    heartbeat = tmp_path / "worker.heartbeat"
    notify_path = tmp_path / "notify.sock"
    env = {
        **cli_env(settings),
        "REGISTRY_WORKER_HEARTBEAT_FILE": str(heartbeat),
        "NOTIFY_SOCKET": str(notify_path),
    }
    missing = _check(env)
    assert missing.returncode == 1 and "heartbeat missing" in missing.stderr
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(notify_path))
        listener.settimeout(60)
        worker = subprocess.Popen(
            [registry_bin(), "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            messages = [listener.recv(100).decode(), listener.recv(100).decode()]
            assert messages == ["READY=1", "WATCHDOG=1"]
            alive = _check(env)
            assert alive.returncode == 0 and "worker alive" in alive.stdout
        finally:
            worker.terminate()
            worker.wait(timeout=20)
    # A worker that stopped beating long ago is reported dead.
    old = time.time() - 600
    os.utime(heartbeat, (old, old))
    stale = _check(env)
    assert stale.returncode == 1 and " s old" in stale.stderr


def test_the_heartbeat_survives_its_directory_being_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """systemd removes a unit's runtime directory when the unit stops; a worker beating in a
    directory removed under it had died of FileNotFoundError."""
    monkeypatch.setattr(heartbeat_module, "HEARTBEAT_SECONDS", 0.05)
    beats = tmp_path / "run" / "registry-worker" / "heartbeat"

    async def removed_between_beats() -> None:
        running = asyncio.create_task(heartbeat_module.beat(beats))
        try:
            await asyncio.sleep(0.2)
            shutil.rmtree(beats.parent)
            await asyncio.sleep(0.3)
            assert not running.done(), "the beat stopped"
            assert beats.exists()
        finally:
            running.cancel()

    asyncio.run(removed_between_beats())

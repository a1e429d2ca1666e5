"""The worker's liveness: a heartbeat file touched every HEARTBEAT_SECONDS from the event loop
that runs the jobs (a stalled loop stops it), read by `registry worker --check` (container
health checks), and systemd's watchdog (`WATCHDOG=1` on $NOTIFY_SOCKET, for `Type=notify`
units with `WatchdogSec=`), so a hung worker is restarted either way."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path

HEARTBEAT_SECONDS = 10.0


def notify(message: str) -> None:
    """Tell systemd (sd_notify protocol): nothing outside a unit that asks for it."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), address)


async def beat(path: Path) -> None:
    """Forever: touch `path` and pet the watchdog, every HEARTBEAT_SECONDS."""
    while True:
        # Each time: the directory may have been removed under a running worker (systemd
        # removes a unit's runtime directory when it stops), and a beat must not fail.
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        notify("WATCHDOG=1")
        await asyncio.sleep(HEARTBEAT_SECONDS)


def heartbeat_age(path: Path) -> float | None:
    """Seconds since the last beat, or None if no worker ever beat here."""
    try:
        return max(0.0, time.time() - path.stat().st_mtime)
    except FileNotFoundError:
        return None

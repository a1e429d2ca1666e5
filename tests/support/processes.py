"""`registry` commands run as processes of their own, as an operator starts them: web
processes (`registry serve --no-scheduler`) and workers, for the tests of the production
shape, the shared limits and the logs; and the pool processes this one started."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from registry.settings import Settings
from tests.support.harness import cli_env, free_port, registry_bin


@contextmanager
def registry_process(
    settings: Settings, args: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`registry ARGS` with the test database and `env`, its stdout and stderr into `log`, as
    journald or compose collect them (a pipe that nobody reads could fill and stall it);
    stopped (SIGTERM, then SIGKILL) at the end."""
    with log.open("wb") as output:
        started = subprocess.Popen(
            [registry_bin(), *args],
            env={**cli_env(settings), **env},
            stdout=output,
            stderr=output,
        )
    try:
        yield started
    finally:
        started.terminate()
        try:
            started.wait(timeout=20)
        except subprocess.TimeoutExpired:
            started.kill()
            started.wait()


def wait_until_up(url: str, started: subprocess.Popen[bytes], path: str = "/healthz") -> None:
    """Until `url + path` answers 200 (a minute at most, and only while the process lives)."""
    deadline = time.monotonic() + 60
    while True:
        assert started.poll() is None, "the process exited"
        try:
            if httpx.get(f"{url}{path}", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} did not start"
        time.sleep(0.1)


@contextmanager
def web_process(settings: Settings, env: dict[str, str], log: Path) -> Iterator[str]:
    """A `registry serve --no-scheduler` on a free port, up; yields its URL."""
    port = free_port()
    command = ["serve", "--no-scheduler", "--port", str(port)]
    with registry_process(settings, command, env, log) as started:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, started)
        yield url


def descendants(root: int) -> set[int]:
    """Every process below `root` (children, theirs, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def pool_workers(root: int | None = None) -> set[int]:
    """Processes below `root` (this one by default) whose command line is a multiprocessing
    child (the ingest pool's workers and its forkserver)."""
    below = descendants(os.getpid() if root is None else root)
    return {pid for pid in below if b"multiprocessing" in _cmdline(pid)}


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, killed and not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""

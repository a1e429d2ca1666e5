"""`registry bench ingest`: signed ingest through `registry import` and the batch endpoint.

Each path gets a fresh scratch database (SQLite in a temporary folder unless a database
URL is given) with the demo courts and their keys, and the same file of signed envelopes.
Both run as real processes: the CLI as a subprocess, the endpoint as `registry serve`
driven over loopback HTTP. Peak memory is the summed RSS of the process tree, sampled.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import resource
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import text

from bench.bulk import bulk_load
from demo.runner import load_demo
from demo.seed import load_signers, write_envelope_file
from publishing.feeds.reader import CURSOR_NAME as FEEDS_CURSOR
from publishing.feeds.reader import JOB as FEEDS_JOB
from publishing.statistics.reader import CURSOR as STATISTICS_CURSOR
from publishing.statistics.reader import JOB as STATISTICS_JOB
from publishing.sync.notices import CURSOR as NOTICES_CURSOR
from publishing.sync.notices import JOB as NOTICES_JOB
from registry.calendar import today_in_china
from registry.checks.watchlist import CURSOR_NAME as WATCHLIST_CURSOR
from registry.checks.watchlist import JOB as WATCHLIST_JOB
from registry.db import create_sync_engine
from registry.listings.ingest import worker_count
from registry.runtime import Services
from registry.settings import DatabaseSettings, KeySettings, ServerSettings, Settings
from registry.translog.services import CURSOR_NAME as TRANSLOG_CURSOR
from registry.translog.services import JOB as TRANSLOG_JOB
from search.embedded import CURSOR as SEARCH_CURSOR
from search.runtime import FOLLOW_JOB as SEARCH_JOB
from service.scheduler import JOB_GROUPS

# ---- what every bench reports beside its figures ----

# Below this a "p99" is the max or one of the two next to it (nearest rank: at 100 samples
# the second-highest): then the bench reports the max, labelled max.
P99_MIN_SAMPLES = 200


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _cpu_seconds() -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "bench_process": own.ru_utime + own.ru_stime,
        "child_processes": children.ru_utime + children.ru_stime,
    }


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


class MachineRun:
    """The machine a bench ran on and the load it ran under: CPU count and model, the load
    average before and after, and CPU time beside wall time (this process and every child
    process it waited for: servers, workers, `registry import`). On a shared machine the
    wall times mean little without these."""

    def __init__(self) -> None:
        self.load_before = load_average()
        self.cpu_before = _cpu_seconds()
        self.started = time.perf_counter()

    def finish(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.started
        cpu = _cpu_seconds()
        used = {name: round(cpu[name] - self.cpu_before[name], 2) for name in cpu}
        return {
            "cpus": os.cpu_count(),
            "cpu_model": _cpu_model(),
            "python": platform.python_version(),
            "load_average_before": self.load_before,
            "load_average_after": load_average(),
            "wall_seconds": round(wall, 2),
            "cpu_seconds": used,
            # Above 1 x cpus means the machine was busy with more than this bench.
            "cpu_seconds_per_wall_second": round(sum(used.values()) / wall, 2) if wall else None,
        }


def timed_figure(figure: dict[str, Any], started_load: list[float]) -> dict[str, Any]:
    """A figure with the load average when its measurement started and ended."""
    return figure | {"load_average": {"before": started_load, "after": load_average()}}


def nearest_rank(samples: int, percent: int) -> int:
    """The index, in sorted order, of the `percent`th percentile of `samples` values by the
    nearest-rank method: the smallest value with at least `percent`% of the values at or below it."""
    return max(0, -(-samples * percent // 100) - 1)


def latency_summary(samples: list[float], *, unit: str = "ms") -> dict[str, Any]:
    """p50, and p99 (nearest rank) only over enough samples (`P99_MIN_SAMPLES`): below that,
    the max, labelled max."""
    ordered = sorted(samples)
    scale = 1000 if unit == "ms" else 1
    digits = 3
    out: dict[str, Any] = {"samples": len(ordered)}
    if not ordered:
        return out
    out[f"p50_{unit}"] = round(statistics.median(ordered) * scale, digits)
    if len(ordered) >= P99_MIN_SAMPLES:
        out[f"p99_{unit}"] = round(ordered[nearest_rank(len(ordered), 99)] * scale, digits)
    out[f"max_{unit}"] = round(ordered[-1] * scale, digits)
    return out


def _tree_memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) bytes of a process and all its descendants, from /proc. RSS counts a page
    shared by several processes (libraries, a forked parent's heap) once per process; PSS
    shares it out among them, so the PSS sum is the memory the tree really holds."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, IndexError):
            continue
    rss, pss, stack = 0, 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/smaps_rollup") as handle:
                for line in handle:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
        except OSError:
            pass
        stack.extend(children.get(current, []))
    return rss, pss


class PeakMemory:
    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.peak_pss, self._stop = pid, 0, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, pss = _tree_memory(self.pid)
            self.peak, self.peak_pss = max(self.peak, rss), max(self.peak_pss, pss)
            self._stop.wait(0.25)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _env(database_url: str, secrets_file: Path, workers: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "REGISTRY_DATABASE_URL": database_url,
            "REGISTRY_SECRETS_FILE": str(secrets_file),
            "REGISTRY_SIGNING_KEY_FILE": str(secrets_file.with_name("signing-keys.json")),
            "REGISTRY_SCHEDULER": "false",
            "REGISTRY_INGEST_WORKERS": str(workers),
            "REGISTRY_LOG_LEVEL": "WARNING",
        }
    )
    return env


def _registry(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "service", *args], env=env, capture_output=True, text=True, check=True
    )


def _prepare_database(database_url: str, secrets_file: Path, workers: int) -> dict[str, str]:
    env = _env(database_url, secrets_file, workers)
    _registry("db", "upgrade", env=env)
    settings = Settings(
        database=DatabaseSettings(url=database_url),
        keys=KeySettings(
            secrets_file=secrets_file, signing_key_file=secrets_file.with_name("signing-keys.json")
        ),
        server=ServerSettings(scheduler=False),
    )

    async def setup() -> None:
        services = Services.create(settings)
        try:
            await load_demo(services, 0, seed=1)
        finally:
            await services.close()

    asyncio.run(setup())
    return env


def import_signed_listings(root: Path, url: str, count: int) -> tuple[dict[str, str], dict[str, Any]]:
    """A scratch database at `url` with the demo courts (their keys in `root`) and `count`
    signed listings through `registry import`; returns (the CLI's env, the import's figures)."""
    workers = worker_count(0)
    env = _prepare_database(url, root / "secrets.json", workers)
    envelopes = root / "envelopes.jsonl"
    today = today_in_china()
    write_envelope_file(
        envelopes, load_signers(root / "demo-keys.json"), count, seed=7, today=today, workers=workers
    )
    imported = _bench_import(env, envelopes, count)
    envelopes.unlink()
    return env, imported


def bulk_listings(root: Path, url: str, count: int, on_top: int) -> tuple[dict[str, str], dict[str, Any]]:
    """For the search and sizes benches only: a scratch database at `url` with the demo
    courts and `count` listings, `count - on_top` of them by the bulk path (`bench.bulk`,
    not an ingest figure) and the last `on_top` signed and stored by `registry import` on
    top of those: the ingest figure at this size, from the real path."""
    workers = worker_count(0)
    env = _prepare_database(url, root / "secrets.json", workers)
    bulk = bulk_load(url, root, count - on_top, seed=7, workers=workers)
    figures: dict[str, Any] = {"bulk": bulk, "import_seconds": None}
    if on_top:
        envelopes = root / "envelopes.jsonl"
        write_envelope_file(
            envelopes,
            load_signers(root / "demo-keys.json"),
            on_top,
            seed=8,
            today=today_in_china(),
            workers=workers,
        )
        load = load_average()
        imported = _bench_import(env, envelopes, on_top)
        envelopes.unlink()
        figures["import_on_top"] = timed_figure(imported | {"listings_before": count - on_top}, load)
        figures["import_seconds"] = imported["seconds"]
    return env, figures


# A bulk-built list's folder under --dataset, shared by the search and checks benches (the
# name is the one datasets were kept under before the checks bench reused them).
BULK_DATASET = "search-bulk"

Build = Callable[[Path, str, int], tuple[dict[str, str], dict[str, Any]]]
Prepare = Callable[[Path, str, dict[str, str]], dict[str, Any]]

_KEY_FILES = ("secrets.json", "signing-keys.json", "demo-keys.json")
_DATASET_FILES = ("bench.db", *_KEY_FILES, "build.json")


def build_or_reuse(
    root: Path,
    url: str,
    count: int,
    dataset: Path | None,
    kind: str,
    build: Build,
    prepare: Prepare | None = None,
) -> tuple[dict[str, str], dict[str, Any]]:
    """`build(root, url, count)` a scratch database, or, with `dataset`, keep what it built in
    `dataset/{kind}-{count}` and copy that on later runs: building a million signed listings
    costs minutes, the benches measure what follows. The copy is of a database nothing has
    run on since it was built, so every run starts from the same state. SQLite: the file
    `root/bench.db` is kept there. PostgreSQL: the database is kept on the server (named in
    `build.json`) and `url` is made from it as a template, then brought to the current
    schema (`registry db upgrade`).

    `prepare(root, url, env)`, when given, runs what a deployment runs on a loaded list
    before serving it (a reindex, the readers brought to the log's head); with `dataset` it
    runs once, on what is kept, and its figures are kept in `build.json` under "prepared":
    at millions of listings it takes longer than the bench that follows."""
    if dataset is None:
        env, built = build(root, url, count)
        return env, built | ({"prepared": prepare(root, url, env)} if prepare else {})
    if not url.startswith("sqlite"):
        return _build_or_reuse_postgres(root, url, count, dataset / f"{kind}-{count}", build, prepare)
    kept = dataset / f"{kind}-{count}"
    if not (kept / "build.json").exists():
        env, built = build(root, url, count)
        if prepare is not None:
            built["prepared"] = prepare(root, url, env)
        kept.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(root / "bench.db")) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the copy must hold everything
        (root / "build.json").write_text(json.dumps(built))
        for name in _DATASET_FILES:
            shutil.copy2(root / name, kept / name)
        return env, built
    for name in _DATASET_FILES:
        shutil.copy2(kept / name, root / name)
    env = _env(url, root / "secrets.json", worker_count(0))
    built = json.loads((root / "build.json").read_text())
    if prepare is not None and "prepared" not in built:
        # A dataset kept before its preparation was: prepared on this copy, every run.
        built["prepared"] = prepare(root, url, env)
    return env, built | {"reused_from": str(kept)}


def _build_or_reuse_postgres(
    root: Path,
    url: str,
    count: int,
    kept: Path,
    build: Build,
    prepare: Prepare | None,
) -> tuple[dict[str, str], dict[str, Any]]:
    base, _, scratch = url.rpartition("/")
    record = kept / "build.json"
    built_now = not record.exists()
    if built_now:
        kept_name = f"{scratch}_kept"
        _postgres_admin(url, f"DROP DATABASE IF EXISTS {kept_name} WITH (FORCE)")
        _postgres_admin(
            url, f"CREATE DATABASE {kept_name} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'"
        )
        _, built = build(root, f"{base}/{kept_name}", count)
        kept.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(built | {"kept_database": kept_name}))
        for name in _KEY_FILES:
            shutil.copy2(root / name, kept / name)
    built = json.loads(record.read_text())
    for name in _KEY_FILES:
        shutil.copy2(kept / name, root / name)
    if prepare is not None and "prepared" not in built:
        kept_url = f"{base}/{built['kept_database']}"
        kept_env = _env(kept_url, root / "secrets.json", worker_count(0))
        _registry("db", "upgrade", env=kept_env)
        built["prepared"] = prepare(root, kept_url, kept_env)
        record.write_text(json.dumps(built))
    started = time.perf_counter()
    _postgres_admin(url, f"DROP DATABASE IF EXISTS {scratch}")
    # FILE_COPY: the default (WAL_LOG) writes every block of a multi-gigabyte copy to the WAL.
    _postgres_admin(url, f"CREATE DATABASE {scratch} TEMPLATE {built['kept_database']} STRATEGY FILE_COPY")
    env = _env(url, root / "secrets.json", worker_count(0))
    _registry("db", "upgrade", env=env)
    return env, built | {
        "reused_from": str(kept),
        "copy_and_upgrade_seconds": round(time.perf_counter() - started, 1),
    }


def _postgres_admin(url: str, statement: str) -> None:
    """One statement outside a transaction (CREATE/DROP DATABASE), on the server's `postgres` database."""
    base, _, _ = url.rpartition("/")

    async def run() -> None:
        conn = await asyncpg.connect(f"{base}/postgres".replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_healthy(http: httpx.Client, seconds: float = 60) -> None:
    """Until the server behind `http` answers /healthz (it is starting in another process)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if http.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("bench server did not start")
        time.sleep(0.1)


def _batches(path: Path, size: int) -> Iterator[bytes]:
    lines: list[bytes] = []
    with path.open("rb") as handle:
        for line in handle:
            lines.append(line.rstrip(b"\n"))
            if len(lines) == size:
                yield b'{"envelopes":[' + b",".join(lines) + b"]}"
                lines = []
    if lines:
        yield b'{"envelopes":[' + b",".join(lines) + b"]}"


def _import_seconds(env: dict[str, str], path: Path) -> float:
    started = time.perf_counter()
    subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "service", "import", str(path)], env=env, capture_output=True, check=True
    )
    return time.perf_counter() - started


def _bench_import(env: dict[str, str], path: Path, count: int) -> dict[str, Any]:
    # The command's own start (interpreter, modules, services, the pool) timed apart, by
    # importing an empty file into the same database first: a second or two, which at a
    # small count is a large share of the whole.
    empty = path.with_name("empty.jsonl")
    empty.write_bytes(b"")
    start_up = _import_seconds(env, empty)
    started = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "service", "import", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    with PeakMemory(process.pid) as memory:
        stdout, _ = process.communicate()
    seconds = time.perf_counter() - started
    summary = json.loads(stdout.strip().splitlines()[-1])
    return {
        "seconds": round(seconds, 2),
        "listings_per_s": round(count / seconds),
        "start_up_seconds": round(start_up, 2),
        "listings_per_s_after_start_up": round(count / (seconds - start_up)) if seconds > start_up else None,
        "peak_rss_mb": round(memory.peak / 2**20),
        "created": summary["created"],
        "rejected": summary["rejected"],
    }


def _bench_batch(
    env: dict[str, str], path: Path, count: int, batch_size: int, senders: int
) -> dict[str, Any]:
    api_key = (
        _registry("client", "create", "bench", "--role", "admin", env=env).stdout.strip().splitlines()[-1]
    )
    port = _free_port()
    servers = serve_as_deployed(port, env)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=600, headers={"Authorization": f"Bearer {api_key}"}) as http:
            wait_until_healthy(http)
            latencies: list[float] = []
            created = 0
            lock = threading.Lock()

            def send(body: bytes) -> None:
                nonlocal created
                sent = time.perf_counter()
                response = http.post(
                    "/v1/listings/batch", content=body, headers={"Content-Type": "application/json"}
                )
                response.raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - sent)
                    created += int(response.json()["summary"]["created"])

            # Two senders keep the server busy preparing one batch while it writes another.
            with PeakMemory(servers[0].pid) as memory:
                started = time.perf_counter()
                with ThreadPoolExecutor(max_workers=senders) as pool:
                    list(pool.map(send, _batches(path, batch_size)))
                seconds = time.perf_counter() - started
    finally:
        stop(servers)
    return {
        "seconds": round(seconds, 2),
        "listings_per_s": round(count / seconds),
        "batch_size": batch_size,
        "concurrent_senders": senders,
        "server": server_description(env),
        "batch_latency_s": latency_summary(latencies, unit="s"),
        "server_peak_rss_mb": round(memory.peak / 2**20),
        "created": created,
    }


def run_ingest_bench(
    *, count: int, batch_size: int, workers: int, database_url: str | None = None, senders: int = 2
) -> dict[str, Any]:
    workers = worker_count(workers)
    scratch_databases: list[str] = []
    with tempfile.TemporaryDirectory(prefix="registry-bench-") as scratch:
        root = Path(scratch)
        secrets_file = root / "secrets.json"

        def fresh_url(name: str) -> str:
            if database_url is None:
                return f"sqlite:///{root / name}.db"
            url = fresh_postgres_database(database_url, name)
            scratch_databases.append(url.rsplit("/", 1)[1])
            return url

        import_env = _prepare_database(fresh_url("import"), secrets_file, workers)
        batch_env = _prepare_database(fresh_url("batch"), secrets_file, workers)
        envelopes = root / "envelopes.jsonl"
        started = time.perf_counter()
        signers = load_signers(secrets_file.parent / "demo-keys.json")
        today = today_in_china()
        write_envelope_file(envelopes, signers, count, seed=7, today=today, workers=workers)
        generated = time.perf_counter() - started
        result: dict[str, Any] = {
            "benchmark": "ingest",
            "database": "sqlite (embedded default)" if database_url is None else "postgresql",
            "listings": count,
            "prepare_workers": workers,
            "generate_and_sign_seconds": round(generated, 2),
            "envelope_file_mb": round(envelopes.stat().st_size / 2**20),
        }
        import_load = load_average()
        result["import"] = timed_figure(_bench_import(import_env, envelopes, count), import_load)
        batch_load = load_average()
        result["batch_endpoint"] = timed_figure(
            _bench_batch(batch_env, envelopes, count, batch_size, senders), batch_load
        )
    if database_url is not None:
        drop_postgres_databases(database_url, scratch_databases)
    return result


def fresh_postgres_database(admin_url: str, name: str, prefix: str = "registry_bench") -> str:
    """Create a scratch database beside the one named by admin_url (UTF-8 locale)."""
    base, _, _ = admin_url.rpartition("/")
    scratch = f"{prefix}_{name}_{os.getpid()}"

    async def create() -> None:
        conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {scratch}")
            await conn.execute(
                f"CREATE DATABASE {scratch} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'"
            )
        finally:
            await conn.close()

    asyncio.run(create())
    return f"{base}/{scratch}"


def drop_postgres_databases(admin_url: str, names: list[str]) -> None:
    async def drop() -> None:
        conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            for name in names:
                await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()

    asyncio.run(drop())


CAUGHT_UP = (
    "SELECT (SELECT last_seq FROM log_head) - coalesce("
    "(SELECT position FROM reader_cursors WHERE name = :cursor), 0)"
)
# The server's readers that work through every event (the watchlist reader too, even with no
# watchlist): until they are at the head (the steady state), their catch-up transactions
# would queue a removal behind them.
STEADY_STATE_READERS = (
    SEARCH_CURSOR,
    FEEDS_CURSOR,
    TRANSLOG_CURSOR,
    WATCHLIST_CURSOR,
    STATISTICS_CURSOR,
    NOTICES_CURSOR,
)


# Each steady-state reader's scheduler job (`registry worker --skip-jobs` takes job ids).
_JOB_OF_READER = {
    SEARCH_CURSOR: SEARCH_JOB,
    FEEDS_CURSOR: FEEDS_JOB,
    TRANSLOG_CURSOR: TRANSLOG_JOB,
    WATCHLIST_CURSOR: WATCHLIST_JOB,
    STATISTICS_CURSOR: STATISTICS_JOB,
    NOTICES_CURSOR: NOTICES_JOB,
}


def skipped_jobs() -> tuple[str, ...]:
    """`REGISTRY_BENCH_SKIP_JOBS` (job ids, comma-separated): background jobs the benches'
    servers and catch-up do not run. For a reader that cannot catch up with a loaded list
    in the time a bench has (the statistics reader at 5,000,000 on PostgreSQL: about 1,000
    events/s), which would otherwise run through every measurement. Reported in the JSON."""
    raw = os.environ.get("REGISTRY_BENCH_SKIP_JOBS", "")
    return tuple(sorted({name.strip() for name in raw.split(",") if name.strip()}))


def _postgresql(env: dict[str, str]) -> bool:
    return env.get("REGISTRY_DATABASE_URL", "").startswith("postgresql")


def _web_and_worker(env: dict[str, str]) -> bool:
    """Whether the server runs as web process and worker: PostgreSQL's production shape
    (`deploy/`), or any database when jobs are left out (`skipped_jobs()`)."""
    return bool(skipped_jobs()) or _postgresql(env)


def serve_as_deployed(
    port: int, env: dict[str, str], stderr: Any = subprocess.DEVNULL
) -> list[subprocess.Popen[bytes]]:
    """The service as each database is deployed, background jobs on: on SQLite (the
    embedded default, one process) `registry serve --scheduler`; on PostgreSQL `registry
    serve --no-scheduler` beside `registry worker --jobs deliveries` and `registry worker
    --skip-jobs deliveries`, as in `deploy/` (in the web process a job's Python work stalls
    requests: at 5,000,000 listings the statistics reader counting a batch of 10,000 held
    them up to 26 s, docs/benchmarks.md; in one worker the readers' Python held the pushes'
    event loop the same way). `skipped_jobs()` are left out of the workers, and give SQLite
    its web process beside one worker (its advice: one worker, docs/operations.md)."""
    serve = [sys.executable, "-m", "service", "serve", "--port", str(port)]
    if not _web_and_worker(env):
        return [subprocess.Popen([*serve, "--scheduler"], env=env, stdout=subprocess.DEVNULL, stderr=stderr)]  # noqa: S603
    return [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)  # noqa: S603 - our own CLI
        for command in [[*serve, "--no-scheduler"], *worker_commands(split=_postgresql(env))]
    ]


def worker_commands(*, split: bool = True) -> list[list[str]]:
    """The `registry worker` command lines, less `skipped_jobs()`: with `split`
    (PostgreSQL) the deliveries in one, every other job in the other, as `deploy/` runs them,
    a worker left with no job not started; else one worker."""
    worker = [sys.executable, "-m", "service", "worker"]
    if not split:
        return [[*worker, "--skip-jobs", ",".join(skipped_jobs())] if skipped_jobs() else worker]
    skipped = set(skipped_jobs())
    deliveries = set(JOB_GROUPS["deliveries"])
    if "deliveries" in skipped:
        skipped |= deliveries
    others_skip = sorted((skipped - deliveries - {"deliveries"}) | {"deliveries"})
    lines = [[*worker, "--skip-jobs", ",".join(others_skip)]]
    if deliveries - skipped:
        jobs = ",".join(sorted(deliveries - skipped)) if skipped & deliveries else "deliveries"
        lines.append([*worker, "--jobs", jobs])
    return lines


def server_description(env: dict[str, str]) -> str:
    if not _web_and_worker(env):
        return "registry serve --scheduler (background jobs on, as deployed)"
    lines = worker_commands(split=_postgresql(env))
    workers = " + ".join(" ".join(["registry", *line[3:]]) for line in lines)
    why = "REGISTRY_BENCH_SKIP_JOBS" if skipped_jobs() else "background jobs on, as deployed on PostgreSQL"
    return f"registry serve --no-scheduler + {workers} ({why})"


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # The figures are taken: a server slow to stop on a loaded machine (a batch's
            # workers winding down) must not lose them.
            process.kill()
            process.wait(timeout=30)


def wait_for_readers(engine: Any, settle_s: float, limit_s: float = 1200) -> float:
    """Wait for the steady state: the server's expiry job runs 5 s after start (a burst of
    expiry events at this scale), and the server's log readers must have caught up with the
    log (from zero, on a freshly imported list); those of skipped jobs are not waited for.
    Returns the seconds that took."""
    readers = [name for name in STEADY_STATE_READERS if _JOB_OF_READER[name] not in skipped_jobs()]
    started = time.monotonic()
    time.sleep(settle_s)
    while time.monotonic() < started + limit_s:
        with engine.connect() as conn:
            behind = [conn.execute(text(CAUGHT_UP), {"cursor": name}).scalar() for name in readers]
        if not any(behind):
            return round(time.monotonic() - started, 1)
        time.sleep(0.5)
    raise RuntimeError(f"the server's log readers did not catch up in {limit_s:.0f} s")


def run_background_readers(env: dict[str, str], url: str) -> float:
    """`registry worker` (the background jobs alone) until every log reader is at the head,
    then stopped: what a deployment's workers do with a loaded list before it is served.
    Returns the seconds it took."""
    skip = ["--skip-jobs", ",".join(skipped_jobs())] if skipped_jobs() else []
    worker = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "service", "worker", *skip], env=env, stdout=subprocess.DEVNULL
    )
    engine = create_sync_engine(url, writer=False)
    try:
        return wait_for_readers(engine, settle_s=7, limit_s=3 * 3600)
    finally:
        engine.dispose()
        worker.terminate()
        worker.wait(timeout=120)

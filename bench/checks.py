"""`registry bench checks`: the bank check against a live server, with its receipt.

A scratch SQLite database (or PostgreSQL) gets N signed demo listings through
`registry import`. Then `registry serve` answers:
- batches of 1,000 subjects (half listed, half not), one at a time, for latency p50/p99:
  right after start, while the server's log readers work through the import, and again
  at the end, once they have caught up (`batch_1000_readers_caught_up`);
- single-subject checks driven by `wrk` (a second process: 64 connections, one thread)
  for requests per second, alternating round by round with the same `wrk` run against a
  bare Litestar JSON endpoint served by the same uvicorn settings on the same machine:
  the ratio (median of the rounds) is the figure.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import msgspec
import uvicorn
from litestar import Litestar, Request, post
from sqlalchemy import text

from bench.common import (
    BULK_DATASET,
    _bench_import,
    _free_port,
    _prepare_database,
    _registry,
    build_or_reuse,
    drop_postgres_databases,
    fresh_postgres_database,
    latency_summary,
    load_average,
    serve_as_deployed,
    server_description,
    stop,
    timed_figure,
    wait_for_readers,
)
from bench.search import _bulk_build, catch_up
from demo.data import DemoGenerator
from demo.seed import load_signers, write_envelope_file
from registry.calendar import today_in_china
from registry.db import create_sync_engine
from registry.identity.crypto import load_secrets
from registry.listings.ingest import worker_count
from registry.listings.prepare import PURPOSE_SIGNED
from registry.settings import DatabaseSettings, KeySettings, Settings

BATCH = 1000
WRK_SCRIPT = """
local bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, "/v1/checks", nil, bodies[i])
end
"""


@post("/v1/checks")
async def bare_check(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The ceiling: read and decode the same body, answer a small JSON object. No database."""
    body = msgspec.json.decode(await request.body())
    return {"check_id": "bare", "subjects": len(body["subjects"]), "listed": False}


def bare_app() -> Litestar:
    return Litestar(route_handlers=[bare_check], debug=False)


def _subjects(envelopes: Path, want: int, seed: int) -> list[dict[str, str]]:
    """ID numbers of listed persons, from the first lines of the signed file."""
    found = []
    with envelopes.open("rb") as handle:
        for line in handle:
            debtor = json.loads(line)["listing"]["debtor"]
            if debtor["kind"] == "person":
                subject = {k: debtor[k] for k in ("id_type", "id_number", "nationality") if k in debtor}
                found.append(subject | {"name": debtor["name"]})
            if len(found) >= want:
                break
    random.Random(seed).shuffle(found)  # noqa: S311 - a reproducible sample, not a secret
    return found


def _listed_in_database(url: str, secrets_file: Path, want: int, seed: int) -> list[dict[str, str]]:
    """ID numbers of listed persons, read back from a list the bulk path built (no file of
    envelopes): the certified versions' signed bodies, decrypted with the dataset's keys."""
    keyring = load_secrets(
        Settings(database=DatabaseSettings(url=url), keys=KeySettings(secrets_file=secrets_file))
    ).keyring
    engine = create_sync_engine(url, writer=False)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(LISTED_PERSONS), {"limit": want}).scalars().all()
    finally:
        engine.dispose()
    found = []
    for cipher in rows:
        debtor = json.loads(keyring.decrypt(bytes(cipher), PURPOSE_SIGNED))["debtor"]
        subject = {k: debtor[k] for k in ("id_type", "id_number", "nationality") if k in debtor}
        found.append(subject | {"name": debtor["name"]})
    random.Random(seed).shuffle(found)  # noqa: S311 - a reproducible sample, not a secret
    return found


LISTED_PERSONS = (
    "SELECT v.signed_cipher FROM listings l JOIN listing_versions v"
    " ON v.listing_id = l.id AND v.version = l.version"
    " WHERE l.status = 'active' AND l.debtor_kind = 'person' ORDER BY l.id LIMIT :limit"
)


def _unlisted(count: int, seed: int) -> list[dict[str, str]]:
    generator = DemoGenerator(seed=seed)
    return [{"id_number": generator.id_number(date(1950, 1, 1), date(2000, 1, 1))} for _ in range(count)]


def _wait(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"bench server at {url} did not start")


def _process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as handle:
        # Fields after the command name, which is in parentheses and may hold spaces.
        fields = handle.read().rpartition(")")[2].split()
    return (float(fields[11]) + float(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(port: int, script: Path, seconds: int, connections: int, server_pid: int) -> dict[str, Any]:
    """One `wrk` run, with the server's CPU per request: on a shared machine the requests
    per second follow the load, the CPU a request costs the server much less."""
    cpu_before = _process_cpu_seconds(server_pid)
    out = subprocess.run(  # noqa: S603 - wrk from the OS, arguments are ours
        [
            shutil.which("wrk") or "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/v1/checks",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = _process_cpu_seconds(server_pid) - cpu_before
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    return {
        "requests_per_s": round(rate),
        "server_cpu_us_per_request": round(cpu / max(requests, 1) * 1e6),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "latency_p99": p99.group(1) if p99 else None,
    }


def _batches(
    base: str, api_key: str, listed: list[dict[str, str]], unlisted: list[dict[str, str]], count: int
) -> tuple[list[float], list[float], int]:
    """Batches of 1,000 (half listed, half not), one at a time after five warm-ups; the
    warm-ups' latencies (reported apart), the sorted latencies and how many subjects of the
    last batch were listed."""
    latencies: list[float] = []
    warm_up: list[float] = []
    hits = 0
    rng = random.Random(5)  # noqa: S311 - a reproducible sample, not a secret
    with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {api_key}"}) as http:
        for number in range(count + 5):
            subjects = rng.sample(listed, BATCH // 2) + rng.sample(unlisted, BATCH // 2)
            rng.shuffle(subjects)
            body = {"subjects": subjects, "purpose": "credit_review", "reference": f"batch-{number}"}
            started = time.perf_counter()
            response = http.post("/v1/checks", json=body)
            elapsed = time.perf_counter() - started
            response.raise_for_status()
            (latencies if number >= 5 else warm_up).append(elapsed)
            hits = sum(1 for r in response.json()["results"] if r.get("listed"))
    return warm_up, sorted(latencies), hits


def _serve(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own modules
        [sys.executable, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def run_checks_bench(
    *,
    count: int,
    batches: int = 200,
    seconds: int = 5,
    rounds_count: int = 5,
    connections: int = 64,
    workers: int = 0,
    database_url: str | None = None,
    dataset: Path | None = None,
    bulk_on_top: int | None = None,
) -> dict[str, Any]:
    """`bulk_on_top`: build the list by the bulk path (`bench.bulk`), this many listings
    through `registry import` on top, prepared as the search bench prepares it; with
    `dataset`, the list the search bench keeps there for the same size is reused."""
    if shutil.which("wrk") is None:
        raise RuntimeError("the single-check load needs wrk (Debian: apt-get install wrk)")
    workers = worker_count(workers)
    scratch_databases: list[str] = []
    with tempfile.TemporaryDirectory(prefix="registry-bench-checks-") as scratch:
        root = Path(scratch)
        secrets_file = root / "secrets.json"
        if database_url is None:
            url = f"sqlite:///{root / 'bench.db'}"  # the name build_or_reuse keeps
        else:
            url = fresh_postgres_database(database_url, "checks")
            scratch_databases.append(url.rsplit("/", 1)[1])
        if bulk_on_top is None:
            env = _prepare_database(url, secrets_file, workers)
            envelopes = root / "envelopes.jsonl"
            signers = load_signers(secrets_file.parent / "demo-keys.json")
            write_envelope_file(envelopes, signers, count, seed=7, today=today_in_china(), workers=workers)
            loaded = _bench_import(env, envelopes, count)
            listed = _subjects(envelopes, 5000, seed=3)
            envelopes.unlink()
        else:
            env, loaded = build_or_reuse(
                root, url, count, dataset, BULK_DATASET, _bulk_build(bulk_on_top), catch_up
            )
            listed = _listed_in_database(url, secrets_file, 5000, seed=3)
        unlisted = _unlisted(5000, seed=11)
        env.update(
            {
                "REGISTRY_SIGNING_KEY_FILE": str(root / "signing-keys.json"),
                "REGISTRY_CHECK_RATE_PER_SECOND": "1000000000",
                "REGISTRY_CHECK_DAILY_QUOTA": str(10**15),
            }
        )
        api_key = (
            _registry("client", "create", "bench", "--role", "bank", env=env).stdout.strip().splitlines()[-1]
        )

        singles = root / "singles.jsonl"
        with singles.open("w") as handle:
            for index, subject in enumerate(listed[:2000] + unlisted[:2000]):
                body = {"subjects": [subject], "purpose": "loan_application", "reference": f"bench-{index}"}
                handle.write(json.dumps(body, ensure_ascii=False) + "\n")
        script = root / "check.lua"
        script.write_text(WRK_SCRIPT % {"bodies": singles, "key": api_key})

        port, bare_port = _free_port(), _free_port()
        servers = serve_as_deployed(port, env)
        server = servers[0]
        bare = _serve(["-m", "bench.checks", str(bare_port)], env)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait(base + "/healthz")
            _wait(f"http://127.0.0.1:{bare_port}/v1/checks")
            batch_load = load_average()
            warm_up, latencies, hits = _batches(base, api_key, listed, unlisted, batches)
            batch_figure = timed_figure(
                latency_summary(latencies)
                | {
                    "listed_per_batch": hits,
                    "warm_up_ms": [round(value * 1000, 1) for value in warm_up],
                },
                batch_load,
            )
            # Warm-up of the single-check path (connections, caches), timed apart; the bare
            # route's too, or its first round measures its own warm-up.
            warm_started = time.perf_counter()
            _wrk(port, script, 1, connections, server.pid)
            single_warm_up_s = round(time.perf_counter() - warm_started, 2)
            warm_started = time.perf_counter()
            _wrk(bare_port, script, 1, connections, bare.pid)
            bare_warm_up_s = round(time.perf_counter() - warm_started, 2)
            # Alternate the two servers round by round: the machine's load drifts, and
            # each ratio then compares runs seconds apart.
            rounds = []
            for _ in range(rounds_count):
                round_load = load_average()
                ceiling = _wrk(bare_port, script, seconds, connections, bare.pid)
                checks = _wrk(port, script, seconds, connections, server.pid)
                rounds.append(timed_figure({"bare": ceiling, "checks": checks}, round_load))
            # The batches again once the server's readers have caught up with the import:
            # the first ones ran while they worked through it (tens of milliseconds of the
            # write lock a step, which the checks' log waits for).
            engine = create_sync_engine(url, writer=False)
            try:
                caught_up_s = wait_for_readers(engine, settle_s=0)
            finally:
                engine.dispose()
            steady_load = load_average()
            _, steady, _ = _batches(base, api_key, listed, unlisted, batches)
            steady_figure = timed_figure(
                latency_summary(steady) | {"readers_caught_up_after_s": caught_up_s}, steady_load
            )
        finally:
            stop([*servers, bare])

    if scratch_databases and database_url is not None:
        drop_postgres_databases(database_url, scratch_databases)
    ratios = sorted(r["checks"]["requests_per_s"] / r["bare"]["requests_per_s"] for r in rounds)
    cpu_ratios = [
        r["bare"]["server_cpu_us_per_request"] / max(r["checks"]["server_cpu_us_per_request"], 1)
        for r in rounds
    ]
    loaded.pop("prepared", None)
    return {
        "benchmark": "checks",
        "database": "sqlite (embedded default)" if database_url is None else "postgresql",
        "listings": count,
        "import": loaded,
        "server": server_description(env),
        # Right after start, while the server's readers work through the import.
        "batch_1000": batch_figure,
        # Once they have caught up (the steady state).
        "batch_1000_readers_caught_up": steady_figure,
        "single_check_load": f"wrk -t1 -c{connections} -d{seconds}s, bare then checks, {rounds_count} rounds",
        "single_check_warm_up_s": single_warm_up_s,
        "bare_warm_up_s": bare_warm_up_s,
        "single_check_non_2xx": sum(r["checks"]["non_2xx"] for r in rounds),
        "single_check_requests_per_s": statistics.median(r["checks"]["requests_per_s"] for r in rounds),
        "bare_litestar_json_requests_per_s": statistics.median(r["bare"]["requests_per_s"] for r in rounds),
        "single_vs_bare_ratio_median": round(statistics.median(ratios), 3),
        "single_vs_bare_ratio_best": round(ratios[-1], 3),
        # The same comparison by the server's CPU per request (bare's over the check's).
        "server_cpu_us_per_request_checks": statistics.median(
            r["checks"]["server_cpu_us_per_request"] for r in rounds
        ),
        "server_cpu_us_per_request_bare": statistics.median(
            r["bare"]["server_cpu_us_per_request"] for r in rounds
        ),
        "single_vs_bare_cpu_ratio_median": round(statistics.median(cpu_ratios), 3),
        "rounds": rounds,
    }


def _serve_bare(port: int) -> None:
    # The same server and options `registry serve` uses.
    uvicorn.run(bare_app(), host="127.0.0.1", port=port, access_log=False, log_level="warning")


if __name__ == "__main__":
    _serve_bare(int(sys.argv[1]))

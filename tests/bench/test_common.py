"""What every bench reports: p99 only over enough samples, and the machine it ran on; its
servers run as deployed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.common import MachineRun, latency_summary, server_description, worker_commands

ROOT = Path(__file__).resolve().parents[2]


def test_p99_only_over_two_hundred_samples_otherwise_the_max_labelled_max() -> None:
    few = latency_summary([0.001 * n for n in range(1, 21)])
    assert "p99_ms" not in few
    assert few["max_ms"] == 20.0 and few["samples"] == 20 and few["p50_ms"] == 10.5
    # At 100 samples a p99 is the second-highest, one slow removal of a hundred: not reported.
    hundred = latency_summary([0.001 * n for n in range(1, 101)])
    assert "p99_ms" not in hundred and hundred["max_ms"] == 100.0
    # Nearest rank: 198 of 200 values are at or below it (it was the 199th).
    many = latency_summary([0.001 * n for n in range(1, 201)])
    assert many["p99_ms"] == 198.0 and many["max_ms"] == 200.0
    assert latency_summary([0.001 * n for n in range(1, 1001)])["p99_ms"] == 990.0
    assert latency_summary([1.5] * 200, unit="s")["p99_s"] == 1.5


def test_machine_run_reports_load_and_cpu_time_of_waited_children() -> None:
    run = MachineRun()
    subprocess.run([sys.executable, "-c", "sum(range(3_000_000))"], check=True)
    report = run.finish()
    assert report["cpus"] and len(report["load_average_before"]) == 3
    assert len(report["load_average_after"]) == 3
    assert report["cpu_seconds"]["child_processes"] > 0
    assert report["wall_seconds"] > 0 and report["cpu_seconds_per_wall_second"] is not None


def test_the_benches_start_on_postgresql_the_workers_deploy_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bench's server on PostgreSQL is the production shape: the deliveries in a worker
    of their own, as `deploy/` runs them (in one worker, the readers' Python held the
    pushes' event loop and the agency push doubled its removal latency)."""
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())["services"]
    deployed = sorted(compose[name]["command"][1:] for name in ("worker", "deliveries"))
    monkeypatch.delenv("REGISTRY_BENCH_SKIP_JOBS", raising=False)
    assert sorted(line[4:] for line in worker_commands()) == deployed
    description = server_description({"REGISTRY_DATABASE_URL": "postgresql://postgres@127.0.0.1/x"})
    assert "--jobs deliveries" in description and "--skip-jobs deliveries" in description

    monkeypatch.setenv("REGISTRY_BENCH_SKIP_JOBS", "statistics")
    assert sorted(line[4:] for line in worker_commands()) == [
        ["--jobs", "deliveries"],
        ["--skip-jobs", "deliveries,statistics"],
    ]
    monkeypatch.setenv("REGISTRY_BENCH_SKIP_JOBS", "watchlist_push")
    assert ["--jobs", "sync_push_delivery"] in [line[4:] for line in worker_commands()]
    monkeypatch.setenv("REGISTRY_BENCH_SKIP_JOBS", "deliveries")
    assert [line[4:] for line in worker_commands()] == [["--skip-jobs", "deliveries"]]
    # SQLite's advice is one worker (its one write lock): jobs left out, the rest in one.
    monkeypatch.setenv("REGISTRY_BENCH_SKIP_JOBS", "statistics")
    assert [line[4:] for line in worker_commands(split=False)] == [["--skip-jobs", "statistics"]]

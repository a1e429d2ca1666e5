"""What every bench reports: p99 only over enough samples, and the machine it ran on."""

from __future__ import annotations

import subprocess
import sys

from bench.common import MachineRun, latency_summary


def test_p99_only_over_a_hundred_samples_otherwise_the_max_labelled_max() -> None:
    few = latency_summary([0.001 * n for n in range(1, 21)])
    assert "p99_ms" not in few
    assert few["max_ms"] == 20.0 and few["samples"] == 20 and few["p50_ms"] == 10.5
    many = latency_summary([0.001 * n for n in range(1, 201)])
    assert many["p99_ms"] == 199.0 and many["max_ms"] == 200.0
    assert latency_summary([1.5] * 100, unit="s")["p99_s"] == 1.5


def test_machine_run_reports_load_and_cpu_time_of_waited_children() -> None:
    run = MachineRun()
    subprocess.run([sys.executable, "-c", "sum(range(3_000_000))"], check=True)
    report = run.finish()
    assert report["cpus"] and len(report["load_average_before"]) == 3
    assert len(report["load_average_after"]) == 3
    assert report["cpu_seconds"]["child_processes"] > 0
    assert report["wall_seconds"] > 0 and report["cpu_seconds_per_wall_second"] is not None

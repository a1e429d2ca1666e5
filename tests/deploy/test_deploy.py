"""deploy/: every process an operator starts has a definition and a health check, and the
systemd units are valid as systemd reads them (`systemd-analyze verify`, where it exists)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_the_compose_file_runs_every_process_with_a_health_check() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = {
        name: spec for name, spec in compose["services"].items() if "setup" not in spec.get("profiles", [])
    }
    assert set(services) == {"web-1", "web-2", "worker", "deliveries", "postgres", "meilisearch", "redis"}
    for name, spec in services.items():
        assert spec.get("healthcheck", {}).get("test"), f"{name} has no health check"
    assert "/readyz" in " ".join(services["web-1"]["healthcheck"]["test"])
    for worker in ("worker", "deliveries"):
        assert services[worker]["healthcheck"]["test"][1:4] == ["registry", "worker", "--check"]
    # Every job runs in one of the two workers: the deliveries in one, the others in the other.
    assert services["deliveries"]["command"] == ["worker", "--jobs", "deliveries"]
    assert services["worker"]["command"] == ["worker", "--skip-jobs", "deliveries"]
    assert "--no-scheduler" in services["web-2"]["command"]


def test_the_systemd_units_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here")
    units = []
    for unit in (DEPLOY / "systemd").iterdir():
        # Templates are verified as an instance, as systemd would start them.
        target = tmp_path / unit.name.replace("@.", "@8001.")
        target.write_text(unit.read_text())
        units.append(str(target))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units], capture_output=True, text=True, check=False
    )
    # The programs themselves are not installed on a build machine; anything else is a fault.
    faults = [line for line in result.stderr.splitlines() if line and "is not executable" not in line]
    assert faults == [], result.stderr
    for name, jobs in (
        ("registry-worker", "--skip-jobs deliveries"),
        ("registry-deliveries", "--jobs deliveries"),
    ):
        worker = (DEPLOY / "systemd" / f"{name}.service").read_text()
        assert "Type=notify" in worker and "WatchdogSec=" in worker
        assert f"registry worker {jobs}\n" in worker


def test_each_worker_unit_has_its_runtime_directory_and_heartbeat() -> None:
    """systemd removes a unit's runtime directory when that unit stops: shared, stopping one
    worker took the other's heartbeat directory away; one file could not tell them apart."""
    seen: dict[str, tuple[str, str]] = {}
    for name in ("registry-worker", "registry-deliveries"):
        unit = (DEPLOY / "systemd" / f"{name}.service").read_text().splitlines()
        [runtime] = [line.split("=", 1)[1] for line in unit if line.startswith("RuntimeDirectory=")]
        [beat] = [line for line in unit if line.startswith("Environment=REGISTRY_WORKER_HEARTBEAT_FILE=")]
        assert runtime == name and f"%t/{name}/" in beat
        seen[name] = (runtime, beat)
    assert len({value for pair in seen.values() for value in pair}) == 4
    # The shared environment file must not set it: EnvironmentFile= wins over Environment=.
    example = (DEPLOY / "registry.env.example").read_text().splitlines()
    assert not [line for line in example if line.startswith("REGISTRY_WORKER_HEARTBEAT_FILE=")]


def test_every_volume_the_image_is_given_is_the_registry_users() -> None:
    """A named volume takes the owner of the image's directory it is mounted on; a directory
    the image lacks is made root's, and the registry (not root) could not write its exports."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    image = (DEPLOY / "Containerfile").read_text()
    made = {
        target
        for line in image.splitlines()
        if line.startswith("RUN install -d -o registry -g registry ")
        for target in line.split()[6:]
    }
    mounts = {
        volume.split(":")[1]
        for spec in compose["services"].values()
        if spec.get("build") or "registry" in str(spec.get("image", ""))
        for volume in spec.get("volumes", [])
    }
    assert mounts and mounts <= made

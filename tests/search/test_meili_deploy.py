"""deploy/: a web process gets the Meilisearch search key only, never the key with index rights
(docs/search.md: "Web processes need only the search key"); the worker gets that key. One
environment file for every process gave the web processes the admin key."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ADMIN_KEY = "REGISTRY_MEILISEARCH_API_KEY"
SEARCH_KEY = "REGISTRY_MEILISEARCH_SEARCH_KEY"
# Where each environment file an operator writes comes from.
EXAMPLES = {
    "registry.env": "registry.env.example",
    "web.env": "web.env.example",
    "worker.env": "worker.env.example",
}


def _settings(files: list[str]) -> set[str]:
    names: set[str] = set()
    for name in files:
        for line in (DEPLOY / EXAMPLES[Path(name).name]).read_text().splitlines():
            if line and not line.startswith("#"):
                names.add(line.split("=", 1)[0])
    return names


def test_compose_gives_web_processes_the_search_key_only() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name, spec in compose["services"].items():
        if "build" not in spec:
            continue
        env_files = spec.get("env_file", [])
        env_files = [env_files] if isinstance(env_files, str) else env_files
        given = _settings(env_files) | set(spec.get("environment", {}))
        if spec["command"][0] == "serve" or spec["command"] == ["worker", "--jobs", "deliveries"]:
            assert ADMIN_KEY not in given and SEARCH_KEY in given, name
        elif spec["command"][0] == "worker":
            assert {ADMIN_KEY, SEARCH_KEY} <= given, name


def test_systemd_gives_web_processes_the_search_key_only() -> None:
    for unit, admin in (
        ("registry-web@.service", False),
        ("registry-deliveries.service", False),
        ("registry-worker.service", True),
    ):
        lines = (DEPLOY / "systemd" / unit).read_text().splitlines()
        files = [line.split("=", 1)[1] for line in lines if line.startswith("EnvironmentFile=")]
        given = _settings(files)
        assert SEARCH_KEY in given and (ADMIN_KEY in given) == admin, unit


def test_compose_keeps_its_own_secrets_out_of_the_registry_processes() -> None:
    """compose's .env fills the database URL and the PostgreSQL and Meilisearch containers;
    read as a registry process's env_file, it gave the web processes the master key, and its
    example named neither variable (PostgreSQL started without a password)."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name, spec in compose["services"].items():
        files = spec.get("env_file", [])
        assert ".env" not in ([files] if isinstance(files, str) else files), name
    own = (DEPLOY / "compose.env.example").read_text()
    text = (DEPLOY / "compose.yaml").read_text()
    for variable in sorted(set(re.findall(r"\$\{([A-Z_]+)\}", text))):
        assert f"\n{variable}=" in f"\n{own}", variable

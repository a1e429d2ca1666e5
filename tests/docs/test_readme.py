"""The README's example commands (and docs/search.md's), run as written against the test
server loaded with the demo data (`registry demo`, as scripts/demo.sh loads it), so that the
documents cannot drift from the service: every command must succeed, every HTTP answer must
be a 2xx, and every public search must find someone."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from registry.settings import Settings
from tests.support.docs import document, labelled_examples, shell_commands
from tests.support.harness import Registry, cli_env, registry_bin, run_search_indexer
from tests.support.publishing import checkpoint, sync_feeds

README = document("README.md")
DEMO_URL = "http://127.0.0.1:8000"
EXAMPLES = shell_commands("```sh\n" + labelled_examples(README)["demo-examples"] + "```\n")
SEARCH_EXAMPLES = shell_commands(document("docs/search.md"))
# The demo's first listings: the same seed as scripts/demo.sh, fewer of them.
DEMO_LISTINGS = 500


def test_every_curl_of_the_readme_is_among_the_tested_examples() -> None:
    curls = [command for command in shell_commands(README) if command.startswith("curl ")]
    assert len(curls) >= 5
    assert set(curls) <= set(EXAMPLES)
    assert SEARCH_EXAMPLES and all(command.startswith("curl ") for command in SEARCH_EXAMPLES)


def _browser_urls() -> list[str]:
    """The demo URLs the README sends a reader to in a browser (outside the commands)."""
    text = re.sub(r"```.*?```", "", README, flags=re.S)
    return sorted({url.rstrip(".,)") for url in re.findall(rf"{re.escape(DEMO_URL)}/\S*", text)})


@pytest.mark.slow
def test_the_readme_examples_work_against_the_demo_data(
    registry: Registry, settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    env = cli_env(settings)
    demo = subprocess.run(
        [registry_bin(), "demo", "--listings", str(DEMO_LISTINGS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr
    # What the demo's scheduler would have done by the time a reader tries the examples.
    run_search_indexer(engine)
    sync_feeds(engine)
    checkpoint(engine, settings)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "demo-admin.key").write_text(registry.client("admin") + "\n")

    failures = []
    for example in EXAMPLES + SEARCH_EXAMPLES:
        command = example.replace(DEMO_URL, registry.url).replace(".venv/bin/registry", registry_bin())
        body = tmp_path / "body"
        if command.startswith("curl "):
            command = f"curl -sS -o {body} -w '%{{http_code}}' " + command.removeprefix("curl ")
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            failures.append(f"{example}\n  exit {done.returncode}: {done.stderr.strip()}")
            continue
        if example.startswith("curl "):
            status = int(done.stdout)
            answer = body.read_text(encoding="utf-8")
            if not 200 <= status < 300:
                failures.append(f"{example}\n  HTTP {status}: {answer[:300]}")
            elif "/v1/public/defaulters" in example and json.loads(answer)["total"] == 0:
                failures.append(f"{example}\n  finds nothing in the demo data")
    for url in _browser_urls():
        response = httpx.get(url.replace(DEMO_URL, registry.url), timeout=30)
        if not response.is_success:
            failures.append(f"{url}\n  HTTP {response.status_code}")
    assert not failures, "README examples that do not work:\n" + "\n".join(failures)

"""`registry log verify --url U --known FILE` with a FILE that is not a remembered checkpoint
(an operator's acceptance audit): one `Error:` line naming the file and what is wrong, a
non-zero exit status, and the file left as it was. Before, JSON that did not parse was a
traceback; JSON of another shape was a traceback, or a misleading `could not read the log`,
or passed unchecked."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from registry.settings import Settings
from tests.support.harness import CourtHandle, Registry, cli_env, registry_bin
from tests.support.publishing import checkpoint, publish

pytestmark = pytest.mark.slow

ROOT = base64.b64encode(os.urandom(32)).decode()

CORRUPT = [
    pytest.param(b"{not json", "not JSON", id="not-json"),
    pytest.param(b"", "not JSON", id="empty"),
    pytest.param(b"\xff\xfe{}", "not JSON", id="not-utf8"),
    pytest.param(b"[1, 2]", "tree_size", id="a-list"),
    pytest.param(b'"tree_size"', "tree_size", id="a-string"),
    pytest.param(b'{"root_hash": "%s"}' % ROOT.encode(), "tree_size", id="no-size"),
    pytest.param(b'{"tree_size": 1}', "root_hash", id="no-root"),
    pytest.param(b'{"tree_size": "1", "root_hash": "%s"}' % ROOT.encode(), "tree_size", id="size-a-string"),
    pytest.param(b'{"tree_size": true, "root_hash": "%s"}' % ROOT.encode(), "tree_size", id="size-a-bool"),
    pytest.param(b'{"tree_size": -1, "root_hash": "%s"}' % ROOT.encode(), "tree_size", id="size-negative"),
    pytest.param(b'{"tree_size": 1, "root_hash": 7}', "root_hash", id="root-a-number"),
    pytest.param(b'{"tree_size": 1, "root_hash": "not base64!"}', "root_hash", id="root-not-base64"),
    pytest.param(b'{"tree_size": 1, "root_hash": "AAAA"}', "root_hash", id="root-too-short"),
]


@pytest.mark.parametrize(("content", "needle"), CORRUPT)
def test_a_corrupt_known_file_is_one_error_line_naming_it(
    registry: Registry,
    court: CourtHandle,
    engine: sa.Engine,
    settings: Settings,
    tmp_path: Path,
    content: bytes,
    needle: str,
) -> None:
    publish(registry, court, 2)
    checkpoint(engine, settings)
    known = tmp_path / "known-checkpoint.json"
    known.write_bytes(content)
    result = subprocess.run(
        [registry_bin(), "log", "verify", "--url", registry.url, "--known", str(known)],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert str(known) in errors[0] and needle in errors[0], errors[0]
    assert known.read_bytes() == content  # never replaced by what this run saw

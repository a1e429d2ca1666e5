"""`registry corrections list|follow`: the operator's view of the queue."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta

import pytest

from registry.settings import Settings
from tests.support.harness import CourtHandle, Registry, cli_env, registry_bin
from tests.support.listings import amended_body, person_named, publish_one

pytestmark = pytest.mark.slow


def _cli(settings: Settings, *args: str) -> str:
    done = subprocess.run(
        [registry_bin(), "corrections", *args], env=cli_env(settings), capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_overdue_corrections_are_listed_and_followed(
    registry: Registry, court: CourtHandle, settings: Settings
) -> None:
    listed_on = registry.today - timedelta(days=30)
    body = person_named(registry, court, "宋佳", listed_on=listed_on.isoformat(),
                        filed_on=listed_on.isoformat(),
                        case_number=registry.generator.case_number(court.code, listed_on.year))  # fmt: skip
    listing_id = publish_one(registry, court, body)
    found_on = registry.today - timedelta(days=14)
    finding = {
        "listing_id": listing_id, "ground": "inaccurate_information", "found_on": found_on.isoformat(),
        "action": "to_follow", "document_number": "（2026）京0105执1号之二",
        "decided_on": found_on.isoformat(), "reasons": "信息有误。",
    }  # fmt: skip
    with registry.http(court.api_key) as http:
        answer = http.post("/v1/corrections/findings", json=registry.envelope(court, finding, "finding"))
        assert answer.status_code == 201, answer.text
        assert (
            http.post(
                f"/v1/listings/{listing_id}/amendments", json=registry.envelope(court, amended_body(body))
            ).status_code
            == 200
        )
    [late] = json.loads(_cli(settings, "list", "--state", "overdue"))["corrections"]
    assert (late["id"], late["awaiting"]) == (answer.json()["id"], "correction")
    assert "read" in _cli(settings, "follow")
    assert json.loads(_cli(settings, "list", "--state", "overdue"))["total"] == 0


def test_a_court_the_registry_does_not_know_is_refused_not_listed_empty(
    registry: Registry, court: CourtHandle, settings: Settings
) -> None:
    assert json.loads(_cli(settings, "list", "--court", "京０１０５"))["total"] == 0
    done = subprocess.run(
        [registry_bin(), "corrections", "list", "--court", "京9999"], env=cli_env(settings),
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode != 0 and "unknown_court" in done.stderr, done.stderr

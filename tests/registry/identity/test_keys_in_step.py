"""A running process whose keys a rotation left behind refuses what needs them (docs/
operations.md, Keys: fail closed throughout). The start-up check alone failed open: a web
process still on the old blind-index key after `registry keys rotate --blind-index` answered
a listed person's bank check `listed: false`, signed; one still on a data key that a rotation
replaced went on encrypting new listings under it, past `registry keys retire`."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from registry.identity.keystore import ensure_keys
from registry.listings.models import Listing
from registry.settings import Settings
from tests.support.checks import bank, publish_person
from tests.support.harness import CourtHandle, Registry, run_registry
from tests.support.processes import web_process

pytestmark = pytest.mark.slow


def _env_keys(stored: dict[str, Any]) -> dict[str, str]:
    """The keys of the secrets file as of now, given as a production process gets them (it
    does not follow a file: only a restart gives it new keys)."""
    return {
        "REGISTRY_DATA_KEYS": ",".join(f"{kid}:{value}" for kid, value in stored["data_keys"].items()),
        "REGISTRY_DATA_KEY_ID": stored["active_data_key_id"],
        "REGISTRY_BLIND_INDEX_KEY": stored["blind_index_key"],
    }


def _eventually(answer: Callable[[], httpx.Response], status: int) -> httpx.Response:
    """The process asks the database every two seconds: its answer within ten."""
    deadline = time.monotonic() + 10
    while True:
        response = answer()
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def _check(http: httpx.Client, number: str) -> httpx.Response:
    body = {"subjects": [{"id_number": number}], "purpose": "loan_application", "reference": "LA-1"}
    return http.post("/v1/checks", json=body)


def test_a_process_left_on_the_old_blind_index_key_refuses_bank_checks(
    registry: Registry,
    court: CourtHandle,
    settings: Settings,
    engine: sa.Engine,
    secrets_file: Path,
    tmp_path: Path,
) -> None:
    listing_id, body = publish_person(registry, court)
    number = body["debtor"]["id_number"]
    ensure_keys(settings, engine)  # the ids of the keys the data is under, as a start records them
    old_keys = json.loads(secrets_file.read_text())
    _, as_bank = bank(registry)
    api_key = as_bank.headers["authorization"].removeprefix("Bearer ")
    with (
        web_process(settings, _env_keys(old_keys), tmp_path / "web.log") as url,
        httpx.Client(base_url=url, headers={"authorization": f"Bearer {api_key}"}) as stale,
    ):
        listed = _check(stale, number)
        assert listed.status_code == 200 and listed.json()["results"][0]["listed"] is True
        assert httpx.get(f"{url}/readyz").json()["checks"]["keys"] == "ok"

        # The operator rotates, forgetting this process: a new key first, the old behind.
        rotated_keys = dict(old_keys, previous_blind_index_key=old_keys["blind_index_key"])
        rotated_keys["blind_index_key"] = base64.b64encode(os.urandom(32)).decode()
        secrets_file.write_text(json.dumps(rotated_keys))
        rotated = run_registry(settings, "keys", "rotate", "--blind-index", timeout=300)
        assert rotated.returncode == 0, rotated.stderr

        # Every index is under the new key now: the process cannot find anyone, so it
        # must not answer (it said `listed: false`, signed).
        refused = _eventually(lambda: _check(stale, number), 503)
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "keys_out_of_step"
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert int(refused.headers["retry-after"]) > 0
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["keys"] != "ok"
        # A search by number would say "not listed" likewise.
        by_number = httpx.get(f"{url}/v1/public/defaulters", params={"id_number": number})
        assert by_number.status_code == 503 and by_number.json()["code"] == "keys_out_of_step"
    # A process with the new keys (the in-process server follows the file) finds the debtor.
    with as_bank:
        found = _check(as_bank, number)
    assert found.status_code == 200 and found.json()["results"][0]["listed"] is True
    assert [hit["listing_id"] for hit in found.json()["results"][0]["listings"]] == [listing_id]
    log = (tmp_path / "web.log").read_text()
    assert log.count("refusing what needs keys") == 1, log  # said once, not every request
    assert number not in log


def test_a_process_left_on_a_replaced_data_key_writes_nothing(
    registry: Registry,
    court: CourtHandle,
    settings: Settings,
    engine: sa.Engine,
    secrets_file: Path,
    tmp_path: Path,
) -> None:
    publish_person(registry, court)
    ensure_keys(settings, engine)
    old_keys = json.loads(secrets_file.read_text())
    with (
        web_process(settings, _env_keys(old_keys), tmp_path / "web.log") as url,
        httpx.Client(base_url=url, headers={"authorization": f"Bearer {court.api_key}"}) as stale,
    ):
        before = stale.post("/v1/listings", json=registry.envelope(court, registry.person_listing(court)))
        assert before.status_code == 201, before.text

        # A new data key, every ciphertext re-encrypted under it; this process not restarted.
        rotated = run_registry(settings, "keys", "rotate", timeout=300)
        assert rotated.returncode == 0, rotated.stderr

        def publish() -> httpx.Response:
            return stale.post("/v1/listings", json=registry.envelope(court, registry.person_listing(court)))

        # It went on encrypting under the replaced key (201), which `keys retire` then let go.
        refused = _eventually(publish, 503)
        assert refused.status_code == 503 and refused.json()["code"] == "keys_out_of_step", refused.text
        with engine.connect() as conn:
            stored = conn.execute(sa.select(sa.func.count()).select_from(Listing)).scalar_one()
        assert publish().status_code == 503
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(Listing)).scalar_one() == stored
        assert httpx.get(f"{url}/readyz").status_code == 503

"""Rotating the blind-index key (issue 15 #15): with a new key in front of the old one, bank
checks, searches by number, watchlists and the duplicate rule keep matching; `registry keys
rotate --blind-index` recomputes every stored index (reporting what it cannot), and
`registry keys retire` drops the old key only once nothing depends on it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from registry.checks.watchlist import reader_for
from registry.eventlog import readers
from registry.identity.crypto import DataKeyring
from registry.identity.keystore import blind_index_key_id, ensure_keys
from registry.identity.types import index_input
from registry.listings.prepare import PURPOSE_DEBTOR_ID
from registry.runtime import Services
from registry.settings import Settings
from registry.timeutil import utcnow
from tests.support.checks import bank, publish_person, unlisted_id
from tests.support.harness import CourtHandle, Registry, run_registry, run_search_indexer
from tests.support.listings import new_submission, post_removal, publish_one, removal_body


def _registry(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # A rotation recomputes every index: longer than a plain command.
    return run_registry(settings, *args, timeout=300, **env)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _write_keys(path: Path, blind: bytes, previous: bytes | None) -> None:
    stored = json.loads(path.read_text())
    stored["blind_index_key"] = base64.b64encode(blind).decode()
    stored.pop("previous_blind_index_key", None)
    if previous is not None:
        stored["previous_blind_index_key"] = base64.b64encode(previous).decode()
    path.write_text(json.dumps(stored))


def _check(http: httpx.Client, number: str) -> list[str]:
    body = {"subjects": [{"id_number": number}], "purpose": "loan_application", "reference": "LA-1"}
    response = http.post("/v1/checks", json=body)
    assert response.status_code == 200, response.text
    return sorted(listing["listing_id"] for listing in response.json()["results"][0].get("listings", []))


def _search(registry: Registry, number: str) -> list[str]:
    with registry.http() as http:
        response = http.get("/v1/public/defaulters", params={"id_number": number})
    assert response.status_code == 200, response.text
    return sorted(hit["id"] for hit in response.json()["hits"])


def _follow(settings: Settings) -> None:
    """The watchlist reader as the worker runs it, with the keys of the moment."""
    services = Services.create(settings)
    try:
        asyncio.run(readers.follow(services.db, reader_for(services.secrets)))
    finally:
        asyncio.run(services.close())


def _changed(http: httpx.Client) -> list[str]:
    response = http.get("/v1/watchlist/changes", params={"after": 0})
    assert response.status_code == 200, response.text
    return [change["listing_id"] for change in response.json()["changes"]]


def _relist(registry: Registry, court: CourtHandle, body: dict[str, Any]) -> str:
    """The same debtor in a new case."""
    again = registry.person_listing(court)
    again["debtor"] = body["debtor"]
    return publish_person(registry, court, **again)[0]


def test_blind_index_key_rotation_keeps_every_lookup_matching(
    registry: Registry, court: CourtHandle, settings: Settings, engine: sa.Engine, secrets_file: Path
) -> None:
    old = base64.b64decode(json.loads(secrets_file.read_text())["blind_index_key"])
    new = os.urandom(32)
    old_id, new_id = blind_index_key_id(old), blind_index_key_id(new)

    # Under the old key: a listing, a bank watching its debtor, and a watched subject from
    # before the identifier was kept (as revision 0017 found it: the index only).
    creditor = {"name": "北京恒信达科技有限公司", "credit_code": "91110000600037341L"}
    first, body = publish_person(registry, court, creditor=creditor)
    number = body["debtor"]["id_number"]
    legacy = unlisted_id(registry)
    bank_id, http = bank(registry)
    ensure_keys(settings, engine)  # records the ids of the keys the data is under
    _follow(settings)  # the listing predates the watch: no change for the bank
    with http:
        added = http.post("/v1/watchlist/subjects", json={"subjects": [{"id_number": number}]})
        assert added.json()["results"][0]["status"] == "added"
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO watch_subjects (client_id, subject_blind, reference, created_at)"
                    " VALUES (:c, :b, NULL, :t)"
                ),
                {"c": bank_id, "b": _hmac(old, index_input("resident_id", legacy)), "t": utcnow()},
            )

        # A new key in front, the old one behind: the server follows the secrets file.
        _write_keys(secrets_file, new, old)
        env_new_only = {
            "REGISTRY_DATA_KEYS": ",".join(
                f"{kid}:{value}" for kid, value in json.loads(secrets_file.read_text())["data_keys"].items()
            ),
            "REGISTRY_DATA_KEY_ID": json.loads(secrets_file.read_text())["active_data_key_id"],
            "REGISTRY_BLIND_INDEX_KEY": base64.b64encode(new).decode(),
        }
        # Fail closed: a process holding only the new key refuses while data needs the old.
        refused = _registry(settings, "keys", "check", **env_new_only)
        assert refused.returncode != 0 and old_id in refused.stderr
        checked = _registry(settings, "keys", "check")
        assert checked.returncode == 0, checked.stderr
        assert f"{new_id}  held (active)" in checked.stdout and f"{old_id}  held (retiring" in checked.stdout
        assert "1 watched subjects were added before their identifier was kept" in checked.stdout

        assert _check(http, number) == [first]
        run_search_indexer(engine)
        assert _search(registry, number) == [first]
        # The duplicate rule finds the old-key listing: same case again is refused.
        with registry.http(court.api_key) as as_court:
            duplicate = dict(body, submission_id=registry.person_listing(court)["submission_id"])
            answer = as_court.post("/v1/listings", json=registry.envelope(court, duplicate))
        assert answer.status_code == 409 and answer.json()["code"] == "already_listed"
        # A new listing (new key) of the watched debtor (watched under the old key) is delivered.
        second = _relist(registry, court, body)
        _follow(settings)
        assert _changed(http) == [second]
        assert _check(http, number) == sorted([first, second])

        # Retiring the old key is refused while anything is still indexed under it.
        early = _registry(settings, "keys", "retire", old_id)
        assert early.returncode != 0 and "not under the active key" in early.stderr
        assert "previous_blind_index_key" in json.loads(secrets_file.read_text())

        rotated = _registry(settings, "keys", "rotate", "--blind-index")
        assert rotated.returncode == 0, rotated.stderr
        assert "recomputed 1 listings and 1 watched subjects" in rotated.stdout
        assert f"{bank_id}: 1" in rotated.stderr  # reported, not dropped
        again = _registry(settings, "keys", "rotate", "--blind-index")  # resumable: nothing left
        assert "recomputed 0 listings and 0 watched subjects" in again.stdout

        # The legacy subject still blocks retirement, until the bank adds it again.
        blocked = _registry(settings, "keys", "retire", old_id)
        assert blocked.returncode != 0 and "cannot be recomputed: 1" in blocked.stderr
        readded = http.post("/v1/watchlist/subjects", json={"subjects": [{"id_number": legacy}]})
        assert readded.json()["results"][0]["status"] == "already_watched"
        assert http.get("/v1/watchlist").json()["subjects"] == 2
        assert _registry(settings, "keys", "rotate", "--blind-index").returncode == 0
        retired = _registry(settings, "keys", "retire", old_id)
        assert retired.returncode == 0, retired.stderr
        assert "previous_blind_index_key" not in json.loads(secrets_file.read_text())

        # The new key only: everything still matches, and the old key is no longer needed.
        assert _check(http, number) == sorted([first, second])
        run_search_indexer(engine)
        assert _search(registry, number) == sorted([first, second])
        third = _relist(registry, court, body)
        _follow(settings)
        assert _changed(http) == [second, third]
        ok = _registry(settings, "keys", "check", **env_new_only)
        assert ok.returncode == 0, ok.stderr
        assert old_id not in ok.stdout

    # Every stored index is the new key's.
    keyring = DataKeyring(
        {kid: base64.b64decode(v) for kid, v in json.loads(secrets_file.read_text())["data_keys"].items()},
        json.loads(secrets_file.read_text())["active_data_key_id"],
    )
    with engine.connect() as conn:
        listings = conn.execute(
            sa.text("SELECT debtor_id_type, debtor_id_cipher, debtor_id_blind FROM listings")
        ).all()
        details = conn.execute(
            sa.text("SELECT details FROM listings WHERE id = :id"), {"id": first}
        ).scalar_one()
        watched = {bytes(b) for (b,) in conn.execute(sa.text("SELECT subject_blind FROM watch_subjects"))}
        retired_at = conn.execute(
            sa.text("SELECT retired_at FROM registry_keys WHERE key_id = :k"), {"k": old_id}
        ).scalar_one()
    for id_type, cipher, blind in listings:
        identifier = keyring.decrypt(bytes(cipher), PURPOSE_DEBTOR_ID).decode()
        assert bytes(blind) == _hmac(new, index_input(id_type, identifier))
    assert watched == {_hmac(new, index_input("resident_id", n)) for n in (number, legacy)}
    assert retired_at is not None
    # A watched subject's identifier is data-key ciphertext: a data-key rotation moves it too.
    assert _registry(settings, "keys", "rotate").returncode == 0
    active = json.loads(secrets_file.read_text())["active_data_key_id"]
    with engine.connect() as conn:
        ciphers = [bytes(c) for (c,) in conn.execute(sa.text("SELECT subject_cipher FROM watch_subjects"))]
    assert len(ciphers) == 2 and {DataKeyring.key_id_of(c) for c in ciphers} == {active}
    # The creditor's index too (recomputed from the signed listing): the six-month bar holds.
    creditor_key = (json.loads(details) if isinstance(details, str) else details)["creditor_key"]
    assert creditor_key == _hmac(new, "creditor:91110000600037341L").hex()


def test_the_six_month_bar_holds_through_a_blind_index_key_rotation(
    registry: Registry, court: CourtHandle, settings: Settings, engine: sa.Engine, secrets_file: Path
) -> None:
    """A creditor-requested removal under the old key still bars that creditor's new
    application against the debtor, matched by the creditor's code, with both keys held and
    after the rotation with the new key alone."""
    old = base64.b64decode(json.loads(secrets_file.read_text())["blind_index_key"])
    new = os.urandom(32)
    creditor = {"name": "北京恒信达科技有限公司", "credit_code": "91110000600037341L"}
    body = registry.person_listing(court, creditor=creditor)
    body["decision"] |= {"initiated_by": "creditor_application"}
    listing_id = publish_one(registry, court, body)
    removal = removal_body(listing_id, registry.today, reason="creditor_request")
    assert post_removal(registry, court, listing_id, removal).status_code == 200
    ensure_keys(settings, engine)

    def apply_again() -> httpx.Response:
        # A new case, the creditor named by its code under another name.
        again = registry.person_listing(court, creditor=creditor | {"name": "恒信达"})
        again["debtor"] = body["debtor"]
        again["decision"] |= {"initiated_by": "creditor_application"}
        with registry.http(court.api_key) as http:
            return http.post("/v1/listings", json=registry.envelope(court, again))

    _write_keys(secrets_file, new, old)
    barred = apply_again()
    assert barred.status_code == 409 and barred.json()["code"] == "relisting_barred", barred.text

    assert _registry(settings, "keys", "rotate", "--blind-index").returncode == 0
    retired = _registry(settings, "keys", "retire", blind_index_key_id(old))
    assert retired.returncode == 0, retired.stderr
    assert "previous_blind_index_key" not in json.loads(secrets_file.read_text())
    still = apply_again()
    assert still.status_code == 409 and still.json()["code"] == "relisting_barred", still.text
    # Not a bar on anyone else: another debtor is listed.
    other = registry.person_listing(court, submission_id=new_submission())
    assert publish_one(registry, court, other)

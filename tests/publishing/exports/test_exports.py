"""Signed bulk exports: written by `registry export run`, served over HTTP, checked with
PyNaCl against the registry's published JWK Set (not with the library that signed them)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from multiprocessing import forkserver
from pathlib import Path
from typing import Any

import httpx
import nacl.exceptions
import nacl.signing
import pytest
import sqlalchemy as sa

from publishing.exports.jobs import daily_export
from publishing.exports.writer import CSV_COLUMNS, _changes_in_other_process, run_export
from registry.calendar import china_midnight, end_of_china_day, today_in_china
from registry.identity.registry_key import load_registry_signer
from registry.runtime import Services
from registry.settings import Settings
from registry.timeutil import utcnow
from tests.support.harness import CourtHandle, Registry, cli_env, registry_bin
from tests.support.listings import (
    amended_body,
    new_submission,
    passport_holder_named,
    post_amendment,
    publish_one,
)
from tests.support.processes import pool_workers
from tests.support.publishing import publish, remove

# Every test runs `registry export run`, a process of its own.
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _empty_export_dir(settings: Settings) -> Iterator[None]:
    yield
    shutil.rmtree(settings.exports.dir, ignore_errors=True)


def _export(settings: Settings, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = subprocess.run(
        [registry_bin(), "export", "run", *args],
        env=cli_env(settings) | (env or {}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "exporting" in result.stderr, "a progress bar on stderr"
    manifest: dict[str, Any] = json.loads(result.stdout)
    return manifest


def _verify_key(http: httpx.Client, kid: str) -> nacl.signing.VerifyKey:
    for key in http.get("/.well-known/jwks.json").json()["keys"]:
        if key["kid"] == kid:
            return nacl.signing.VerifyKey(base64.urlsafe_b64decode(key["x"] + "=" * (-len(key["x"]) % 4)))
    raise AssertionError(f"{kid} not published")


def _download(http: httpx.Client, day: str, name: str) -> bytes:
    response = http.get(f"/v1/exports/{day}/{name}")
    assert response.status_code == 200, response.text
    return response.content


def test_export_round_trips_and_its_signature_verifies_with_pynacl(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings
) -> None:
    ids = publish(registry, court, 6)
    remove(registry, court, ids[0])
    written = _export(settings)
    day = written["date"]

    with registry.http() as http:
        listed = http.get("/v1/exports").json()["exports"]
        assert [e["date"] for e in listed] == [day]
        manifest_bytes = _download(http, day, "manifest.json")
        signature = _download(http, day, "manifest.json.sig")
        manifest = json.loads(manifest_bytes)
        # The detached signature covers the context prefix then the exact manifest bytes,
        # under a key in the JWK Set; the manifest names its context.
        signed = manifest["signature_context"].encode() + manifest_bytes
        assert manifest["signature_context"] == "registry-signature:export-manifest:v1\n"
        assert _verify_key(http, manifest["key_id"]).verify(signed, signature) == signed
        # Domain separation: the manifest bytes alone (what a checkpoint or receipt
        # verifier would be handed) do not verify.
        with pytest.raises(nacl.exceptions.BadSignatureError):
            _verify_key(http, manifest["key_id"]).verify(manifest_bytes, signature)
        files = {f["name"]: f for f in manifest["files"]}
        contents = {name: _download(http, day, name) for name in files}
    for name, data in contents.items():
        assert len(data) == files[name]["bytes"]
        assert hashlib.sha256(data).hexdigest() == files[name]["sha256"]

    with engine.connect() as conn:
        head = conn.execute(sa.text("SELECT last_seq FROM log_head")).scalar_one()
    assert manifest["log_position"] == head and manifest["date"] == day

    active = set(ids[1:])
    rows = [json.loads(line) for line in gzip.decompress(contents["listings.jsonl.gz"]).splitlines()]
    assert {row["id"] for row in rows} == active and files["listings.jsonl.gz"]["rows"] == 5 == manifest[
        "listings"
    ]
    assert all(
        "identifier_masked" in row and row["identifier_masked"].endswith("*" * 8)
        for row in rows
        if row["kind"] == "person"
    )
    listing_csv = gzip.decompress(contents["listings.csv.gz"])
    assert listing_csv.startswith(b"\xef\xbb\xbf")  # a spreadsheet reads it as UTF-8
    table = list(csv.reader(io.StringIO(listing_csv.decode("utf-8-sig"))))
    assert tuple(table[0]) == CSV_COLUMNS
    assert {line[0] for line in table[1:]} == active and files["listings.csv.gz"]["rows"] == 5
    by_id = {row["id"]: row for row in rows}
    for line in table[1:]:
        record = dict(zip(CSV_COLUMNS, line, strict=True))
        row = by_id[line[0]]
        assert record["被执行人姓名或名称"] == row["name"] and record["案号"] == row["case_number"]
        # Words, not codes: sex, kind, performance and grounds as the Provisions say them.
        assert record["性别"] == {"M": "男", "F": "女", None: ""}[row["sex"]]
        assert record["被执行人类型"] in {"自然人", "法人或其他组织"}
        assert record["履行情况"] in {"全部未履行", "部分未履行"}
        assert "_" not in record["失信被执行人行为具体情形"]
        amount = row["amount_cents"]
        assert record["执行标的（元）"] == ("" if amount is None else f"{amount // 100}.{amount % 100:02d}")

    changes = [json.loads(line) for line in gzip.decompress(contents["changes.jsonl.gz"]).splitlines()]
    # The removed listing shows only as its removal; the others as their publication.
    assert [(c["event"], (c["entry"] or c["removal"])["id"]) for c in changes] == [
        *(("published", i) for i in ids[1:]),
        ("removed", ids[0]),
    ]
    assert files["changes.jsonl.gz"]["rows"] == 6


def test_export_files_make_caches_revalidate_and_are_tagged_by_their_sha256(
    registry: Registry, court: CourtHandle, settings: Settings
) -> None:
    """Without Cache-Control, a shared cache could serve a file by heuristic freshness for
    hours after the registry withdrew it (410); the ETag was built from the file on disk."""
    publish(registry, court, 2)
    manifest = _export(settings)
    day = manifest["date"]
    with registry.http() as http:
        digests = {f["name"]: f["sha256"] for f in manifest["files"]}
        for name in (*digests, "manifest.json", "manifest.json.sig"):
            path = f"/v1/exports/{day}/{name}"
            first = http.get(path)
            assert first.status_code == 200, first.text
            assert first.headers["cache-control"] == "public, no-cache"
            digest = digests.get(name, hashlib.sha256(first.content).hexdigest())
            assert first.headers["etag"] == f'"{digest}"'
            assert hashlib.sha256(first.content).hexdigest() == digest
            # Revalidation: a 304 while the file is unchanged, the file again otherwise.
            same = http.get(path, headers={"If-None-Match": f'W/"{digest}"'})
            assert same.status_code == 304 and same.content == b""
            assert same.headers["etag"] == first.headers["etag"]
            assert same.headers["cache-control"] == "public, no-cache"
            stale = http.get(path, headers={"If-None-Match": '"' + "0" * 64 + '"'})
            assert stale.status_code == 200 and stale.content == first.content


def test_an_altered_export_fails_verification(
    registry: Registry, court: CourtHandle, settings: Settings
) -> None:
    publish(registry, court, 3)
    day = _export(settings)["date"]
    folder = settings.exports.dir / day
    with registry.http() as http:
        key = _verify_key(http, json.loads((folder / "manifest.json").read_bytes())["key_id"])
        signature = _download(http, day, "manifest.json.sig")
        manifest_bytes = _download(http, day, "manifest.json")
    context = json.loads(manifest_bytes)["signature_context"].encode()
    key.verify(context + manifest_bytes, signature)
    # One row fewer claimed: the signature no longer holds.
    altered = manifest_bytes.replace(b'"listings": 3', b'"listings": 2')
    assert altered != manifest_bytes
    with pytest.raises(nacl.exceptions.BadSignatureError):
        key.verify(context + altered, signature)
    # A data file changed after signing no longer matches the signed hash.
    path = folder / "listings.jsonl.gz"
    rows = gzip.decompress(path.read_bytes()).splitlines()
    path.write_bytes(gzip.compress(b"\n".join(rows[:-1]) + b"\n"))
    with registry.http() as http:
        served = _download(http, day, "listings.jsonl.gz")
    expected = {f["name"]: f["sha256"] for f in json.loads(manifest_bytes)["files"]}
    assert hashlib.sha256(served).hexdigest() != expected["listings.jsonl.gz"]


def test_old_exports_are_pruned_after_the_retention(
    registry: Registry, court: CourtHandle, settings: Settings
) -> None:
    publish(registry, court, 1)
    old_day = registry.today - timedelta(days=settings.exports.retention_days + 5)
    kept_day = registry.today - timedelta(days=settings.exports.retention_days - 1)
    # `export run` refuses a day its own prune would delete: an old export is as one written
    # when that day was recent (a copy of a kept one under its name).
    _export(settings, "--date", kept_day.isoformat())
    exports_dir = Path(settings.exports.dir)
    shutil.copytree(exports_dir / kept_day.isoformat(), exports_dir / old_day.isoformat())
    with registry.http() as http:
        assert http.get(f"/v1/exports/{old_day.isoformat()}/manifest.json").status_code == 200
    # The old export exists until the next run prunes it.
    _export(settings)
    with registry.http() as http:
        days = [e["date"] for e in http.get("/v1/exports").json()["exports"]]
        assert days == [registry.today.isoformat(), kept_day.isoformat()]
        assert http.get(f"/v1/exports/{old_day.isoformat()}/manifest.json").status_code == 404


BAD_REQUESTS = [
    ("/v1/exports/2026-13-01/manifest.json", 400, "invalid_date"),
    ("/v1/exports/yesterday/manifest.json", 400, "invalid_date"),
    # The day of an export that exists, in ISO 8601's other spellings: one spelling only.
    ("/v1/exports/{compact}/manifest.json", 400, "invalid_date"),
    ("/v1/exports/{today}T00:00/manifest.json", 400, "invalid_date"),
    ("/v1/exports/2001-01-01/manifest.json", 404, "export_not_found"),
    ("/v1/exports/{today}/secrets.json", 404, "export_file_not_found"),
    ("/v1/exports/{today}/..%2F..%2Fsecrets.json", 404, "not_found"),  # no such route once decoded
]


def test_bad_export_requests_are_4xx(registry: Registry, court: CourtHandle, settings: Settings) -> None:
    publish(registry, court, 1)
    day = _export(settings)["date"]
    with registry.http() as http:
        for path, status, code in BAD_REQUESTS:
            response = http.get(path.format(today=day, compact=day.replace("-", "")))
            assert response.status_code == status, (path, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["code"] == code, path


def test_a_change_file_written_by_a_second_process_is_the_same_file(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings
) -> None:
    ids = publish(registry, court, 12)
    for listing_id in ids[:2]:
        remove(registry, court, listing_id)
    alone = _export(settings)
    shutil.rmtree(settings.exports.dir)
    split = _export(settings, env={"REGISTRY_EXPORT_PARALLEL_CHANGES": "1"})
    # Same snapshot, same rows, same gzip settings: the same bytes, whichever process wrote them.
    assert split["files"] == alone["files"]
    changes = next(f for f in split["files"] if f["name"] == "changes.jsonl.gz")
    assert changes["rows"] == 12 and split["log_position"] == alone["log_position"]

    # A worker whose snapshot is not the exporter's writes nothing and says so.
    with engine.connect() as conn:
        position = conn.execute(sa.text("SELECT last_seq FROM log_head")).scalar_one()
    folder = settings.exports.dir / "moved"
    folder.mkdir(parents=True)
    day = date.fromisoformat(split["date"])
    assert _changes_in_other_process(settings.database.url, str(folder), day, position - 1, day) is None
    assert not any(folder.iterdir())


def test_a_stuck_change_file_process_does_not_stop_the_export(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings, tmp_path: Path
) -> None:
    """The second process writing the change file stops (SIGSTOP, as a hung one looks):
    once the list is written it has the grace time, then it is killed and the change file
    written in process: the same files as an export in one process."""
    ids = publish(registry, court, 12)
    for listing_id in ids[:2]:
        remove(registry, court, listing_id)
    alone = _export(settings)
    forkserver.ensure_running()  # so that the only new multiprocessing child is the helper
    before = pool_workers()
    stopped: list[int] = []
    done = threading.Event()

    def stop_the_helper() -> None:
        while not done.is_set() and not stopped:
            for pid in pool_workers() - before:
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
            time.sleep(0.002)

    exported: list[dict[str, Any]] = []

    def export() -> None:
        day = date.fromisoformat(alone["date"])
        signer = load_registry_signer(settings)
        exported.append(
            run_export(
                engine,
                signer,
                tmp_path / "exports",
                day,
                utcnow(),
                parallel_changes=1,
                helper_grace_seconds=2,
            )
        )

    watcher = threading.Thread(target=stop_the_helper, daemon=True)
    exporter = threading.Thread(target=export, daemon=True)
    watcher.start()
    exporter.start()
    try:
        exporter.join(60)
        hung = exporter.is_alive()
    finally:
        done.set()
        watcher.join()
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert stopped, "the change file's process was never seen"
    assert not hung, "the export waited for the stopped process"
    [split] = exported
    assert split["files"] == alone["files"]
    assert split["log_position"] == alone["log_position"]


def test_an_export_holding_a_listing_removed_since_is_withdrawn_at_the_next_run(
    registry: Registry, court: CourtHandle, settings: Settings
) -> None:
    ids = publish(registry, court, 3)
    first = _export(settings, "--date", (registry.today - timedelta(days=1)).isoformat())["date"]
    remove(registry, court, ids[0])
    second = _export(settings)["date"]
    with registry.http() as http:
        listed = {e["date"]: e["withdrawn"] for e in http.get("/v1/exports").json()["exports"]}
        assert listed == {first: True, second: False}
        # SPC Art. 10: the removed person is no longer published, in any file of the old export ...
        for name in ("listings.jsonl.gz", "listings.csv.gz", "changes.jsonl.gz"):
            gone = http.get(f"/v1/exports/{first}/{name}")
            assert gone.status_code == 410 and gone.json()["code"] == "export_withdrawn"
        # ... while its signed manifest stays, for audit.
        assert _download(http, first, "manifest.json") and _download(http, first, "manifest.json.sig")
        rows = gzip.decompress(_download(http, second, "listings.jsonl.gz")).splitlines()
    assert {json.loads(row)["id"] for row in rows} == set(ids[1:])


def test_an_export_holding_a_listing_amended_since_is_withdrawn_at_the_next_run(
    registry: Registry, court: CourtHandle, settings: Settings
) -> None:
    body = registry.person_listing(court)
    corrected = publish_one(registry, court, body)
    first = _export(settings, "--date", (registry.today - timedelta(days=2)).isoformat())["date"]
    # Listings published after an export are not in it: their changes leave it served.
    later_body = registry.person_listing(court)
    later = publish_one(registry, court, later_body)
    assert post_amendment(registry, court, later, amended_body(later_body)).status_code == 200
    remove(registry, court, later)
    second = _export(settings, "--date", (registry.today - timedelta(days=1)).isoformat())["date"]
    with registry.http() as http:
        listed = {e["date"]: e["withdrawn"] for e in http.get("/v1/exports").json()["exports"]}
        assert listed == {first: False, second: False}
    # The court corrects the debtor's name (SPC Art. 9): no export serves the old one.
    fixed = dict(body, submission_id=new_submission(), debtor=dict(body["debtor"], name="李正确"))
    assert post_amendment(registry, court, corrected, fixed).status_code == 200
    third = _export(settings)["date"]
    with registry.http() as http:
        listed = {e["date"]: e["withdrawn"] for e in http.get("/v1/exports").json()["exports"]}
        assert listed == {first: True, second: True, third: False}
        for day in (first, second):
            for name in ("listings.jsonl.gz", "listings.csv.gz", "changes.jsonl.gz"):
                gone = http.get(f"/v1/exports/{day}/{name}")
                assert gone.status_code == 410 and gone.json()["code"] == "export_withdrawn"
            assert _download(http, day, "manifest.json") and _download(http, day, "manifest.json.sig")
        rows = gzip.decompress(_download(http, third, "listings.jsonl.gz")).splitlines()
    assert [json.loads(row)["name"] for row in rows] == ["李正确"]


def test_the_listing_csv_neutralises_court_text_a_spreadsheet_would_run(
    registry: Registry, court: CourtHandle, settings: Settings
) -> None:
    [listing_id] = publish(registry, court, 1, obligations="=1+2 支付货款")
    day = _export(settings)["date"]
    with registry.http() as http:
        data = _download(http, day, "listings.csv.gz")
    table = list(csv.reader(io.StringIO(gzip.decompress(data).decode("utf-8-sig"))))
    record = dict(zip(CSV_COLUMNS, table[1], strict=True))
    assert table[1][0] == listing_id
    assert record["生效法律文书确定的义务"] == "'=1+2 支付货款"


def test_the_listing_csv_names_a_passport_s_country_in_words(
    registry: Registry, court: CourtHandle, settings: Settings
) -> None:
    """The CSV is read by people (its headers and codes are in Chinese): a passport's issuing
    country by its name, as on the entry page, not its ISO code; the JSON Lines keep the code."""
    listing_id = publish_one(registry, court, passport_holder_named(registry, court, "欧阳明"))
    day = _export(settings)["date"]
    with registry.http() as http:
        table = list(
            csv.reader(
                io.StringIO(gzip.decompress(_download(http, day, "listings.csv.gz")).decode("utf-8-sig"))
            )
        )
        [row] = gzip.decompress(_download(http, day, "listings.jsonl.gz")).splitlines()
    record = dict(zip(CSV_COLUMNS, table[1], strict=True))
    assert (table[1][0], record["证件类型"], record["证件号码（部分隐去）"]) == (
        listing_id,
        "护照",
        "加拿大 *********",
    )
    assert json.loads(row)["identifier_masked"] == "CAN *********"


def test_the_daily_job_writes_again_a_day_exported_before_it_ended_and_withdraws_either_way(
    registry: Registry, court: CourtHandle, settings: Settings, engine: sa.Engine
) -> None:
    """`registry export run` during a day wrote that day's export with half its changes; the
    next day's job skipped the day as done, and the rest of its changes were in no change
    file, for good. Skipped or not, the job withdraws what is no longer published."""
    ids = publish(registry, court, 2)
    yesterday = today_in_china() - timedelta(days=1)
    during = china_midnight(yesterday) + timedelta(hours=10)
    run_export(engine, load_registry_signer(settings), settings.exports.dir, yesterday, during)

    async def job() -> dict[str, Any]:
        services = Services.create(settings)
        try:
            return await daily_export(services)
        finally:
            await services.close()

    written = asyncio.run(job())
    assert "skipped" not in written
    assert datetime.fromisoformat(written["generated_at"]) >= end_of_china_day(yesterday)
    remove(registry, court, ids[0])
    assert asyncio.run(job()) == {"skipped": yesterday.isoformat()}  # complete now: not again
    with registry.http() as http:
        listed = {e["date"]: e["withdrawn"] for e in http.get("/v1/exports").json()["exports"]}
    assert listed[yesterday.isoformat()] is True  # the removed person is no longer served

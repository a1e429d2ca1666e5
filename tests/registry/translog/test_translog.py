"""The transparency log checked the way an outsider would: signatures with PyNaCl (not the
`cryptography` the registry signs with) and RFC 6962 proofs with a verifier written here,
straight from the definitions of PATH and SUBPROOF in RFC 6962 section 2.1."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from typing import Any

import httpx
import nacl.exceptions
import nacl.signing
import pytest
import sqlalchemy as sa

from registry.settings import Settings
from registry.translog import merkle
from registry.translog.catchup import catch_up
from registry.translog.services import checkpoint_for_seq
from tests.support.harness import CourtHandle, Registry, cli_env, registry_bin
from tests.support.publishing import checkpoint, grow, publish, remove

# ---- an independent RFC 6962 verifier ----


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return _h(b"\x01" + left + right)


def _k(n: int) -> int:
    """The largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _mth(leaves: list[bytes]) -> bytes:
    """MTH over leaf hashes (RFC 6962 2.1)."""
    if len(leaves) == 1:
        return leaves[0]
    k = _k(len(leaves))
    return _node(_mth(leaves[:k]), _mth(leaves[k:]))


def root_from_path(leaf: bytes, m: int, n: int, path: list[bytes]) -> bytes:
    """Undo PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])  or  PATH(m - k, D[k:n]) : MTH(D[0:k])."""
    if n == 1:
        assert path == []
        return leaf
    k = _k(n)
    *inner, last = path
    if m < k:
        return _node(root_from_path(leaf, m, k, inner), last)
    return _node(last, root_from_path(leaf, m - k, n - k, inner))


def roots_from_consistency(m: int, n: int, old_root: bytes, proof: list[bytes]) -> tuple[bytes, bytes]:
    """Undo SUBPROOF(m, D[n], true); returns the (old, new) roots the proof implies."""

    def sub(m: int, n: int, proof: list[bytes], whole: bool) -> tuple[bytes, bytes]:
        if m == n:
            if whole:  # D[0:m] is the old tree itself: the verifier knows its hash
                assert proof == []
                return old_root, old_root
            assert len(proof) == 1
            return proof[0], proof[0]
        k = _k(n)
        *inner, last = proof
        if m <= k:
            old, new = sub(m, k, inner, whole)
            return old, _node(new, last)
        old, new = sub(m - k, n - k, inner, False)
        return _node(last, old), _node(last, new)

    return sub(m, n, proof, True)


def test_product_proofs_and_verifiers_agree_with_the_rfc_at_every_size() -> None:
    """The proof builders and verifiers alone, over every tree up to 70 leaves."""
    leaves = [_h(b"\x00" + bytes([i])) for i in range(70)]

    def subtree(lo: int, hi: int) -> bytes:
        return _mth(leaves[lo:hi])

    for n in range(1, 71):
        root = _mth(leaves[:n])
        assert merkle.range_hash(subtree, 0, n) == root
        for m in range(n):
            path = merkle.inclusion_path(subtree, m, n)
            assert root_from_path(leaves[m], m, n, path) == root
            assert merkle.verify_inclusion(leaves[m], m, n, path, root)
            assert not merkle.verify_inclusion(leaves[(m + 1) % n], m, n, path, root) or n == 1
        for m in range(1, n + 1):
            proof = merkle.consistency_proof(subtree, m, n)
            old = _mth(leaves[:m])
            assert roots_from_consistency(m, n, old, proof) == (old, root)
            assert merkle.verify_consistency(m, n, old, root, proof)
            if m < n:
                assert not merkle.verify_consistency(m, n, old, leaves[0], proof)


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _nacl_key(http: httpx.Client, kid: str) -> nacl.signing.VerifyKey:
    for key in http.get("/.well-known/jwks.json").json()["keys"]:
        if key["kid"] == kid:
            x = key["x"]
            return nacl.signing.VerifyKey(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))
    raise AssertionError(f"{kid} is not in the JWK Set")


def _verified_checkpoint(http: httpx.Client, cp: dict[str, Any]) -> bytes:
    """Check the signature over the note body and that the body says what the fields say."""
    _nacl_key(http, cp["key_id"]).verify(cp["body"].encode(), _b64(cp["signature"]))
    origin, size, root, time_line, end = cp["body"].split("\n")
    assert (int(size), root, end) == (cp["tree_size"], cp["root_hash"], "")
    assert origin and time_line.startswith("time ")
    # The signed note a note verifier reads: body, blank line, one signature line.
    signature_line = cp["note"].split("\n\n", 1)[1]
    name, blob = signature_line.removeprefix("— ").split()
    assert name == cp["key_id"] and _b64(blob)[4:] == _b64(cp["signature"])
    return _b64(cp["root_hash"])


def _checkpoints(http: httpx.Client) -> list[dict[str, Any]]:
    response = http.get("/v1/log/checkpoints")
    assert response.status_code == 200, response.text
    checkpoints: list[dict[str, Any]] = response.json()["checkpoints"]
    return checkpoints


def _leaf_hashes(engine: sa.Engine) -> list[bytes]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT commitment, leaf_hash FROM translog_leaves ORDER BY leaf_index"))
        out = []
        for commitment, leaf in rows:
            assert _h(b"\x00" + bytes(commitment)) == bytes(leaf)
            out.append(bytes(leaf))
    return out


def _inclusion(http: httpx.Client, **params: Any) -> dict[str, Any]:
    response = http.get("/v1/log/proof/inclusion", params=params)
    assert response.status_code == 200, response.text
    proof: dict[str, Any] = response.json()
    return proof


def _consistency(http: httpx.Client, first: int, second: int) -> list[bytes]:
    response = http.get("/v1/log/proof/consistency", params={"first": first, "second": second})
    assert response.status_code == 200, response.text
    return [_b64(h) for h in response.json()["proof"]]


def test_proofs_verify_with_an_independent_rfc6962_verifier(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings
) -> None:
    publish(registry, court, 40)
    # Grow the tree in uneven steps so that stored nodes are completed across appends.
    sizes = [grow(engine, settings, events) for events in (4, 2, 13, 7, 14)]
    assert None not in sizes
    ids = publish(registry, court, 30)
    remove(registry, court, ids[0])
    final = checkpoint(engine, settings)
    assert final == 71  # 70 publications and one removal; court and client events are not leaves

    leaves = _leaf_hashes(engine)
    with registry.http() as http:
        checkpoints = _checkpoints(http)
        roots = {cp["tree_size"]: _verified_checkpoint(http, cp) for cp in checkpoints}
        assert sorted(roots) == sorted({*sizes, final})
        for size, root in roots.items():
            assert _mth(leaves[:size]) == root
        for size in (1, 3, 16, 23, 37, 71):
            if size not in roots:
                continue
            for index in range(size):
                proof = _inclusion(http, leaf_index=index, tree_size=size)
                assert _b64(proof["leaf_hash"]) == leaves[index]
                path = [_b64(h) for h in proof["audit_path"]]
                assert root_from_path(leaves[index], index, size, path) == roots[size]
        ordered = sorted(roots)
        for position, first in enumerate(ordered):
            for second in ordered[position:]:
                proof = _consistency(http, first, second)
                assert roots_from_consistency(first, second, roots[first], proof) == (
                    roots[first],
                    roots[second],
                )
        # The verifier is not a rubber stamp: a wrong sibling or old root is caught.
        proof = _consistency(http, ordered[1], final)
        bent = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
        assert roots_from_consistency(ordered[1], final, roots[ordered[1]], bent) != (
            roots[ordered[1]],
            roots[final],
        )
        path = [_b64(h) for h in _inclusion(http, leaf_index=5, tree_size=final)["audit_path"]]
        assert root_from_path(leaves[6], 5, final, path) != roots[final]


def test_every_public_entry_can_name_its_checkpoint(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings
) -> None:
    [listing_id] = publish(registry, court, 1)
    with engine.connect() as conn:
        seq = conn.execute(
            sa.text("SELECT seq FROM events WHERE listing_id = :l"), {"l": listing_id}
        ).scalar_one()
        assert checkpoint_for_seq(conn, seq) is None  # not logged yet
    checkpoint(engine, settings)
    remove(registry, court, listing_id)
    checkpoint(engine, settings)
    with engine.connect() as conn:
        where = checkpoint_for_seq(conn, seq)
    assert where is not None and where["leaf_index"] == 0 and where["tree_size"] == 1
    with registry.http() as http:
        response = http.get(f"/v1/log/entries/{listing_id}")
        assert response.status_code == 200, response.text
        entries = response.json()["entries"]
        assert [(e["type"], e["leaf_index"], e["checkpoint"]["tree_size"]) for e in entries] == [
            ("listing.published", 0, 1),
            ("listing.removed", 1, 2),
        ]
        by_seq = _inclusion(http, seq=entries[1]["seq"])
        assert by_seq["leaf_index"] == 1 and by_seq["tree_size"] == 2
        assert by_seq["commitment"] == entries[1]["commitment"]
        assert http.get("/v1/log/entries/01J0000000000000000000NONE").status_code == 404
        latest = http.get("/v1/log/checkpoint").json()
        assert latest["tree_size"] == 2
        assert http.get("/v1/log/checkpoint", params={"size": 1}).json()["tree_size"] == 1


def _verify_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [registry_bin(), "log", "verify", *args],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_a_rewritten_past_event_is_detected(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings
) -> None:
    ids = publish(registry, court, 5)
    checkpoint(engine, settings)
    remove(registry, court, ids[1])
    # The scheduler's job, as `registry log checkpoint` runs it.
    signed = subprocess.run(
        [registry_bin(), "log", "checkpoint"],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        check=False,
    )
    assert signed.returncode == 0, signed.stderr
    assert json.loads(signed.stdout) == {"checkpoint_tree_size": 6}
    assert "logging events" in signed.stderr and "1/1" in signed.stderr, "a progress bar on stderr"
    clean = _verify_cli(settings)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    report = json.loads(clean.stdout)
    assert report["ok"] and report["checkpoints_checked"] == 2 and report["commitments_checked"] == 6
    remote = _verify_cli(settings, "--url", registry.url)
    assert remote.returncode == 0, remote.stdout + remote.stderr

    # Someone quietly changes why listing 2 was removed.
    with engine.begin() as conn:
        seq, data = conn.execute(
            sa.text("SELECT seq, data FROM events WHERE type = 'listing.removed' AND listing_id = :l"),
            {"l": ids[1]},
        ).one()
        changed = (json.loads(data) if isinstance(data, str) else data) | {"reason": "wrongly_listed"}
        conn.execute(
            sa.text("UPDATE events SET data = :d WHERE seq = :s"), {"d": json.dumps(changed), "s": seq}
        )
    rewritten = _verify_cli(settings)
    assert rewritten.returncode == 1
    assert f"(event {seq}): the event differs from what was logged" in rewritten.stdout

    # Rewriting the leaf too, to match, breaks the signed roots instead.
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE translog_leaves SET commitment = :c, leaf_hash = :h WHERE leaf_index = 2"),
            {"c": bytes(32), "h": _h(b"\x00" + bytes(32))},
        )
    result = _verify_cli(settings)
    assert result.returncode == 1
    assert "checkpoint 5: the leaves give another root" in result.stdout
    assert "checkpoint 5: stored nodes give another root" in result.stdout
    with registry.http() as http:
        cp = _checkpoints(http)[0]
        root = _verified_checkpoint(http, cp)
        proof = _inclusion(http, leaf_index=2, tree_size=5)
        path = [_b64(h) for h in proof["audit_path"]]
        assert root_from_path(_b64(proof["leaf_hash"]), 2, 5, path) != root


@pytest.mark.slow
def test_erasing_a_salt_keeps_every_proof(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings
) -> None:
    publish(registry, court, 3)
    checkpoint(engine, settings)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "DELETE FROM translog_salts"
                " WHERE seq = (SELECT seq FROM translog_leaves WHERE leaf_index = 1)"
            )
        )
    result = _verify_cli(settings)
    assert result.returncode == 0, result.stdout
    report = json.loads(result.stdout)
    assert report["salts_erased"] == 1 and report["commitments_checked"] == 2
    with registry.http() as http:
        root = _verified_checkpoint(http, _checkpoints(http)[0])
        proof = _inclusion(http, leaf_index=1, tree_size=3)
        assert root_from_path(_b64(proof["leaf_hash"]), 1, 3, [_b64(h) for h in proof["audit_path"]]) == root


def test_a_forged_checkpoint_signature_fails_with_pynacl(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings
) -> None:
    publish(registry, court, 2)
    checkpoint(engine, settings)
    with registry.http() as http:
        cp = http.get("/v1/log/checkpoint").json()
        forged = cp["body"].replace("\n2\n", "\n3\n")
        with pytest.raises(nacl.exceptions.BadSignatureError):
            _nacl_key(http, cp["key_id"]).verify(forged.encode(), _b64(cp["signature"]))


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/v1/log/checkpoint", {"size": 7}, 404, "checkpoint_not_found"),
        ("/v1/log/checkpoint", {"size": 0}, 400, "invalid_parameter"),
        ("/v1/log/checkpoint", {"size": "x"}, 400, "invalid_parameter"),
        ("/v1/log/checkpoints", {"limit": 0}, 400, "invalid_parameter"),
        ("/v1/log/proof/inclusion", {}, 400, "invalid_parameter"),
        ("/v1/log/proof/inclusion", {"seq": 1, "leaf_index": 0}, 400, "invalid_parameter"),
        ("/v1/log/proof/inclusion", {"leaf_index": 0, "tree_size": 3}, 404, "checkpoint_not_found"),
        ("/v1/log/proof/inclusion", {"leaf_index": 2, "tree_size": 2}, 422, "leaf_not_in_tree"),
        ("/v1/log/proof/inclusion", {"leaf_index": 99}, 404, "leaf_not_found"),
        ("/v1/log/proof/inclusion", {"leaf_index": -1}, 400, "invalid_parameter"),
        ("/v1/log/proof/inclusion", {"leaf_index": 2**80}, 400, "invalid_parameter"),
        ("/v1/log/proof/consistency", {"first": 2, "second": 1}, 400, "invalid_range"),
        ("/v1/log/proof/consistency", {"first": 0, "second": 2}, 400, "invalid_parameter"),
        ("/v1/log/proof/consistency", {"first": 1, "second": 9}, 404, "checkpoint_not_found"),
        ("/v1/log/proof/consistency", {"first": 1}, 400, "invalid_parameter"),
    ],
)
def test_bad_log_requests_are_4xx_problems(
    registry: Registry,
    court: CourtHandle,
    engine: sa.Engine,
    settings: Settings,
    path: str,
    params: dict[str, Any],
    status: int,
    code: str,
) -> None:
    publish(registry, court, 2)
    grow(engine, settings, 4)  # the court's three set-up events, then one listing: size 1
    checkpoint(engine, settings)
    publish(registry, court, 1)
    checkpoint(engine, settings)
    with engine.connect() as conn:
        sizes = [r[0] for r in conn.execute(sa.text("SELECT tree_size FROM translog_checkpoints ORDER BY 1"))]
    assert 2 in sizes and 3 in sizes
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM translog_checkpoints WHERE tree_size = 3"))
    with registry.http() as http:
        response = http.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


@pytest.mark.slow
def test_an_outsider_who_remembers_a_checkpoint_detects_a_rebuilt_log(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings, tmp_path: Any
) -> None:
    known = tmp_path / "known-checkpoint.json"
    publish(registry, court, 3)
    checkpoint(engine, settings)
    first = _verify_cli(settings, "--url", registry.url, "--known", str(known))
    assert first.returncode == 0, first.stdout
    assert json.loads(known.read_text())["tree_size"] == 3
    publish(registry, court, 1)
    checkpoint(engine, settings)
    grown = _verify_cli(settings, "--url", registry.url, "--known", str(known))
    assert grown.returncode == 0, grown.stdout
    assert json.loads(known.read_text())["tree_size"] == 4

    # The operator throws the log away and builds a new one, consistent with itself.
    with engine.begin() as conn:
        for table in ("translog_checkpoints", "translog_nodes", "translog_salts", "translog_leaves"):
            conn.execute(sa.text(f"DELETE FROM {table}"))
        conn.execute(sa.text("UPDATE reader_cursors SET position = 0 WHERE name = 'translog'"))
    checkpoint(engine, settings)
    assert _verify_cli(settings, "--url", registry.url).returncode == 0  # alone, it looks fine
    caught = _verify_cli(settings, "--url", registry.url, "--known", str(known))
    assert caught.returncode == 1
    assert "the checkpoint remembered at size 4 is not part of today's log" in caught.stdout


@pytest.mark.slow
def test_a_large_backlog_logged_in_parallel_is_the_log_one_process_would_write(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings
) -> None:
    ids = publish(registry, court, 40)
    for listing_id in ids[:3]:
        remove(registry, court, listing_id)
    with engine.connect() as conn:
        head = conn.execute(sa.text("SELECT max(seq) FROM events")).scalar_one()
        listing_seqs = list(
            conn.execute(sa.text("SELECT seq FROM events WHERE type LIKE 'listing.%' ORDER BY seq")).scalars()
        )
    # Ranges of 6 events, some holding court events only: leaves must still come out in order.
    assert catch_up(engine, settings.database.url, 2, min_backlog=1, range_events=6) == head
    assert checkpoint(engine, settings) == len(listing_seqs) == 43
    with engine.connect() as conn:
        logged = list(conn.execute(sa.text("SELECT seq FROM translog_leaves ORDER BY leaf_index")).scalars())
    assert logged == listing_seqs
    result = _verify_cli(settings)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["commitments_checked"] == 43
    with registry.http() as http:
        root = _verified_checkpoint(http, _checkpoints(http)[0])
        for index in (0, 17, 42):
            proof = _inclusion(http, leaf_index=index, tree_size=43)
            path = [_b64(h) for h in proof["audit_path"]]
            assert root_from_path(_b64(proof["leaf_hash"]), index, 43, path) == root
    # Nothing was left for the ordinary appender.
    assert catch_up(engine, settings.database.url, 2, min_backlog=1) == 0


def test_with_json_logs_a_command_off_a_terminal_writes_only_json_to_stderr(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings
) -> None:
    """A log shipper reads stderr: the progress bar, not JSON, is left out there (on a
    terminal it is drawn, as without JSON logs)."""
    publish(registry, court, 2)
    shipped = subprocess.run(
        [registry_bin(), "log", "checkpoint"],
        env=cli_env(settings) | {"REGISTRY_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert shipped.returncode == 0, shipped.stderr
    assert "checkpoint_tree_size" in json.loads(shipped.stdout)
    lines = [line for line in shipped.stderr.splitlines() if line.strip()]
    assert all(isinstance(json.loads(line), dict) for line in lines), shipped.stderr

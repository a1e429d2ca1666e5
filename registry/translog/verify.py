"""`registry log verify`: check a chain of signed checkpoints.

From the database: every checkpoint signature; every leaf against its event and salt (a
rewritten event no longer matches its commitment); the tree rebuilt from the leaves
against every signed root; and the stored nodes (what proofs are built from) against the
same roots. From a URL, as any outsider would: the checkpoints, the registry's JWK Set,
and a consistency proof between each pair of consecutive checkpoints.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, select

from registry.translog.merkle import EMPTY_ROOT, leaf_hash, node_hash, range_hash, verify_consistency
from registry.translog.models import LogCheckpoint
from registry.translog.note import parse_body
from registry.translog.services import commitment_of, event_content, leaves_with_events, subtree_reader

PAGE = 1000


@dataclass
class VerifyReport:
    checkpoints_checked: int = 0
    leaves_checked: int = 0
    commitments_checked: int = 0
    salts_erased: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checkpoints_checked": self.checkpoints_checked,
            "leaves_checked": self.leaves_checked,
            "commitments_checked": self.commitments_checked,
            "salts_erased": self.salts_erased,
            "problems": self.problems,
        }


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=False)


def jwks_keys(jwks: dict[str, Any]) -> dict[str, Ed25519PublicKey]:
    return {
        key["kid"]: Ed25519PublicKey.from_public_bytes(
            base64.urlsafe_b64decode(key["x"] + "=" * (-len(key["x"]) % 4))
        )
        for key in jwks.get("keys", [])
        if key.get("kty") == "OKP" and key.get("crv") == "Ed25519"
    }


def _check_signature(
    report: VerifyReport,
    keys: dict[str, Ed25519PublicKey],
    key_id: str,
    signature: bytes,
    body: str,
    size: int,
    root: bytes,
) -> None:
    key = keys.get(key_id)
    if key is None:
        report.problems.append(f"checkpoint {size}: unknown key {key_id}")
        return
    try:
        key.verify(signature, body.encode())
    except InvalidSignature:
        report.problems.append(f"checkpoint {size}: bad signature")
        return
    try:
        parsed = parse_body(body)
    except ValueError:
        report.problems.append(f"checkpoint {size}: malformed body")
        return
    if parsed.size != size or parsed.root != root:
        report.problems.append(f"checkpoint {size}: body and fields disagree")


class _Rebuilder:
    """MTH of a growing prefix: the perfect subtrees of the binary decomposition of its size."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, bytes]] = []
        self.size = 0

    def add(self, leaf: bytes) -> None:
        self.size += 1
        height, current = 0, leaf
        while self.stack and self.stack[-1][0] == height:
            _, left = self.stack.pop()
            current = node_hash(left, current)
            height += 1
        self.stack.append((height, current))

    def root(self) -> bytes:
        if not self.stack:
            return EMPTY_ROOT
        root = self.stack[-1][1]
        for _, left in reversed(self.stack[:-1]):
            root = node_hash(left, root)
        return root


def verify_database(conn: Connection, keys: dict[str, Ed25519PublicKey]) -> VerifyReport:
    report = VerifyReport()
    checkpoints = conn.execute(select(LogCheckpoint).order_by(LogCheckpoint.tree_size)).all()
    subtree = subtree_reader(conn)
    for cp in checkpoints:
        report.checkpoints_checked += 1
        root = bytes(cp.root_hash)
        _check_signature(report, keys, cp.key_id, bytes(cp.signature), cp.body, cp.tree_size, root)
        try:
            if range_hash(subtree, 0, cp.tree_size) != root:
                report.problems.append(f"checkpoint {cp.tree_size}: stored nodes give another root")
        except LookupError:
            report.problems.append(f"checkpoint {cp.tree_size}: stored nodes missing")
    sizes = {cp.tree_size: bytes(cp.root_hash) for cp in checkpoints}
    tree = _Rebuilder()
    for row in leaves_with_events(conn):
        report.leaves_checked += 1
        index = row.leaf_index
        if index != tree.size:
            report.problems.append(f"leaf {tree.size}: missing")
            break
        commitment = bytes(row.commitment)
        if leaf_hash(commitment) != bytes(row.leaf_hash):
            report.problems.append(f"leaf {index}: leaf hash does not match its commitment")
        if row.seq is None:
            report.problems.append(f"leaf {index}: its event is gone")
        elif row.salt is None:
            report.salts_erased += 1
        else:
            report.commitments_checked += 1
            if commitment_of(bytes(row.salt), event_content(row)) != commitment:
                report.problems.append(
                    f"leaf {index} (event {row.seq}): the event differs from what was logged"
                )
        tree.add(leaf_hash(commitment))
        expected = sizes.get(tree.size)
        if expected is not None and tree.root() != expected:
            report.problems.append(f"checkpoint {tree.size}: the leaves give another root")
    return report


def verify_remote(base_url: str, known: Path | None = None) -> VerifyReport:
    """As an outsider: checkpoints and proofs over HTTP, keys from the registry's JWK Set.

    `known` is the outsider's own memory: the last checkpoint it verified (JSON, written
    back after a clean run). The newest checkpoint must be consistent with it, so a log
    rebuilt from scratch cannot pass, however consistent it is with itself.
    """
    report = VerifyReport()
    remembered = read_known(known) if known is not None and known.exists() else None
    with httpx.Client(base_url=base_url, timeout=60) as client:
        try:
            newest = _walk_remote(client, report)
            if remembered is not None and newest is not None:
                _check_against_known(client, report, remembered, newest)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            report.problems.append(f"could not read the log from {base_url}: {type(exc).__name__}: {exc}")
            newest = None
    if known is not None and report.ok and newest is not None:
        known.write_text(json.dumps({"tree_size": newest["tree_size"], "root_hash": newest["root_hash"]}))
    return report


class KnownFileError(ValueError):
    """The `--known` file holds no checkpoint this command wrote (names the file and why)."""


def read_known(path: Path) -> dict[str, Any]:
    """The remembered checkpoint: `{"tree_size": n, "root_hash": base64 of 32 bytes}`, as
    `verify_remote` writes it. KnownFileError for anything else: a corrupt memory must stop
    the check, not be compared with (or replaced by) today's log."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KnownFileError(f"cannot read the known checkpoint file {path}: {exc.strerror}") from exc
    try:
        remembered = json.loads(raw.decode())
    except (ValueError, RecursionError) as exc:
        raise KnownFileError(f"the known checkpoint file {path} is not JSON ({exc})") from exc
    what = f"the known checkpoint file {path} is not a checkpoint this command wrote"
    if not isinstance(remembered, dict):
        raise KnownFileError(f"{what}: a JSON object with tree_size and root_hash expected")
    size = remembered.get("tree_size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise KnownFileError(f"{what}: tree_size must be a whole number, 0 or more")
    root = remembered.get("root_hash")
    try:
        decoded = base64.b64decode(root, validate=True) if isinstance(root, str) else b""
    except ValueError:
        decoded = b""
    if len(decoded) != 32:
        raise KnownFileError(f"{what}: root_hash must be the base64 of a 32-byte hash")
    return {"tree_size": size, "root_hash": root}


def _consistent(client: httpx.Client, old: dict[str, Any], new: dict[str, Any]) -> bool:
    proof = (
        client.get(
            "/v1/log/proof/consistency", params={"first": old["tree_size"], "second": new["tree_size"]}
        )
        .raise_for_status()
        .json()
    )
    return verify_consistency(
        old["tree_size"],
        new["tree_size"],
        _b64(old["root_hash"]),
        _b64(new["root_hash"]),
        [_b64(h) for h in proof["proof"]],
    )


def _check_against_known(
    client: httpx.Client, report: VerifyReport, known: dict[str, Any], newest: dict[str, Any]
) -> None:
    if known["tree_size"] > newest["tree_size"]:
        report.problems.append(f"the log shrank: it was {known['tree_size']}, now {newest['tree_size']}")
        return
    try:
        consistent = _consistent(client, known, newest)
    except httpx.HTTPStatusError:
        consistent = False  # the remembered checkpoint is gone
    if not consistent:
        report.problems.append(
            f"the checkpoint remembered at size {known['tree_size']} is not part of today's log"
        )


def _walk_remote(client: httpx.Client, report: VerifyReport) -> dict[str, Any] | None:
    """Every checkpoint's signature, and consistency between each one and the next; returns the newest."""
    keys = jwks_keys(client.get("/.well-known/jwks.json").raise_for_status().json())
    previous: dict[str, Any] | None = None
    after = 0
    while True:
        page = client.get("/v1/log/checkpoints", params={"after_size": after, "limit": PAGE})
        checkpoints = page.raise_for_status().json()["checkpoints"]
        for cp in checkpoints:
            report.checkpoints_checked += 1
            root = _b64(cp["root_hash"])
            _check_signature(
                report, keys, cp["key_id"], _b64(cp["signature"]), cp["body"], cp["tree_size"], root
            )
            if previous is not None and not _consistent(client, previous, cp):
                report.problems.append(
                    f"checkpoints {previous['tree_size']} -> {cp['tree_size']}: not consistent"
                )
            previous = cp
        if len(checkpoints) < PAGE:
            return previous
        after = checkpoints[-1]["tree_size"]

"""The transparency log: a reader of the event log that appends every listing event as a
salted commitment to an RFC 6962 Merkle tree, signs checkpoints and answers proofs.

Leaf content: commitment = SHA-256(salt || canonical JSON of the event row), with a fresh
32-byte salt per event kept in `translog_salts`. The log therefore reveals nothing about an
event, yet anyone handed the salt and the event can confirm it was logged, and erasing a
salt makes the content unconfirmable without touching a single proof.

Nodes: every NODE_STRIDE-th level of perfect subtrees is stored (1/15 of the leaf count in
rows), so a node of any level folds at most 2**(NODE_STRIDE-1) stored hashes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, func, insert, select

from registry.bulk import bulk_insert
from registry.eventlog.models import Event
from registry.eventlog.readers import EVENT_COLUMNS, LogEvent, LogReader, claim_cursor
from registry.eventlog.types import LISTING_EVENTS
from registry.identity.canonical import canonical_json
from registry.identity.registry_key import Domain, RegistrySigner
from registry.problems import Problem
from registry.timeutil import iso
from registry.translog.merkle import (
    Subtree,
    consistency_proof,
    fold_perfect,
    inclusion_path,
    leaf_hash,
    range_hash,
)
from registry.translog.models import LogCheckpoint, LogLeaf, LogNode, LogSalt
from registry.translog.note import b64, checkpoint_body, signed_note, verifier_key

CURSOR_NAME = "translog"
# The scheduler job that runs this reader (`registry.translog.plugin`).
JOB = "translog"
NODE_STRIDE = 4
SALT_BYTES = 32

LEAVES = cast(Table, LogLeaf.__table__)
SALTS = cast(Table, LogSalt.__table__)
NODES = cast(Table, LogNode.__table__)


def event_content(row: Any) -> bytes:
    """The canonical bytes a leaf commits to: the whole event row (its chain hash included).
    `row`: a `LogEvent`, or a row with its columns (`EVENT_COLUMNS`)."""
    return canonical_json(
        {
            "seq": row.seq,
            "occurred_at": iso(row.occurred_at),
            "type": row.type,
            "actor": row.actor,
            "court_code": row.court_code,
            "listing_id": row.listing_id,
            "listing_version": row.listing_version,
            "data": row.data,
            "hash": bytes(row.hash).hex(),
        }
    )


def commitment_of(salt: bytes, content: bytes) -> bytes:
    return hashlib.sha256(salt + content).digest()


def tree_size(conn: Connection) -> int:
    last = conn.execute(select(func.max(LogLeaf.leaf_index))).scalar()
    return 0 if last is None else int(last) + 1


def _stored(conn: Connection, level: int, lo: int, hi: int) -> list[bytes]:
    """Hashes at `level` for indices [lo, hi): leaf hashes at level 0, stored nodes above."""
    if hi <= lo:
        return []
    if level == 0:
        query = (
            select(LogLeaf.leaf_hash)
            .where(LogLeaf.leaf_index >= lo, LogLeaf.leaf_index < hi)
            .order_by(LogLeaf.leaf_index)
        )
    else:
        query = (
            select(LogNode.hash)
            .where(LogNode.level == level, LogNode.node_index >= lo, LogNode.node_index < hi)
            .order_by(LogNode.node_index)
        )
    hashes = [bytes(h) for h in conn.execute(query).scalars()]
    if len(hashes) != hi - lo:
        raise LookupError(f"the log is missing hashes at level {level} in [{lo}, {hi})")
    return hashes


def subtree_reader(conn: Connection) -> Subtree:
    def subtree(lo: int, hi: int) -> bytes:
        height = (hi - lo).bit_length() - 1
        stored = height - height % NODE_STRIDE
        return fold_perfect(_stored(conn, stored, lo >> stored, hi >> stored))

    return subtree


def _extend_nodes(conn: Connection, old_size: int, fresh: list[bytes]) -> None:
    """Store every node completed by appending `fresh` leaf hashes to a tree of `old_size`."""
    new_size = old_size + len(fresh)
    level, start = 0, old_size
    group = 1 << NODE_STRIDE
    while True:
        parent = level + NODE_STRIDE
        lo, hi = old_size >> parent, new_size >> parent
        if hi <= lo:
            return
        # The first parent may need children stored by an earlier append.
        children = _stored(conn, level, lo * group, start) + fresh
        fresh = [fold_perfect(children[i * group : (i + 1) * group]) for i in range(hi - lo)]
        bulk_insert(
            conn, NODES, [{"level": parent, "node_index": lo + i, "hash": h} for i, h in enumerate(fresh)]
        )
        level, start = parent, lo


Commitment = tuple[int, bytes, bytes, bytes]  # (seq, salt, commitment, leaf hash)


def commitments(events: Sequence[LogEvent]) -> list[Commitment]:
    """A fresh salt, the commitment and the leaf hash of each event."""
    randomness = os.urandom(SALT_BYTES * len(events))
    out: list[Commitment] = []
    for i, event in enumerate(events):
        salt = randomness[i * SALT_BYTES : (i + 1) * SALT_BYTES]
        commitment = commitment_of(salt, event_content(event))
        out.append((event.seq, salt, commitment, leaf_hash(commitment)))
    return out


def store_leaves(conn: Connection, computed: Sequence[Commitment]) -> None:
    """Append `computed` (in seq order) to the tree: leaves, salts, and the nodes they complete.
    The caller holds the reader's cursor (`claim_cursor`), so appends never interleave."""
    size = tree_size(conn)
    bulk_insert(
        conn,
        LEAVES,
        [
            {"leaf_index": size + i, "seq": seq, "commitment": commitment, "leaf_hash": hashed}
            for i, (seq, _, commitment, hashed) in enumerate(computed)
        ],
    )
    bulk_insert(conn, SALTS, [{"seq": seq, "salt": salt} for seq, salt, _, _ in computed])
    _extend_nodes(conn, size, [hashed for _, _, _, hashed in computed])


def append_leaves(conn: Connection, events: Sequence[LogEvent], now: datetime) -> None:
    store_leaves(conn, commitments(events))


# Every listing event becomes a leaf, in log order.
READER = LogReader(CURSOR_NAME, append_leaves, LISTING_EVENTS, batch=10_000)


# ---- checkpoints ----


def latest_checkpoint(conn: Connection) -> Row[Any] | None:
    return conn.execute(select(LogCheckpoint).order_by(LogCheckpoint.tree_size.desc()).limit(1)).first()


def make_checkpoint(conn: Connection, signer: RegistrySigner, origin: str, now: datetime) -> int | None:
    """Sign the current tree when it has grown since the last checkpoint; returns its size.
    Holding the appenders' cursor, it signs a tree no append is extending, and a second
    checkpointer waits, then finds nothing new to sign."""
    claim_cursor(conn, CURSOR_NAME)
    size = tree_size(conn)
    last = latest_checkpoint(conn)
    if size == 0 or (last is not None and last.tree_size >= size):
        return None
    root = range_hash(subtree_reader(conn), 0, size)
    body = checkpoint_body(origin, size, root, now)
    conn.execute(
        insert(LogCheckpoint).values(
            tree_size=size,
            root_hash=root,
            created_at=now,
            key_id=signer.key_id,
            signature=signer.sign(Domain.CHECKPOINT, body.encode()),
            body=body,
        )
    )
    return size


def checkpoint_json(row: Any, signer: RegistrySigner) -> dict[str, Any]:
    """What clients get: the fields, and the same as a C2SP signed note."""
    public = signer.public_key(row.key_id)
    out: dict[str, Any] = {
        "tree_size": row.tree_size,
        "root_hash": b64(bytes(row.root_hash)),
        "timestamp": iso(row.created_at),
        "key_id": row.key_id,
        "signature": b64(bytes(row.signature)),
        "body": row.body,
    }
    if public is not None:
        raw = public.public_bytes_raw()
        out["note"] = signed_note(row.body, row.key_id, raw, bytes(row.signature))
        out["verifier_key"] = verifier_key(row.key_id, raw)
    return out


def checkpoint_of_size(conn: Connection, size: int) -> Row[Any]:
    row = conn.execute(select(LogCheckpoint).where(LogCheckpoint.tree_size == size)).first()
    if row is None:
        raise Problem(404, "checkpoint_not_found", f"no signed checkpoint has tree size {size}")
    return row


def list_checkpoints(conn: Connection, after_size: int, limit: int) -> Sequence[Row[Any]]:
    return conn.execute(
        select(LogCheckpoint)
        .where(LogCheckpoint.tree_size > after_size)
        .order_by(LogCheckpoint.tree_size)
        .limit(limit)
    ).all()


# ---- proofs ----


def _leaf_by(conn: Connection, *, seq: int | None, leaf_index: int | None) -> Row[Any]:
    query = select(LogLeaf)
    query = (
        query.where(LogLeaf.seq == seq) if seq is not None else query.where(LogLeaf.leaf_index == leaf_index)
    )
    row = conn.execute(query).first()
    if row is None:
        raise Problem(
            404, "leaf_not_found", "no log leaf for this event (not a listing event, or not logged yet)"
        )
    return row


def inclusion(
    conn: Connection, signer: RegistrySigner, *, seq: int | None, leaf_index: int | None, size: int | None
) -> dict[str, Any]:
    leaf = _leaf_by(conn, seq=seq, leaf_index=leaf_index)
    checkpoint = (
        checkpoint_of_size(conn, size) if size is not None else _first_checkpoint_after(conn, leaf.leaf_index)
    )
    if leaf.leaf_index >= checkpoint.tree_size:
        raise Problem(
            422,
            "leaf_not_in_tree",
            f"leaf {leaf.leaf_index} is not in the tree of size {checkpoint.tree_size}",
        )
    path = inclusion_path(subtree_reader(conn), leaf.leaf_index, checkpoint.tree_size)
    return {
        "seq": leaf.seq,
        "leaf_index": leaf.leaf_index,
        "tree_size": checkpoint.tree_size,
        "commitment": b64(bytes(leaf.commitment)),
        "leaf_hash": b64(bytes(leaf.leaf_hash)),
        "audit_path": [b64(h) for h in path],
        "checkpoint": checkpoint_json(checkpoint, signer),
    }


def _first_checkpoint_after(conn: Connection, leaf_index: int) -> Row[Any]:
    row = conn.execute(
        select(LogCheckpoint)
        .where(LogCheckpoint.tree_size > leaf_index)
        .order_by(LogCheckpoint.tree_size)
        .limit(1)
    ).first()
    if row is None:
        raise Problem(404, "checkpoint_not_found", "this leaf is not covered by a signed checkpoint yet")
    return row


def consistency(conn: Connection, first: int, second: int) -> dict[str, Any]:
    if first > second:
        raise Problem(400, "invalid_range", "first must not exceed second")
    old = checkpoint_of_size(conn, first)
    new = checkpoint_of_size(conn, second)
    proof = consistency_proof(subtree_reader(conn), first, second) if first != second else []
    return {
        "first": first,
        "second": second,
        "first_root_hash": b64(bytes(old.root_hash)),
        "second_root_hash": b64(bytes(new.root_hash)),
        "proof": [b64(h) for h in proof],
    }


def checkpoint_for_seq(conn: Connection, seq: int) -> dict[str, Any] | None:
    """Where event `seq` sits in the log: its leaf and the first signed checkpoint that
    covers it; None until both exist. For receipts and public entries."""
    leaf = conn.execute(select(LogLeaf.leaf_index, LogLeaf.leaf_hash).where(LogLeaf.seq == seq)).first()
    if leaf is None:
        return None
    checkpoint = conn.execute(
        select(LogCheckpoint)
        .where(LogCheckpoint.tree_size > leaf.leaf_index)
        .order_by(LogCheckpoint.tree_size)
        .limit(1)
    ).first()
    if checkpoint is None:
        return None
    return {
        "seq": seq,
        "leaf_index": leaf.leaf_index,
        "leaf_hash": b64(bytes(leaf.leaf_hash)),
        "tree_size": checkpoint.tree_size,
        "root_hash": b64(bytes(checkpoint.root_hash)),
        "checkpoint_time": iso(checkpoint.created_at),
        "key_id": checkpoint.key_id,
    }


def listing_entries(conn: Connection, listing_id: str) -> list[dict[str, Any]]:
    """Every logged event of one listing with its leaf and checkpoint (no content, no salt)."""
    rows = conn.execute(
        select(Event.seq, Event.type, Event.listing_version, LogLeaf.leaf_index, LogLeaf.commitment)
        .join(LogLeaf, LogLeaf.seq == Event.seq)
        .where(Event.listing_id == listing_id)
        .order_by(Event.seq)
    ).all()
    return [
        {
            "seq": row.seq,
            "type": row.type,
            "listing_version": row.listing_version,
            "leaf_index": row.leaf_index,
            "commitment": b64(bytes(row.commitment)),
            "checkpoint": checkpoint_for_seq(conn, row.seq),
        }
        for row in rows
    ]


def leaves_with_events(conn: Connection, batch: int = 10_000) -> Iterable[Row[Any]]:
    """Every leaf with its event and salt (none once erased), in leaf order, streamed."""
    query = (
        select(
            LogLeaf.leaf_index,
            LogLeaf.commitment,
            LogLeaf.leaf_hash,
            LogSalt.salt,
            *EVENT_COLUMNS,
        )
        .join(Event, Event.seq == LogLeaf.seq, isouter=True)
        .join(LogSalt, LogSalt.seq == LogLeaf.seq, isouter=True)
        .order_by(LogLeaf.leaf_index)
        .execution_options(yield_per=batch)
    )
    yield from conn.execute(query)

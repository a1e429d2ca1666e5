"""What the public transparency log answers: signed checkpoints and RFC 6962 proofs.
Hashes and signatures are base64."""

from __future__ import annotations

import msgspec


class CheckpointRead(msgspec.Struct, kw_only=True, omit_defaults=True):
    tree_size: int
    root_hash: str
    timestamp: str
    key_id: str
    signature: str
    body: str  # the checkpoint's signed note body (C2SP tlog-checkpoint)
    # The same as a C2SP signed note, and its verifier key; absent if the key is not held.
    note: str | None = None
    verifier_key: str | None = None


class CheckpointList(msgspec.Struct):
    checkpoints: list[CheckpointRead]


class InclusionProof(msgspec.Struct, kw_only=True):
    seq: int
    leaf_index: int
    tree_size: int
    commitment: str
    leaf_hash: str
    audit_path: list[str]
    checkpoint: CheckpointRead


class ConsistencyProof(msgspec.Struct, kw_only=True):
    first: int
    second: int
    first_root_hash: str
    second_root_hash: str
    proof: list[str]


class LeafCheckpoint(msgspec.Struct, kw_only=True):
    """Where an event sits: its leaf, and the first signed checkpoint that covers it."""

    seq: int
    leaf_index: int
    leaf_hash: str
    tree_size: int
    root_hash: str
    checkpoint_time: str
    key_id: str


class LogEntry(msgspec.Struct, kw_only=True):
    seq: int
    type: str
    listing_version: int | None
    leaf_index: int
    commitment: str
    checkpoint: LeafCheckpoint | None  # null until a signed checkpoint covers the leaf


class ListingLog(msgspec.Struct):
    listing_id: str
    entries: list[LogEntry]

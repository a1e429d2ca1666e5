"""Tables of the transparency log: leaves, their salts, precomputed nodes, signed checkpoints."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base
from registry.timeutil import UtcDateTime

# INTEGER on SQLite makes the key the rowid itself, as for events.seq.
_KEY = BigInteger().with_variant(Integer, "sqlite")


class LogLeaf(Base):
    """One listing event as a leaf: leaf_hash = SHA-256(0x00 || commitment)."""

    __tablename__ = "translog_leaves"

    leaf_index: Mapped[int] = mapped_column(_KEY, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    commitment: Mapped[bytes] = mapped_column(LargeBinary(32))
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogSalt(Base):
    """The random salt of one commitment, kept apart: deleting it (erasure) leaves the
    commitment, and so every proof, intact while the content can no longer be confirmed."""

    __tablename__ = "translog_salts"

    seq: Mapped[int] = mapped_column(_KEY, primary_key=True, autoincrement=False)
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogNode(Base):
    """MTH of the perfect subtree `node_index` at `level` (2**level leaves), for every
    NODE_STRIDE-th level: a proof folds at most 2**(NODE_STRIDE-1) stored hashes per node."""

    __tablename__ = "translog_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    node_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogCheckpoint(Base):
    """A signed tree head: `body` is the exact signed note text (C2SP tlog-checkpoint)."""

    __tablename__ = "translog_checkpoints"

    tree_size: Mapped[int] = mapped_column(_KEY, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    key_id: Mapped[str] = mapped_column(String(32))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    body: Mapped[str] = mapped_column(Text)

"""Checkpoints as C2SP signed notes (tlog-checkpoint + signed-note), so that a stranger can
check them with an off-the-shelf note verifier or with any Ed25519 library.

The body is `origin\\nsize\\nbase64(root)\\n` plus one extension line `time <ISO 8601>`;
the signature is Ed25519 over the body bytes. The signature line carries the note key
hash: the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime

from registry.timeutil import iso

ED25519_ALG = b"\x01"
SIGNATURE_DASH = "\u2014"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def checkpoint_body(origin: str, size: int, root: bytes, at: datetime) -> str:
    return f"{origin}\n{size}\n{b64(root)}\ntime {iso(at)}\n"


def key_hash(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519_ALG + public_key).digest()[:4]


def verifier_key(name: str, public_key: bytes) -> str:
    """The `name+hash+key` form note verifiers (golang.org/x/mod/sumdb/note) accept."""
    return f"{name}+{key_hash(name, public_key).hex()}+{b64(ED25519_ALG + public_key)}"


def signed_note(body: str, name: str, public_key: bytes, signature: bytes) -> str:
    return f"{body}\n{SIGNATURE_DASH} {name} {b64(key_hash(name, public_key) + signature)}\n"


@dataclass(frozen=True)
class CheckpointBody:
    origin: str
    size: int
    root: bytes
    time: str


def parse_body(body: str) -> CheckpointBody:
    """Raises ValueError when the body is not a checkpoint of this registry's form."""
    lines = body.split("\n")
    if len(lines) != 5 or lines[4] != "" or not lines[3].startswith("time "):
        raise ValueError("not a checkpoint body")
    root = base64.b64decode(lines[2], validate=True)
    if len(root) != 32 or not (lines[1].isascii() and lines[1].isdigit()):
        raise ValueError("bad tree size or root hash")
    return CheckpointBody(lines[0], int(lines[1]), root, lines[3].removeprefix("time "))

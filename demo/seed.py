"""Demo courts with their own signing keys, and signed demo listings.

The demo courts' private keys are kept in `var/demo-keys.json` (0600, never committed)
so that a later `registry demo` signs with the same keys.
"""

from __future__ import annotations

import json
import os
import random
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from demo.data import DemoCourt, DemoGenerator, demo_courts
from registry.identity.signing import sign_envelope

SignerMap = dict[str, tuple[str, bytes]]  # court code -> (key id, raw private key)


def load_signers(path: Path) -> SignerMap:
    if not path.exists():
        return {}
    stored = json.loads(path.read_text())
    return {code: (entry["key_id"], bytes.fromhex(entry["private_key"])) for code, entry in stored.items()}


def save_signers(path: Path, signers: SignerMap) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {code: {"key_id": kid, "private_key": raw.hex()} for code, (kid, raw) in signers.items()}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(body, handle, indent=1, ensure_ascii=False)


def signed_listings(
    courts: list[DemoCourt], signers: SignerMap, count: int, seed: int, today: date
) -> list[dict[str, Any]]:
    generator = DemoGenerator(seed)
    keys = {code: (kid, Ed25519PrivateKey.from_private_bytes(raw)) for code, (kid, raw) in signers.items()}
    pick = random.Random(seed ^ 0x5EED)
    out = []
    for _ in range(count):
        court = pick.choice(courts)
        key_id, private = keys[court.code]
        out.append(sign_envelope("listing", generator.listing(court, today), private, key_id))
    return out


def _write_slice(args: tuple[str, SignerMap, int, int, str]) -> int:
    path, signers, count, seed, today = args
    courts = [c for c in demo_courts() if c.code in signers]
    with open(path, "w", encoding="utf-8") as handle:
        for envelope in signed_listings(courts, signers, count, seed, date.fromisoformat(today)):
            handle.write(json.dumps(envelope, ensure_ascii=False, separators=(",", ":")) + "\n")
    return count


def write_envelope_file(
    path: Path, signers: SignerMap, count: int, seed: int, today: date, workers: int
) -> None:
    """Write `count` signed envelopes as JSON lines, generated in parallel slices."""
    per = -(-count // workers)
    parts = [
        (f"{path}.part{w}", signers, min(per, count - w * per), seed * 1000 + w, today.isoformat())
        for w in range(workers)
        if count - w * per > 0
    ]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_write_slice, parts))
    with open(path, "wb") as out:
        for part, *_ in parts:
            with open(part, "rb") as handle:
                while block := handle.read(1 << 20):
                    out.write(block)
            os.unlink(part)

"""`registry demo`: demo courts, their keys, and signed listings, through the real ingest path."""

from __future__ import annotations

from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from demo.data import demo_courts
from demo.seed import load_signers, save_signers, signed_listings
from registry.calendar import china_date
from registry.clients.services import Principal
from registry.courts.models import Court, CourtKey
from registry.courts.services import add_court, add_key
from registry.identity.signing import private_bytes, public_bytes
from registry.runtime import Services
from registry.timeutil import utcnow

DEMO_ACTOR = "operator:demo"
CHUNK = 5000
OPERATOR = Principal(client_id="demo", role="admin", court_code=None)


async def load_demo(services: Services, count: int, seed: int) -> dict[str, Any]:
    signers_path = services.settings.keys.secrets_file.parent / "demo-keys.json"
    signers = load_signers(signers_path)
    courts = demo_courts()
    now = utcnow()
    async with services.db.writer.begin() as conn:
        existing = set((await conn.execute(select(Court.code))).scalars())
        registered = set((await conn.execute(select(CourtKey.key_id))).scalars())
        for court in courts:
            if court.code not in existing:
                await conn.run_sync(
                    add_court, court.code, court.name, court.province_code, actor=DEMO_ACTOR, now=now
                )
            if court.code not in signers:
                signers[court.code] = ("", private_bytes(Ed25519PrivateKey.generate()))
            key_id, raw = signers[court.code]
            if key_id not in registered:
                # Same private key, new database: register its public half here too.
                public = public_bytes(Ed25519PrivateKey.from_private_bytes(raw))
                key_id = await conn.run_sync(
                    add_key, court.code, public, valid_from=now, valid_until=None, actor=DEMO_ACTOR, now=now
                )
                signers[court.code] = (key_id, raw)
    save_signers(signers_path, signers)

    today = china_date(now)
    outcomes: dict[str, int] = {"created": 0, "unchanged": 0, "rejected": 0}
    for start in range(0, count, CHUNK):
        envelopes = signed_listings(courts, signers, min(CHUNK, count - start), seed * 7919 + start, today)
        raws = [msgspec.json.encode(envelope) for envelope in envelopes]
        results = await services.ingest.publish(raws, OPERATOR, actor=DEMO_ACTOR)
        for result in results:
            outcomes[result.outcome] += 1
    return {"courts": len(courts), "listings": outcomes}

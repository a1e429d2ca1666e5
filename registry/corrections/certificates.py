"""Removal certificates: proof, for the person, that a listing left the list (removed by its
court or expired), which any bank or employer can check.

A certificate is a JWT (RFC 7519) in compact JWS form signed EdDSA/Ed25519 with the
registry's own key, the one `/.well-known/jwks.json` publishes, so it verifies offline with
any JOSE library, or at `POST /v1/public/certificates/verify`. It names only the removal
(court, case number, listed and removed dates, reason) and the person it was issued to: the
name, and the identifier as a commitment, HMAC-SHA256 keyed with a fresh 256-bit nonce (the
bank receipts' commitment, registry/checks/receipts.py). The nonce goes to the applicant
beside the certificate, never inside it: whoever holds the certificate alone (printed, its QR
code, its verification URL) cannot test a guessed number against it, while a verifier given
the number and the nonce by the holder confirms the certificate is theirs. Verifying one looks
nothing up.

Version 1 certificates (no `v` claim, before 2026-12) carried the HMAC's key (`subject_salt`)
inside the token, which let anyone recover the number from its public mask by guessing; they
still verify, and a number alone is matched against them.

Issued to whoever names the listing with the full identifier, of whichever type the listing
was made under (the blind index, as for an application); a wrong identifier is refused as an
unknown listing. The committed identifier is the normalised number: for a passport or a
foreign registration `COUNTRY:NUMBER` (`registry.identity.types.Identity.number`), so that
the same number of another country does not match.
"""

from __future__ import annotations

import binascii
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import msgspec
from jwcrypto import jwk, jws
from jwcrypto.common import JWException
from sqlalchemy import Connection, select

from registry.checks.receipts import (
    ALGORITHM,
    NONCE_BYTES,
    b64url,
    b64url_decode,
    new_nonce,
    subject_commitment,
)
from registry.corrections.services import _find_listing, names_identity, parse_identity
from registry.courts.models import Court
from registry.eventlog.services import EventDraft, append_events
from registry.eventlog.types import EventType
from registry.identity.crypto import BlindIndex, Secrets
from registry.identity.registry_key import RegistrySigner
from registry.ids import new_id
from registry.listings.models import Removal
from registry.listings.wording import REMOVAL_REASONS
from registry.problems import Problem
from registry.runtime import Services

CERTIFICATE_TYPE = "removal-certificate"
ISSUER = "defaulter-registry"
CERTIFICATE_VERSION = 2


def certificate_claims(
    conn: Connection, listing_ref: Any, applicant: Any, secrets_: Secrets, *, now: datetime
) -> tuple[dict[str, Any], str]:
    """The claims of a certificate for the listing the person names with their identifier, and
    the base64url nonce of its subject commitment (for the applicant, never in the certificate)."""
    listing = _find_listing(conn, listing_ref, applicant, secrets_, base="")
    if listing.status == "active":
        raise Problem(
            409,
            "listing_still_published",
            "this listing is still published: a certificate is issued once it is removed or expires",
        )
    removal = conn.execute(select(Removal).where(Removal.listing_id == listing.id)).one()
    court_name = conn.execute(select(Court.name).where(Court.code == listing.court_code)).scalar_one()
    parsed = parse_identity(applicant, secrets_.blind_index, base="")
    nonce = new_nonce()
    jti = new_id()
    claims = {
        "iss": ISSUER,
        "typ": CERTIFICATE_TYPE,
        "v": CERTIFICATE_VERSION,
        "jti": jti,
        "iat": int(now.timestamp()),
        "listing_id": listing.id,
        "court_code": listing.court_code,
        "court_name": court_name,
        "case_number": listing.case_number,
        "name": listing.debtor_name,
        "subject_kind": listing.debtor_kind,
        "subject_commitment": subject_commitment(nonce, parsed.kind, parsed.identifier, None),
        "listed_on": listing.listed_on.isoformat(),
        "removed_on": removal.effective_on.isoformat(),
        "reason": removal.reason,
        "reason_text": REMOVAL_REASONS.get(removal.reason, removal.reason),
    }
    append_events(
        conn,
        [
            EventDraft(
                EventType.CERTIFICATE_ISSUED,
                "public",
                court_code=listing.court_code,
                listing_id=listing.id,
                data={"certificate_id": jti},
            )
        ],
        now,
    )
    return claims, b64url(nonce)


def holder_subject(
    holder: Any, nonce: str | None, blind_index: BlindIndex
) -> tuple[str, str, bytes | None] | None:
    """The identifier a verifier was given (the fields of `VerifyIn`, any type a listing is
    made under), normalised as at issue: (kind, identifier, nonce), or None when none is
    asked about."""
    if not names_identity(holder):
        if nonce is not None:
            raise Problem(422, "invalid_field", "a nonce goes with the holder's identifier", pointer="/nonce")
        return None
    parsed = parse_identity(holder, blind_index, base="")
    raw = None
    if nonce is not None:
        try:
            raw = b64url_decode(nonce)
        except (ValueError, binascii.Error):
            raw = b""
        if len(raw) != NONCE_BYTES:
            raise Problem(
                422, "invalid_field", f"the nonce is {NONCE_BYTES} bytes in base64url", pointer="/nonce"
            )
    return parsed.kind, parsed.identifier, raw


def subject_matches(claims: dict[str, Any], kind: str, identifier: str, nonce: bytes | None) -> bool:
    """Whether the certificate was issued to the holder of `identifier` (normalised)."""
    if claims.get("v") == CERTIFICATE_VERSION:
        if nonce is None:
            return False
        key, field = nonce, "subject_commitment"
    else:
        # Version 1: the key travelled in the token (the weakness version 2 removes).
        try:
            key = b64url_decode(str(claims.get("subject_salt", "")))
        except (ValueError, binascii.Error):
            return False
        field = "subject_digest"
    expected = subject_commitment(key, kind, identifier, None)
    return hmac.compare_digest(expected, str(claims.get(field, "")))


class CertificateSigner:
    """Signs with the registry's active key; verifies against every key it holds."""

    def __init__(self, signer: RegistrySigner) -> None:
        self._signer = signer
        self._keys: dict[str, jwk.JWK] = {}

    def _key(self, kid: str, *, private: bool) -> jwk.JWK | None:
        cache = kid if private else "pub:" + kid
        key = self._keys.get(cache)
        if key is None:
            secret = self._signer.keys.get(kid)
            if secret is None:
                return None
            key = jwk.JWK.from_pyca(secret if private else secret.public_key())
            self._keys[cache] = key
        return key

    def sign(self, claims: dict[str, Any]) -> str:
        kid = self._signer.key_id
        key = self._key(kid, private=True)
        assert key is not None  # the active key is always held
        header = json.dumps({"alg": ALGORITHM, "kid": kid, "typ": "JWT"})
        signed = jws.JWSCore(ALGORITHM, key, header, msgspec.json.encode(claims)).sign()
        return f"{signed['protected']}.{signed['payload'].decode()}.{signed['signature']}"

    def verify(self, token: str) -> dict[str, Any]:
        """A verdict: `genuine` and the claims, or why not. Never raises on bad input."""
        token = token.strip()
        parts = token.split(".")
        if len(parts) != 3 or not all(parts):
            return _verdict(False, "malformed", "a certificate is three base64url parts joined by dots")
        try:
            header = json.loads(b64url_decode(parts[0]))
            b64url_decode(parts[1])
            signature = b64url_decode(parts[2])
        except (ValueError, binascii.Error, RecursionError):
            return _verdict(False, "malformed", "a part is not base64url, or the header is not JSON")
        if not isinstance(header, dict) or header.get("alg") != ALGORITHM:
            return _verdict(False, "unsupported_algorithm", f"certificates are signed {ALGORITHM}")
        kid = header.get("kid")
        key = self._key(kid, private=False) if isinstance(kid, str) else None
        if key is None:
            return _verdict(False, "unknown_kid", "no registry key has this id (see /.well-known/jwks.json)")
        if len(signature) != 64:
            return _verdict(False, "altered", "an Ed25519 signature is 64 bytes")
        parsed = jws.JWS()
        try:
            parsed.deserialize(token)
            parsed.verify(key, alg=ALGORITHM)
        except JWException:
            return _verdict(False, "altered", "the signature does not match: altered or forged")
        try:
            claims = json.loads(parsed.payload)
        except ValueError:
            claims = None
        if not isinstance(claims, dict) or claims.get("typ") != CERTIFICATE_TYPE:
            return _verdict(
                False, "not_a_certificate", "signed by the registry, but not a removal certificate"
            )
        return _verdict(True, "genuine", "issued by the registry and unaltered", claims)


def _verdict(genuine: bool, reason: str, detail: str, claims: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"genuine": genuine, "reason": reason, "detail": detail}
    if claims is not None:
        body["claims"] = claims
    return body


SIGNER = "certificate_signer"


@asynccontextmanager
async def signer_resource(services: Services) -> AsyncIterator[None]:
    """One signer a process, keeping its jwcrypto key objects."""
    services.extensions[SIGNER] = CertificateSigner(services.signer)
    yield

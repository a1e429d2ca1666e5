"""An RFC 9421 verifier written from the RFC text for the tests, independent of the
`http-message-signatures` library the registry signs with (and RFC 9530 Content-Digest).

Only what the registry's signatures use: one signature label, derived components
@method, @target-uri and @status, plain header fields, Ed25519 (`alg="ed25519"`).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

# RFC 8941 dictionary member: label=(inner list);params  /  label=:base64:
_INPUT = re.compile(r"^(?P<label>[a-z*][a-z0-9_\-.*]*)=(?P<value>\((?P<items>[^)]*)\)(?P<params>.*))$")
_SIGNATURE = re.compile(r"^(?P<label>[a-z*][a-z0-9_\-.*]*)=:(?P<b64>[A-Za-z0-9+/=]+):$")
_PARAM = re.compile(r';([a-z][a-z0-9_\-.*]*)=("(?:[^"\\]|\\.)*"|-?\d+)')


@dataclass
class Verified:
    label: str
    components: list[str]
    params: dict[str, str | int]


class VerificationError(Exception):
    pass


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_from_jwks(jwks: dict[str, object], key_id: str) -> Ed25519PublicKey:
    for key in jwks["keys"]:  # type: ignore[attr-defined]
        if key["kid"] == key_id and key["kty"] == "OKP" and key["crv"] == "Ed25519":
            return Ed25519PublicKey.from_public_bytes(_b64url(key["x"]))
    raise VerificationError(f"no Ed25519 key {key_id} in the JWK Set")


def verify_content_digest(headers: dict[str, str], body: bytes) -> None:
    """RFC 9530: Content-Digest: sha-256=:<base64 of SHA-256 of the content>:"""
    value = headers.get("content-digest", "")
    match = re.fullmatch(r"sha-256=:([A-Za-z0-9+/=]+):", value.strip())
    if match is None or base64.b64decode(match.group(1)) != hashlib.sha256(body).digest():
        raise VerificationError("Content-Digest does not match the body")


def verify(
    headers: dict[str, str],
    body: bytes,
    jwks: dict[str, object],
    *,
    method: str | None = None,
    target_uri: str | None = None,
    status: int | None = None,
    tag: str | None = None,
) -> Verified:
    """`headers` with lower-case names. Raises VerificationError; returns what was covered."""
    headers = {k.lower(): v for k, v in headers.items()}
    input_match = _INPUT.match(headers.get("signature-input", ""))
    signature_match = _SIGNATURE.match(headers.get("signature", ""))
    if input_match is None or signature_match is None:
        raise VerificationError("missing or unparsable Signature-Input / Signature")
    if input_match["label"] != signature_match["label"]:
        raise VerificationError("labels differ")
    components = re.findall(r'"([^"]+)"', input_match["items"])
    params: dict[str, str | int] = {}
    for name, raw in _PARAM.findall(input_match["params"]):
        params[name] = raw[1:-1] if raw.startswith('"') else int(raw)
    if params.get("alg") != "ed25519":
        raise VerificationError("alg is not ed25519")
    if tag is not None and params.get("tag") != tag:
        raise VerificationError(f"the signature's tag is not {tag}")
    lines = []
    for component in components:
        # RFC 9421 section 2.2: derived components; section 2.1: fields, values trimmed.
        if component == "@method":
            value = method
        elif component == "@target-uri":
            value = target_uri
        elif component == "@status":
            value = None if status is None else str(status)
        elif component.startswith("@"):
            raise VerificationError(f"unsupported component {component}")
        else:
            value = headers.get(component)
            value = None if value is None else value.strip()
        if value is None:
            raise VerificationError(f"covered component {component} is absent")
        lines.append(f'"{component}": {value}')
    # Section 2.5: the last line is @signature-params, serialised exactly as in Signature-Input.
    lines.append(f'"@signature-params": {input_match["value"]}')
    base = "\n".join(lines).encode("ascii")
    key = public_key_from_jwks(jwks, str(params.get("keyid")))
    try:
        key.verify(base64.b64decode(signature_match["b64"]), base)
    except Exception as exc:
        raise VerificationError("signature does not verify") from exc
    if "content-digest" in components:
        verify_content_digest(headers, body)
    return Verified(input_match["label"], components, params)

"""RFC 9421 HTTP Message Signatures with the registry's Ed25519 key, over an RFC 9530
Content-Digest of the body, through `http-message-signatures` (pyauth).

A receiver verifies with any RFC 9421 implementation: the key is the JWK with the
`keyid` of the signature at `/.well-known/jwks.json`, the algorithm `ed25519`, and the
signature's `tag` is `defaulter-registry-push` on a push, `defaulter-registry-response` on a
pull answer (domain separation: check it, and nothing else the registry signs passes).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from http_message_signatures import HTTPMessageSigner, algorithms

from registry.identity.registry_key import HTTP_TAGS, Domain, RegistrySigner
from registry.timeutil import utcnow

SIGNATURE_LABEL = "registry"
REQUEST_COMPONENTS = ("@method", "@target-uri", "content-type", "content-digest", "idempotency-key")
RESPONSE_COMPONENTS = ("@status", "content-type", "content-digest")


@dataclass
class Message:
    """The shape the library reads: a request (method, url) or, with `status_code`, a response."""

    headers: dict[str, str]
    method: str | None = None
    url: str | None = None


@dataclass
class ResponseMessage:
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)


_SIGNER = HTTPMessageSigner(signature_algorithm=algorithms.ED25519)


def _sign(
    message: Message | ResponseMessage,
    body: bytes,
    signer: RegistrySigner,
    components: Sequence[str],
    domain: Domain,
) -> None:
    # prepare/apply keeps the private key inside RegistrySigner: the library only builds
    # the signature base and writes Signature-Input, Signature and Content-Digest.
    prepared = _SIGNER.prepare(
        message,
        key_id=signer.key_id,
        created=utcnow(),
        nonce=secrets.token_urlsafe(16),
        label=SIGNATURE_LABEL,
        # The domain's tag is signed (RFC 9421 section 2.3): a receiver that expects it
        # accepts nothing the registry signed for another purpose.
        tag=HTTP_TAGS[domain],
        covered_component_ids=components,
        body=body,
    )
    _SIGNER.apply(message, prepared, signer.sign(domain, prepared.signature_base))


def signed_request_headers(
    signer: RegistrySigner,
    url: str,
    body: bytes,
    idempotency_key: str,
    content_type: str = "application/json",
) -> dict[str, str]:
    """Headers for a POST of `body` to `url`: Content-Type, Idempotency-Key, Content-Digest,
    Signature-Input and Signature."""
    message = Message(
        headers={"Content-Type": content_type, "Idempotency-Key": idempotency_key}, method="POST", url=url
    )
    _sign(message, body, signer, REQUEST_COMPONENTS, Domain.HTTP_PUSH)
    return message.headers


def signed_response_headers(
    signer: RegistrySigner, status: int, body: bytes, content_type: str
) -> dict[str, str]:
    message = ResponseMessage(status, {"Content-Type": content_type})
    _sign(message, body, signer, RESPONSE_COMPONENTS, Domain.HTTP_RESPONSE)
    return message.headers

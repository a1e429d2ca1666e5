"""Domain-separated registry signatures (issue 15 #14): what the registry signs as one thing
(an export manifest, a checkpoint, a receipt, a push) never verifies as another, even when
the bytes were chosen to look like the other."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.checks.receipts import HEADER_TYPE, ReceiptSigner
from registry.identity.registry_key import Domain, RegistrySigner, WrongDomain, registry_key_id
from registry.translog.note import checkpoint_body
from registry.translog.verify import VerifyReport, _check_signature


def _signer() -> RegistrySigner:
    private = Ed25519PrivateKey.generate()
    kid = registry_key_id(private.public_key().public_bytes_raw())
    return RegistrySigner({kid: private}, kid)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


ROOT = bytes(range(32))
BODY = checkpoint_body("registry.example/log", 7, ROOT, datetime(2026, 12, 6, tzinfo=UTC))


def test_a_manifest_signature_never_verifies_as_a_checkpoint() -> None:
    signer = _signer()
    # Someone gets the registry to sign, as a manifest, bytes shaped like a checkpoint.
    signature = signer.sign(Domain.EXPORT_MANIFEST, BODY.encode())
    assert not signer.verify(Domain.CHECKPOINT, signer.key_id, signature, BODY.encode())
    # Nor with an outsider's checker (`registry log verify --url`, any note verifier):
    # a checkpoint signature is plain Ed25519 over the note body.
    report = VerifyReport()
    keys = {signer.key_id: signer.keys[signer.key_id].public_key()}
    _check_signature(report, keys, signer.key_id, signature, BODY, 7, ROOT)
    assert report.problems == ["checkpoint 7: bad signature"]
    # A real checkpoint signature passes the same checker.
    report = VerifyReport()
    _check_signature(
        report, keys, signer.key_id, signer.sign(Domain.CHECKPOINT, BODY.encode()), BODY, 7, ROOT
    )
    assert report.ok


def test_a_manifest_signature_never_verifies_as_a_receipt() -> None:
    signer = _signer()
    header = _b64url(json.dumps({"alg": "EdDSA", "kid": signer.key_id, "typ": HEADER_TYPE}).encode())
    payload = _b64url(json.dumps({"typ": "check-receipt", "v": 2, "subjects": []}).encode())
    signing_input = f"{header}.{payload}"
    forged = f"{signing_input}.{_b64url(signer.sign(Domain.EXPORT_MANIFEST, signing_input.encode()))}"
    verdict = ReceiptSigner(signer).verify(forged)
    assert not verdict.genuine and verdict.reason == "altered"
    # The same claims signed as a receipt are genuine.
    genuine = ReceiptSigner(signer).sign({"typ": "check-receipt", "v": 2, "subjects": []})
    assert ReceiptSigner(signer).verify(genuine).genuine


def test_a_checkpoint_or_receipt_signature_never_verifies_as_a_manifest() -> None:
    signer = _signer()
    checkpoint_signature = signer.sign(Domain.CHECKPOINT, BODY.encode())
    assert not signer.verify(Domain.EXPORT_MANIFEST, signer.key_id, checkpoint_signature, BODY.encode())
    receipt = ReceiptSigner(signer).sign({"typ": "check-receipt"})
    signing_input, _, signature = receipt.rpartition(".")
    raw = base64.urlsafe_b64decode(signature + "==")
    assert not signer.verify(Domain.EXPORT_MANIFEST, signer.key_id, raw, signing_input.encode())
    public = signer.keys[signer.key_id].public_key()
    with pytest.raises(InvalidSignature):
        public.verify(raw, b"registry-signature:export-manifest:v1\n" + signing_input.encode())


def test_the_signer_refuses_a_message_outside_its_domain() -> None:
    signer = _signer()
    header = _b64url(json.dumps({"alg": "EdDSA", "typ": HEADER_TYPE}).encode())
    jws_input = f"{header}.e30".encode()
    untyped = f"{_b64url(b'{}')}.e30".encode()
    http_base = b'"@method": POST\n"@signature-params": ("@method");created=1;tag="defaulter-registry-push"'
    refused = [
        (Domain.RECEIPT, BODY.encode()),
        (Domain.RECEIPT, untyped),  # a JWS without the receipt type
        (Domain.CHECKPOINT, jws_input),
        (Domain.CHECKPOINT, b"registry-signature:export-manifest:v1\n" + BODY.encode()),
        (Domain.CHECKPOINT, BODY.replace("7", "7\x00").encode()),
        (Domain.HTTP_PUSH, BODY.encode()),
        (Domain.HTTP_RESPONSE, http_base),  # the push tag is not the response tag
        (Domain.HTTP_PUSH, http_base.replace(b'tag="defaulter-registry-push"', b'tag="other"')),
    ]
    for domain, message in refused:
        with pytest.raises(WrongDomain):
            signer.sign(domain, message)
    for domain, message in [
        (Domain.RECEIPT, jws_input),
        (Domain.CHECKPOINT, BODY.encode()),
        (Domain.HTTP_PUSH, http_base),
    ]:
        signature = signer.sign(domain, message)
        assert signer.verify(domain, signer.key_id, signature, message)
        others = [other for other in Domain if other is not domain]
        assert not any(signer.verify(other, signer.key_id, signature, message) for other in others)


def test_the_signer_gives_the_signature_openssl_gives() -> None:
    """The registry signs with libsodium; Ed25519 is deterministic, so each signature is the
    one `cryptography` (OpenSSL) makes with the same key over the same bytes, and verifies
    under the published key. Also after a key rotation: each key signs with itself."""
    signer = _signer()
    header = _b64url(json.dumps({"alg": "EdDSA", "typ": HEADER_TYPE}).encode())
    for payload in (b"{}", b'{"a":1}', bytes(range(32, 127)) * 20):
        message = f"{header}.{_b64url(payload)}".encode()
        signature = signer.sign(Domain.RECEIPT, message)
        assert signature == signer.keys[signer.key_id].sign(message)
        signer.keys[signer.key_id].public_key().verify(signature, message)
    rotated = Ed25519PrivateKey.generate()
    new_kid = registry_key_id(rotated.public_key().public_bytes_raw())
    both = RegistrySigner({**signer.keys, new_kid: rotated}, new_kid)
    both.sign(Domain.CHECKPOINT, BODY.encode())
    old = RegistrySigner(both.keys, signer.key_id)
    assert old.sign(Domain.CHECKPOINT, BODY.encode()) == signer.keys[signer.key_id].sign(BODY.encode())
    assert both.sign(Domain.CHECKPOINT, BODY.encode()) == rotated.sign(BODY.encode())

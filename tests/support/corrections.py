"""The correction procedure's steps over HTTP: the applicant's and the courts'."""

from __future__ import annotations

import base64
from datetime import date
from typing import Any

import httpx

from tests.support.harness import CourtHandle, Registry
from tests.support.listings import amended_body, organization_named, person_named

# The smallest files of each type the registry accepts (it checks the first bytes).
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(32)
STATEMENT = "本人已于判决生效后全部履行付款义务。\n请求撤销失信名单。"
CONTACT = "13800000000"


def application(
    listing_id: str, body: dict[str, Any], ground: str = "should_be_deleted", **overrides: Any
) -> dict[str, Any]:
    """An application by the listed person of `body` (the listing as the court signed it)."""
    debtor = body["debtor"]
    applicant: dict[str, Any] = {"name": debtor["name"], **identifier_of(debtor)}
    if debtor["kind"] == "organization":
        applicant["role"] = "representative"
    return {
        "listing": {"id": listing_id},
        "applicant": applicant,
        "ground": ground,
        "statement": STATEMENT,
        "contact": CONTACT,
        "attachments": [
            {"filename": "付款凭证.pdf", "media_type": "application/pdf", "content_base64": b64(PDF)}
        ],
    } | overrides


def identifier_of(debtor: dict[str, Any]) -> dict[str, Any]:
    """The listed party's identifier as an applicant gives it: the listing's own fields (a
    person's `id_number` with its `id_type` and `nationality`; an organisation's `credit_code`,
    `organization_code` or `registration`)."""
    fields = ("id_number", "id_type", "nationality", "credit_code", "organization_code", "registration")
    return {name: debtor[name] for name in fields if name in debtor}


# Listed under a document that is neither a resident ID nor a credit code: the debtor's
# identifier, and another of the same type (not theirs: for a passport the same number of
# another country).
IDENTITIES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "passport": (
        {"id_type": "passport", "id_number": "E1234567", "nationality": "CAN"},
        {"id_type": "passport", "id_number": "E1234567", "nationality": "USA"},
    ),
    "hk_macao_travel_permit": (
        {"id_type": "hk_macao_travel_permit", "id_number": "H12345678"},
        {"id_type": "hk_macao_travel_permit", "id_number": "H87654321"},
    ),
    "organization_code": ({"organization_code": "60003734-1"}, {"organization_code": "12345678-8"}),
    "registration": (
        {"registration": {"country": "GBR", "number": "SC123456"}},
        {"registration": {"country": "GBR", "number": "SC654321"}},
    ),
}


def listed_as(registry: Registry, court: CourtHandle, name: str, identity: dict[str, Any]) -> dict[str, Any]:
    """A valid listing of `name` under `identity` (one of IDENTITIES' values)."""
    if "id_number" in identity:
        body = person_named(registry, court, name)
        body["debtor"] = {"kind": "person", "name": name, **identity}
    else:
        body = organization_named(registry, court, name)
        representative = body["debtor"]["legal_representative"]
        body["debtor"] = {
            "kind": "organization",
            "name": name,
            "legal_representative": representative,
            **identity,
        }
    return body


def form_identifier(identity: dict[str, Any]) -> dict[str, str]:
    """`identity` as the web forms take it: the document type, the number, the country."""
    if "id_number" in identity:
        return {
            "id_kind": identity.get("id_type", "resident_id"),
            "number": identity["id_number"],
            "country": identity.get("nationality", ""),
        }
    [(kind, value)] = identity.items()
    if kind == "registration":
        return {"id_kind": kind, "number": value["number"], "country": value["country"]}
    return {"id_kind": kind, "number": value, "country": ""}


def committed(identity: dict[str, Any]) -> tuple[str, str]:
    """The (kind, number) a certificate commits to, as docs/corrections.md writes them: the
    number normalised, a passport's or registration's as COUNTRY:NUMBER."""
    if "id_number" in identity:
        number = identity["id_number"]
        if "nationality" in identity:
            number = f"{identity['nationality']}:{number}"
        return "person", number
    [(kind, value)] = identity.items()
    if kind == "registration":
        return "organization", f"{value['country']}:{value['number']}"
    return "organization", str(value).replace("-", "")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def apply(registry: Registry, body: dict[str, Any]) -> httpx.Response:
    with registry.http() as http:
        return http.post("/v1/public/corrections", json=body)


def status(registry: Registry, number: str, code: str) -> httpx.Response:
    with registry.http() as http:
        return http.post(
            "/v1/public/corrections/status", json={"application_number": number, "tracking_code": code}
        )


def decision(
    number: str,
    listing_id: str,
    *,
    stage: str = "review",
    outcome: str = "upheld",
    action: str = "removal",
    decided_on: date,
) -> dict[str, Any]:
    return {
        "application_number": number,
        "listing_id": listing_id,
        "stage": stage,
        "outcome": outcome,
        "action": action,
        "document_number": "（2026）京0105执异88号",
        "decided_on": decided_on.isoformat(),
        "reasons": "经审查，被执行人已全部履行。\n申请理由成立。",
    }


def dismiss(registry: Registry, court: CourtHandle, number: str, listing_id: str) -> None:
    """The listing court dismisses the application at review, today."""
    body = decision(number, listing_id, outcome="dismissed", action="none", decided_on=registry.today)
    answer = post_decision(registry, court, number, body)
    assert answer.status_code == 200, answer.text


def wrongful_removal(listing_id: str, today: date) -> dict[str, Any]:
    return {
        "listing_id": listing_id,
        "reason": "wrongly_listed",
        "effective_on": today.isoformat(),
        "triggered_on": today.isoformat(),
        "basis_document": "（2026）京0105执异88号",
    }


def post_decision(
    registry: Registry,
    court: CourtHandle,
    number: str,
    body: dict[str, Any],
    *,
    removal: dict[str, Any] | None = None,
    amendment: dict[str, Any] | None = None,
    listing_court: CourtHandle | None = None,
    signer: CourtHandle | None = None,
) -> httpx.Response:
    """`body` signed by `signer` (the court), with the listing court's signed removal or
    amendment when given, posted by `court`'s client."""
    envelope = registry.envelope(signer or court, body, "decision")
    signing = listing_court or court
    if removal is not None:
        envelope["removal"] = registry.envelope(signing, removal, "removal")
    if amendment is not None:
        envelope["amendment"] = registry.envelope(signing, amendment, "listing")
    with registry.http(court.api_key) as http:
        return http.post(f"/v1/corrections/{number}/decision", json=envelope)


__all__ = ["amended_body"]

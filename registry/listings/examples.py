"""Worked examples of the signed court envelopes, for the API documentation.

The signatures are genuine, by an example key no court holds (Ed25519, public key
`5_WiMXMKh4hg5ZweKxi6WnR8GEwLT-gGRhnEzXTEmk8`, private key the SHA-256 of
`registry api example`): a court signs with its own registered key, as
`registry.identity.signing.sign_envelope` does.
"""

from __future__ import annotations

from typing import Any

from litestar.openapi.spec import Example

KEY_ID = "ck_9f77bdcdefecb4c6"

LISTING: dict[str, Any] = {
    "listing": {
        "court_code": "京0105",
        "case_number": "（2025）京0105执5141号",
        "filed_on": "2025-02-20",
        "basis": {"document_number": "（2024）京0105民初27494号", "issuer": "北京市朝阳区人民法院"},
        "debtor": {"kind": "person", "name": "张三", "id_number": "11010519491231002X"},
        "obligations": "被执行人应于判决生效之日起十日内向申请执行人支付货款人民币267,319.00元。",
        "amount_cents": 26731900,
        "performance": {"status": "partial", "performed_cents": 11395500, "unperformed_cents": 15336400},
        "grounds": ["able_but_refuses", "breaches_settlement"],
        "term_years": 3,
        "listed_on": "2025-03-29",
        "submission_id": "18f135d2-5f55-4203-b018-50c5a38fd547",
        "decision": {
            "document_number": "（2025）京0105执5141号",
            "decided_on": "2025-03-28",
            "initiated_by": "creditor_application",
        },
        "creditor": {"name": "北京某某建设有限公司", "credit_code": "91110105MA01C9XK1T"},
        # SPC Art. 2: a term over two years is an extension for an aggravating circumstance.
        "extension": {
            "document_number": "（2025）京0105执5141号",
            "decided_on": "2025-03-28",
            "reason": "multiple_dishonest_acts",
        },
    },
    "signature": {
        "key_id": KEY_ID,
        "value": "4fPGC-LPHXvEPEw7HADuckKC5MctDzKDDhhuACXkN2bdNPk-jEgpJr1Mzp-GHvr0HOQaUJGe4er8URJYE2TLDg",
    },
}

REMOVAL: dict[str, Any] = {
    "removal": {
        "listing_id": "01JQ8W3C4X2M5V7B9N0P1R3S5T",
        "reason": "performed",
        "effective_on": "2025-09-01",
        "triggered_on": "2025-08-29",
        "basis_document": "（2025）京0105执5141号之一",
    },
    "signature": {
        "key_id": KEY_ID,
        "value": "pC8EnD0ON2j9p1piVx5dgd3nJdS2_8ymrYVH0Nfenlp7nd1u0mfiMCCiNWW4plh6IsoVXQwXfOkhKkxbVyy3Cg",
    },
}

LISTING_EXAMPLE = Example(
    summary="A person listed for refusing to perform a judgment",
    description="Sign the canonical JSON (RFC 8785) of `listing` with the court's Ed25519 key.",
    value=LISTING,
)
REMOVAL_EXAMPLE = Example(
    summary="Removal after the debtor performed",
    description="Sign the canonical JSON (RFC 8785) of `removal` with the listing court's key.",
    value=REMOVAL,
)
BATCH_EXAMPLE = Example(summary="A batch of one listing", value={"envelopes": [LISTING]})

"""Resent requests of the correction procedure over the real server: an applicant whose answer
was lost, a court whose decision's answer was lost, and the attachments' numbers in the path."""

from __future__ import annotations

import copy
import uuid
from datetime import date
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.support.corrections import (
    PDF,
    application,
    apply,
    decision,
    status,
    wrongful_removal,
)
from tests.support.harness import CourtHandle, Registry
from tests.support.listings import amended_body, person_named, publish_one


def _listed(registry: Registry, court: CourtHandle, name: str = "周杰") -> tuple[str, dict[str, Any]]:
    body = person_named(registry, court, name)
    return publish_one(registry, court, body), body


def _signed(
    registry: Registry, court: CourtHandle, body: dict[str, Any], **carried: dict[str, Any]
) -> dict[str, Any]:
    """A decision envelope signed once, to be sent again byte for byte."""
    envelope = registry.envelope(court, body, "decision")
    for name, part in carried.items():
        envelope[name] = registry.envelope(court, part, "listing" if name == "amendment" else name)
    return envelope


def _post(registry: Registry, court: CourtHandle, number: str, envelope: dict[str, Any]) -> httpx.Response:
    with registry.http(court.api_key) as http:
        return http.post(f"/v1/corrections/{number}/decision", json=envelope)


def _decided_events(registry: Registry) -> int:
    with registry.engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM events WHERE type = 'correction.decided'")
            ).scalar_one()
        )


def test_a_resent_application_is_answered_with_its_number_and_a_new_code(
    registry: Registry, court: CourtHandle
) -> None:
    listing_id, body = _listed(registry, court)
    sent = application(listing_id, body, idempotency_key=str(uuid.uuid4()))
    first = apply(registry, sent)
    assert first.status_code == 201, first.text
    # The answer was lost: the same application again.
    again = apply(registry, sent)
    assert again.status_code == 201, again.text
    number = first.json()["application_number"]
    assert again.json()["application_number"] == number
    assert again.json()["status"] == "under_review"
    assert again.json()["review_due_on"] == first.json()["review_due_on"]
    # Only one application, followed with the new code; the lost one no longer works.
    assert status(registry, number, again.json()["tracking_code"]).status_code == 200
    assert status(registry, number, first.json()["tracking_code"]).status_code == 404
    with registry.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM corrections")).scalar_one() == 1
        assert (
            conn.execute(sa.text("SELECT count(*) FROM events WHERE type = 'correction.filed'")).scalar_one()
            == 1
        )

    # Whoever knows the listing, the identifier and the very words, but not the key, is refused.
    for stranger in (
        {k: v for k, v in sent.items() if k != "idempotency_key"},
        sent | {"idempotency_key": str(uuid.uuid4())},
        sent | {"statement": sent["statement"] + "补充。"},
    ):
        refused = apply(registry, stranger)
        assert (refused.status_code, refused.json()["code"]) == (409, "correction_pending"), refused.text

    # Decided and the listing removed since: a resend still finds its application.
    envelope = _signed(
        registry,
        court,
        decision(number, listing_id, decided_on=registry.today),
        removal=wrongful_removal(listing_id, registry.today),
    )
    assert _post(registry, court, number, envelope).status_code == 200
    late = apply(registry, sent)
    assert late.status_code == 201, late.text
    assert (late.json()["application_number"], late.json()["status"]) == (number, "upheld")
    assert status(registry, number, late.json()["tracking_code"]).json()["listing_status"] == "removed"


def test_an_idempotency_key_is_16_to_64_url_safe_characters(registry: Registry, court: CourtHandle) -> None:
    listing_id, body = _listed(registry, court)
    for key in ("short-key", "\u0661" * 16, "k" * 65, "key with spaces!"):
        refused = apply(registry, application(listing_id, body, idempotency_key=key))
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert (refused.json()["code"], refused.json()["pointer"]) == ("invalid_field", "/idempotency_key")
    accepted = apply(registry, application(listing_id, body, idempotency_key="Az09-_" * 10 + "Zz09"))
    assert accepted.status_code == 201, accepted.text


def test_a_resent_decision_answers_what_it_did(registry: Registry, court: CourtHandle) -> None:
    listing_id, body = _listed(registry, court)
    number = apply(registry, application(listing_id, body, ground="wrongly_listed")).json()[
        "application_number"
    ]
    upheld = decision(number, listing_id, decided_on=registry.today)
    envelope = _signed(registry, court, upheld, removal=wrongful_removal(listing_id, registry.today))
    first = _post(registry, court, number, envelope)
    assert first.status_code == 200, first.text
    # The answer was lost: the very same signed decision again changes nothing and says so.
    again = _post(registry, court, number, envelope)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert _decided_events(registry) == 1
    # Another decision is not a resend.
    dismissed = _signed(
        registry,
        court,
        decision(number, listing_id, outcome="dismissed", action="none", decided_on=registry.today),
    )
    refused = _post(registry, court, number, dismissed)
    assert (refused.status_code, refused.json()["code"]) == (409, "correction_not_open")
    reworded = _signed(
        registry,
        court,
        upheld | {"reasons": "另一份决定。"},
        removal=wrongful_removal(listing_id, registry.today),
    )
    refused = _post(registry, court, number, reworded)
    assert (refused.status_code, refused.json()["code"]) == (409, "correction_not_open")
    # The same decision under a forged signature is not the court's resend either.
    forged = copy.deepcopy(envelope)
    value = forged["signature"]["value"]
    forged["signature"]["value"] = ("B" if value[0] == "A" else "A") + value[1:]
    refused = _post(registry, court, number, forged)
    assert (refused.status_code, refused.json()["code"]) == (409, "correction_not_open")
    assert _decided_events(registry) == 1


def test_a_resent_decision_with_its_amendment_gives_the_version_it_made(
    registry: Registry, court: CourtHandle
) -> None:
    listing_id, body = _listed(registry, court)
    applied = apply(registry, application(listing_id, body, ground="inaccurate_information", attachments=[]))
    number = applied.json()["application_number"]
    envelope = _signed(
        registry,
        court,
        decision(number, listing_id, action="amendment", decided_on=registry.today),
        amendment=amended_body(body),
    )
    first = _post(registry, court, number, envelope)
    assert first.status_code == 200, first.text
    assert first.json()["listing_version"] == 2
    again = _post(registry, court, number, envelope)
    assert (again.status_code, again.json()) == (200, first.json())


def _attachment(registry: Registry, court: CourtHandle, number: str) -> httpx.Response:
    listing_id, body = _listed(registry, court)
    filed = apply(registry, application(listing_id, body)).json()["application_number"]
    with registry.http(court.api_key) as http:
        assert http.get(f"/v1/corrections/{filed}/attachments/01").content == PDF
        return http.get(f"/v1/corrections/{filed}/attachments/{number}")


@pytest.mark.parametrize(
    "number",
    [
        "\u0661",  # Arabic-Indic 1
        "\u0967",  # Devanagari 1
        "\u0e51",  # Thai 1
        "+1",
        " 1",
        "1 ",
        "1_0",
        "-1",
        "-99999999999999999999",
    ],
)
def test_an_attachment_number_is_ascii_digits(registry: Registry, court: CourtHandle, number: str) -> None:
    answer = _attachment(registry, court, number)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "invalid_parameter"


def test_an_attachment_number_out_of_range_is_not_found(registry: Registry, court: CourtHandle) -> None:
    listing_id, body = _listed(registry, court)
    filed = apply(registry, application(listing_id, body)).json()["application_number"]
    with registry.http(court.api_key) as http:
        for number in ("0", "2", "2147483648", "9223372036854775808", "99999999999999999999", "9" * 5000):
            answer = http.get(f"/v1/corrections/{filed}/attachments/{number}")
            assert answer.status_code == 404, (number[:30], answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert answer.json()["code"] == "attachment_not_found"


def _finding(listing_id: str, today: date, action: str, **overrides: str) -> dict[str, Any]:
    return {
        "listing_id": listing_id,
        "ground": "wrongly_listed",
        "found_on": today.isoformat(),
        "action": action,
        "document_number": "（2026）京0105执99号之一",
        "decided_on": today.isoformat(),
        "reasons": "被执行人不符合纳入条件。",
    } | overrides


def _post_finding(registry: Registry, court: CourtHandle, envelope: dict[str, Any]) -> httpx.Response:
    with registry.http(court.api_key) as http:
        return http.post("/v1/corrections/findings", json=envelope)


def _overdue_and_open(registry: Registry, court: CourtHandle) -> list[str]:
    with registry.http(court.api_key) as http:
        return [line["id"] for line in http.get("/v1/corrections").json()["corrections"]]


def test_a_resent_finding_answers_what_it_did(registry: Registry, court: CourtHandle) -> None:
    listing_id, _ = _listed(registry, court)
    envelope = registry.envelope(court, _finding(listing_id, registry.today, "to_follow"), "finding")
    first = _post_finding(registry, court, envelope)
    assert first.status_code == 201, first.text
    # The answer was lost: the very same signed finding is the same finding, recorded once.
    again = _post_finding(registry, court, envelope)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert _overdue_and_open(registry, court) == [first.json()["id"]]
    # Another finding while this one is not carried out is refused, not recorded beside it.
    other = registry.envelope(
        court, _finding(listing_id, registry.today, "to_follow", reasons="另一份决定。"), "finding"
    )
    refused = _post_finding(registry, court, other)
    assert (refused.status_code, refused.json()["code"]) == (409, "finding_pending"), refused.text
    assert first.json()["id"] in refused.json()["detail"]
    assert _overdue_and_open(registry, court) == [first.json()["id"]]
    # A forged signature over the same finding is not its resend.
    forged = copy.deepcopy(envelope)
    value = forged["signature"]["value"]
    forged["signature"]["value"] = ("B" if value[0] == "A" else "A") + value[1:]
    refused = _post_finding(registry, court, forged)
    assert (refused.status_code, refused.json()["code"]) == (422, "signature_invalid"), refused.text
    with registry.engine.connect() as conn:
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM events WHERE type = 'correction.found_by_court'")
            ).scalar_one()
            == 1
        )


def test_a_resent_finding_with_its_removal_answers_what_it_did(
    registry: Registry, court: CourtHandle
) -> None:
    listing_id, _ = _listed(registry, court)
    envelope = registry.envelope(court, _finding(listing_id, registry.today, "removal"), "finding")
    envelope["removal"] = registry.envelope(court, wrongful_removal(listing_id, registry.today), "removal")
    first = _post_finding(registry, court, envelope)
    assert first.status_code == 201, first.text
    assert (first.json()["carried_out"], first.json()["listing_version"]) == (True, 1)
    # Its removal took the listing off: the resend is its result, not listing_not_active.
    again = _post_finding(registry, court, envelope)
    assert (again.status_code, again.json()) == (200, first.json()), again.text

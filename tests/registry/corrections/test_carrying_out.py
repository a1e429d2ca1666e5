"""What carries a correction out (SPC Provisions Art. 9, 11; docs/corrections.md, Carried out):
the correction its ground asks for, not any later change of the listing. A wrongful listing is
revoked (a removal with the reason wrongly_listed); a listing that should be deleted leaves
the list; inaccurate information is amended (or leaves with the listing)."""

from __future__ import annotations

from typing import Any

import httpx

from registry.corrections.services import READER
from registry.eventlog.readers import follow_sync
from tests.support.corrections import application, apply, decision, post_decision, status, wrongful_removal
from tests.support.harness import CourtHandle, Registry
from tests.support.listings import amended_body, person_named, publish_one


def _listed(registry: Registry, court: CourtHandle, name: str) -> tuple[str, dict[str, Any]]:
    body = person_named(registry, court, name)
    return publish_one(registry, court, body), body


def _upheld_to_follow(
    registry: Registry, court: CourtHandle, listing_id: str, body: dict[str, Any], ground: str
) -> tuple[str, str]:
    """Applied on `ground`, upheld on review, to be carried out within three working days."""
    filed = apply(registry, application(listing_id, body, ground=ground))
    assert filed.status_code == 201, filed.text
    number, code = filed.json()["application_number"], filed.json()["tracking_code"]
    upheld = post_decision(
        registry, court, number, decision(number, listing_id, action="to_follow", decided_on=registry.today)
    )
    assert upheld.status_code == 200, upheld.text
    assert upheld.json()["carried_out"] is False
    return number, code


def _amend(registry: Registry, court: CourtHandle, listing_id: str, body: dict[str, Any]) -> None:
    """A cosmetic amendment: only the obligations' wording and the performance change."""
    with registry.http(court.api_key) as http:
        answer = http.post(
            f"/v1/listings/{listing_id}/amendments", json=registry.envelope(court, amended_body(body))
        )
    assert answer.status_code == 200, answer.text


def _remove(registry: Registry, court: CourtHandle, listing_id: str, reason: str) -> None:
    removal = dict(wrongful_removal(listing_id, registry.today), reason=reason)
    with registry.http(court.api_key) as http:
        answer = http.post(
            f"/v1/listings/{listing_id}/removal", json=registry.envelope(court, removal, "removal")
        )
    assert answer.status_code == 200, answer.text


def _carry_out(registry: Registry) -> None:
    """What the scheduler's corrections job does."""
    follow_sync(registry.engine, READER)


def _awaiting(registry: Registry, court: CourtHandle) -> dict[str, str | None]:
    with registry.http(court.api_key) as http:
        page = http.get("/v1/corrections", params={"state": "all"}).json()
    return {line["id"]: line["awaiting"] for line in page["corrections"]}


def test_a_wrongful_listing_is_corrected_only_by_its_revocation(
    registry: Registry, court: CourtHandle
) -> None:
    listing_id, body = _listed(registry, court, "周杰")
    number, code = _upheld_to_follow(registry, court, listing_id, body, "wrongly_listed")
    # The court amends the wording: the wrongful listing is still published, not corrected.
    _amend(registry, court, listing_id, body)
    _carry_out(registry)
    seen = status(registry, number, code).json()
    assert (seen["carried_out"], seen["listing_status"]) == (False, "active")
    assert _awaiting(registry, court)[number] == "correction"
    # Removed as performed: the person now reads as a defaulter who paid, not as wrongly
    # listed; the revocation is still owed.
    _remove(registry, court, listing_id, "performed")
    _carry_out(registry)
    seen = status(registry, number, code).json()
    assert (seen["carried_out"], seen["listing_status"]) == (False, "removed")
    assert _awaiting(registry, court)[number] == "correction"

    # Revoked: carried out, on time.
    other_id, other = _listed(registry, court, "吴磊")
    revoked, revoked_code = _upheld_to_follow(registry, court, other_id, other, "wrongly_listed")
    _remove(registry, court, other_id, "wrongly_listed")
    _carry_out(registry)
    assert status(registry, revoked, revoked_code).json()["carried_out"] is True
    assert _awaiting(registry, court)[revoked] is None


def test_a_listing_that_left_before_the_decision_owes_nothing_more(
    registry: Registry, court: CourtHandle
) -> None:
    """Removed as performed while the application was under review: upheld afterwards, the
    listing is no longer published and no removal of it can follow (a removed listing's is
    refused), so neither correction stays owed and overdue for ever."""
    answers = {}
    for name, ground in (("周杰", "wrongly_listed"), ("吴磊", "should_be_deleted")):
        listing_id, body = _listed(registry, court, name)
        filed = apply(registry, application(listing_id, body, ground=ground)).json()
        number = filed["application_number"]
        _remove(registry, court, listing_id, "performed")
        answer = post_decision(
            registry,
            court,
            number,
            decision(number, listing_id, action="to_follow", decided_on=registry.today),
        )
        assert answer.status_code == 200, answer.text
        answers[ground] = answer.json()["carried_out"]
    assert answers == {"wrongly_listed": True, "should_be_deleted": True}
    assert set(_awaiting(registry, court).values()) == {None}


def test_a_listing_that_should_be_deleted_is_corrected_only_by_leaving_the_list(
    registry: Registry, court: CourtHandle
) -> None:
    listing_id, body = _listed(registry, court, "周杰")
    # An amendment in the same request cannot carry it out: refused, nothing applied.
    filed = apply(registry, application(listing_id, body, ground="should_be_deleted")).json()
    number = filed["application_number"]
    refused = post_decision(
        registry, court, number,
        decision(number, listing_id, action="amendment", decided_on=registry.today),
        amendment=amended_body(body),
    )  # fmt: skip
    assert refused.status_code == 422, refused.text
    assert (refused.json()["code"], refused.json()["pointer"]) == (
        "decision_inconsistent",
        "/decision/action",
    )
    with registry.http(court.api_key) as http:
        assert http.get(f"/v1/listings/{listing_id}").json()["version"] == 1
        assert http.get(f"/v1/corrections/{number}").json()["status"] == "under_review"
    upheld = post_decision(
        registry, court, number, decision(number, listing_id, action="to_follow", decided_on=registry.today)
    )
    assert upheld.status_code == 200, upheld.text
    # Amended later: still published, still owed.
    _amend(registry, court, listing_id, body)
    _carry_out(registry)
    seen = status(registry, number, filed["tracking_code"]).json()
    assert (seen["carried_out"], seen["listing_status"]) == (False, "active")
    # Removed, for whatever reason: it has left the list.
    _remove(registry, court, listing_id, "performed")
    _carry_out(registry)
    assert status(registry, number, filed["tracking_code"]).json()["carried_out"] is True


def test_a_court_finding_is_carried_out_by_the_correction_it_found(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    listing_id, body = _listed(registry, court, "周杰")
    finding = {
        "listing_id": listing_id,
        "ground": "wrongly_listed",
        "found_on": registry.today.isoformat(),
        "action": "to_follow",
        "document_number": "（2026）京0105执99号之一",
        "decided_on": registry.today.isoformat(),
        "reasons": "被执行人不符合纳入条件。",
    }
    with registry.http(court.api_key) as http:
        found = http.post("/v1/corrections/findings", json=registry.envelope(court, finding, "finding"))
    assert found.status_code == 201, found.text
    correction_id = found.json()["id"]
    _amend(registry, court, listing_id, body)
    _carry_out(registry)
    assert admin.get(f"/v1/corrections/{correction_id}").json()["carried_out_at"] is None
    assert _awaiting(registry, court)[correction_id] == "correction"
    _remove(registry, court, listing_id, "wrongly_listed")
    _carry_out(registry)
    assert admin.get(f"/v1/corrections/{correction_id}").json()["carried_out_on_time"] is True
    assert _awaiting(registry, court)[correction_id] is None

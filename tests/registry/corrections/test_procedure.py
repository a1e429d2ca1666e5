"""The correction procedure over the real server (SPC Provisions Art. 9, 11, 12): apply,
review, reconsideration at the superior court, the correction carried out, deadlines, refusals."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import msgspec
import pytest
import sqlalchemy as sa

from registry.calendar import china_midnight, last_covered_year
from registry.corrections.schemas import ApplicationIn
from registry.corrections.services import READER, decide, file_application
from registry.courts.services import set_superior
from registry.eventlog.readers import follow_sync
from registry.identity.crypto import load_secrets
from registry.limits import DOWN_SECONDS
from registry.settings import Settings
from registry.timeutil import utcnow
from service.app import create_app
from tests.support.corrections import (
    CONTACT,
    PDF,
    PNG,
    STATEMENT,
    application,
    apply,
    b64,
    decision,
    dismiss,
    post_decision,
    status,
    wrongful_removal,
)
from tests.support.harness import CourtHandle, Registry, free_port, run_search_indexer, serve_app
from tests.support.listings import amended_body, person_named, publish_one


@pytest.fixture
def superior(registry: Registry, court: CourtHandle) -> CourtHandle:
    handle = registry.court("京03", "北京市第三中级人民法院", "11")
    with registry.engine.begin() as conn:
        set_superior(conn, court.code, handle.code, actor="test", now=utcnow())
    return handle


def _listed(registry: Registry, court: CourtHandle, name: str = "周杰") -> tuple[str, dict[str, Any]]:
    body = person_named(registry, court, name)
    return publish_one(registry, court, body), body


def _filed(registry: Registry, listing_id: str, body: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    answer = apply(registry, application(listing_id, body, **overrides))
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _carry_out(registry: Registry) -> None:
    """What the scheduler's corrections job does."""
    follow_sync(registry.engine, READER)


def test_upheld_with_its_removal_the_listing_leaves_every_public_surface(
    registry: Registry, court: CourtHandle
) -> None:
    listing_id, body = _listed(registry, court)
    run_search_indexer(registry.engine)
    receipt = _filed(registry, listing_id, body, ground="wrongly_listed")
    number, code = receipt["application_number"], receipt["tracking_code"]
    assert receipt["status"] == "under_review"
    # Fifteen days, moved past a rest day: never earlier than the fifteenth.
    assert receipt["review_due_on"] >= (registry.today + timedelta(days=15)).isoformat()
    # The identifier is never echoed; the listing stays published meanwhile.
    assert body["debtor"]["id_number"] not in str(receipt)
    with registry.http() as public:
        assert public.get(f"/v1/public/defaulters/{listing_id}").status_code == 200

    with registry.http(court.api_key) as http:
        queue = http.get("/v1/corrections").json()
        assert [(c["id"], c["awaiting"], c["overdue"]) for c in queue["corrections"]] == [
            (number, "review", False)
        ]
        file = http.get(f"/v1/corrections/{number}").json()
        assert file["statement"] == STATEMENT
        assert file["applicant"] == {"name": body["debtor"]["name"], "role": "debtor", "contact": CONTACT}
        assert [(a["number"], a["media_type"], a["size"]) for a in file["attachments"]] == [
            (1, "application/pdf", len(PDF))
        ]
        download = http.get(f"/v1/corrections/{number}/attachments/1")
        assert download.content == PDF and download.headers["content-type"] == "application/pdf"

    answer = post_decision(
        registry,
        court,
        number,
        decision(number, listing_id, decided_on=registry.today),
        removal=wrongful_removal(listing_id, registry.today),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "upheld" and answer.json()["carried_out"] is True

    run_search_indexer(registry.engine)
    with registry.http() as public:
        assert public.get(f"/v1/public/defaulters/{listing_id}").status_code == 404
    seen = status(registry, number, code).json()
    assert seen["status"] == "upheld" and seen["carried_out"] is True
    assert seen["listing_status"] == "removed"
    [decided] = seen["decisions"]
    assert decided["outcome"] == "upheld" and decided["court_name"] == court.name
    assert decided["reasons"].startswith("经审查")
    # The log holds ids and codes: never the statement, the contact or the identifier.
    with registry.engine.connect() as conn:
        data = " ".join(
            str(row.data)
            for row in conn.execute(sa.text("SELECT data FROM events WHERE type LIKE 'correction.%'"))
        )
    assert number in data
    for secret in (STATEMENT, CONTACT, body["debtor"]["id_number"], "经审查"):
        assert secret not in data


def test_a_wrong_identifier_is_refused_as_an_unknown_listing(registry: Registry, court: CourtHandle) -> None:
    listing_id, body = _listed(registry, court)
    _, other = _listed(registry, court, "吴磊")
    wrong = application(listing_id, body)
    wrong["applicant"]["id_number"] = other["debtor"]["id_number"]
    unknown = application("0" * 26, body)
    by_case = application(listing_id, body)
    by_case["listing"] = {"case_number": body["case_number"]}
    wrong_case = dict(wrong, listing={"case_number": body["case_number"]})
    answers = [apply(registry, each) for each in (wrong, unknown, wrong_case)]
    assert {a.status_code for a in answers} == {404}
    assert len({(a.json()["code"], a.json()["detail"]) for a in answers}) == 1
    assert other["debtor"]["id_number"] not in answers[0].text
    # The right identifier with the case number finds it.
    assert apply(registry, by_case).status_code == 201
    # A second application while the first is under review is refused.
    again = apply(registry, application(listing_id, body))
    assert again.status_code == 409 and again.json()["code"] == "correction_pending"
    # A malformed number is a field error, not a lookup.
    bad = application(listing_id, body)
    number = body["debtor"]["id_number"]
    bad["applicant"]["id_number"] = number[:-1] + (
        "0" if number[-1] == "X" else str((int(number[-1]) + 1) % 10)
    )
    refused = apply(registry, bad)
    assert refused.status_code == 422 and refused.json()["pointer"] == "/applicant/id_number"


def test_attachments_are_bounded_and_never_public(registry: Registry, court: CourtHandle) -> None:
    listing_id, body = _listed(registry, court)
    pdf = {"filename": "a.pdf", "media_type": "application/pdf", "content_base64": b64(PDF)}
    too_many = application(listing_id, body, attachments=[pdf] * 6)
    answer = apply(registry, too_many)
    assert (answer.status_code, answer.json()["code"]) == (422, "too_many_attachments")
    big = dict(pdf, content_base64=b64(PDF + bytes(2 * 1024 * 1024)))
    answer = apply(registry, application(listing_id, body, attachments=[big]))
    assert (answer.status_code, answer.json()["code"]) == (413, "attachment_too_large")
    lying = dict(pdf, content_base64=b64(b"MZ\x90\x00 not a pdf"))
    answer = apply(registry, application(listing_id, body, attachments=[lying]))
    assert (answer.status_code, answer.json()["code"]) == (415, "attachment_type_refused")
    assert answer.json()["pointer"] == "/attachments/0/content_base64"
    exe = dict(pdf, media_type="application/x-msdownload")
    answer = apply(registry, application(listing_id, body, attachments=[exe]))
    assert (answer.status_code, answer.json()["code"]) == (415, "attachment_type_refused")
    # Nothing was stored by the refusals; a good one with two files goes through.
    png = {"filename": "照片.png", "media_type": "image/png", "content_base64": b64(PNG)}
    receipt = _filed(registry, listing_id, body, attachments=[pdf, png])
    number = receipt["application_number"]
    with registry.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT content_cipher FROM correction_attachments")).scalars().all()
    assert len(stored) == 2 and all(PDF not in bytes(c) and PNG not in bytes(c) for c in stored)
    # Only the deciding courts and admins read them: not the public, not a bank, not another court.
    with registry.http() as anonymous:
        assert anonymous.get(f"/v1/corrections/{number}/attachments/1").status_code == 401
    with registry.http(registry.client("bank")) as bank:
        assert bank.get(f"/v1/corrections/{number}/attachments/1").status_code == 403
    other = registry.court("沪0101", "上海市黄浦区人民法院", "31")
    with registry.http(other.api_key) as http:
        assert http.get(f"/v1/corrections/{number}").status_code == 404
        assert http.get("/v1/corrections").json()["total"] == 0


def test_dismissal_goes_to_reconsideration_at_the_superior_court(
    registry: Registry, court: CourtHandle, superior: CourtHandle
) -> None:
    listing_id, body = _listed(registry, court)
    receipt = _filed(registry, listing_id, body, ground="inaccurate_information")
    number, code = receipt["application_number"], receipt["tracking_code"]
    # The superior court does not review: the listing court does (corrections.md: 403 to the
    # superior on a review; it had been told the application did not exist).
    early = post_decision(
        registry, superior, number, decision(number, listing_id, outcome="dismissed", action="none",
                                             decided_on=registry.today)
    )  # fmt: skip
    assert (early.status_code, early.json()["code"]) == (403, "not_deciding_court")
    dismissed = post_decision(
        registry,
        court,
        number,
        decision(number, listing_id, outcome="dismissed", action="none", decided_on=registry.today),
    )
    assert dismissed.status_code == 200, dismissed.text
    seen = status(registry, number, code).json()
    assert seen["status"] == "dismissed" and seen["may_request_reconsideration"] is True
    assert seen["reconsideration_until"] >= (registry.today + timedelta(days=10)).isoformat()

    with registry.http() as public:
        asked = public.post(
            "/v1/public/corrections/reconsideration",
            json={"application_number": number, "tracking_code": code, "statement": "原审查有误。"},
        )
        assert asked.status_code == 200, asked.text
        assert asked.json()["reconsideration_court"] == superior.code
        twice = public.post(
            "/v1/public/corrections/reconsideration",
            json={"application_number": number, "tracking_code": code, "statement": "再次申请。"},
        )
        assert twice.json()["code"] == "reconsideration_not_available"
        wrong_code = public.post(
            "/v1/public/corrections/status", json={"application_number": number, "tracking_code": "x" * 32}
        )
        assert (wrong_code.status_code, wrong_code.json()["code"]) == (404, "correction_not_found")

    with registry.http(superior.api_key) as http:
        [queued] = http.get("/v1/corrections").json()["corrections"]
        assert (queued["id"], queued["awaiting"], queued["deciding_court"]) == (
            number,
            "reconsideration",
            superior.code,
        )
        assert http.get(f"/v1/corrections/{number}").json()["reconsideration_statement"] == "原审查有误。"
    # The listing court cannot decide the reconsideration, nor sign it with its key.
    refused = post_decision(
        registry, court, number,
        decision(number, listing_id, stage="reconsideration", action="ordered", decided_on=registry.today),
    )  # fmt: skip
    assert (refused.status_code, refused.json()["code"]) == (403, "not_deciding_court")
    forged = post_decision(
        registry, superior, number,
        decision(number, listing_id, stage="reconsideration", action="ordered", decided_on=registry.today),
        signer=court,
    )  # fmt: skip
    assert (forged.status_code, forged.json()["code"]) == (422, "key_court_mismatch")
    upheld = post_decision(
        registry, superior, number,
        decision(number, listing_id, stage="reconsideration", action="ordered", decided_on=registry.today),
    )  # fmt: skip
    assert upheld.status_code == 200, upheld.text
    assert upheld.json()["status"] == "upheld_on_reconsideration" and upheld.json()["carried_out"] is False
    with registry.http(court.api_key) as http:
        [due] = http.get("/v1/corrections").json()["corrections"]
        assert due["awaiting"] == "correction" and due["deciding_court"] == court.code

    # The listing court amends; the reader notes the correction carried out, on time.
    with registry.http(court.api_key) as http:
        amended = http.post(
            f"/v1/listings/{listing_id}/amendments", json=registry.envelope(court, amended_body(body))
        )
        assert amended.status_code == 200, amended.text
    _carry_out(registry)
    seen = status(registry, number, code).json()
    assert seen["status"] == "upheld_on_reconsideration" and seen["carried_out"] is True
    assert [d["stage"] for d in seen["decisions"]] == ["review", "reconsideration"]
    with registry.http(court.api_key) as http:
        assert http.get("/v1/corrections").json()["total"] == 0
        assert http.get(f"/v1/corrections/{number}").json()["carried_out_on_time"] is True


def test_decisions_must_be_consistent_and_signed(registry: Registry, court: CourtHandle) -> None:
    listing_id, body = _listed(registry, court)
    number = _filed(registry, listing_id, body, ground="wrongly_listed")["application_number"]
    today = registry.today
    cases: list[tuple[dict[str, Any], dict[str, Any], int, str]] = [
        (decision(number, listing_id, action="removal", decided_on=today), {}, 422, "decision_inconsistent"),
        (decision(number, listing_id, action="none", decided_on=today), {}, 422, "decision_inconsistent"),
        (
            decision(number, listing_id, action="removal", decided_on=today),
            {"removal": dict(wrongful_removal(listing_id, today), reason="performed")},
            422,
            "decision_inconsistent",
        ),
        (decision("0" * 26, listing_id, action="to_follow", decided_on=today), {}, 422, "decision_mismatch"),
        (
            decision(number, listing_id, action="to_follow", decided_on=today + timedelta(days=1)),
            {},
            422,
            "date_out_of_range",
        ),
    ]
    for body_, extra, status_code, code in cases:
        answer = post_decision(registry, court, number, body_, **extra)
        assert (answer.status_code, answer.json()["code"]) == (status_code, code), answer.text
    wrong_reason = post_decision(
        registry, court, number, decision(number, listing_id, action="removal", decided_on=today),
        removal=dict(wrongful_removal(listing_id, today), reason="performed"),
    )  # fmt: skip
    assert wrong_reason.json()["pointer"] == "/removal/removal/reason"
    later = (today + timedelta(days=2)).isoformat()
    future = post_decision(
        registry, court, number, decision(number, listing_id, action="removal", decided_on=today),
        removal=dict(wrongful_removal(listing_id, today), effective_on=later),
    )  # fmt: skip
    assert (future.json()["code"], future.json()["pointer"]) == (
        "date_out_of_range",
        "/removal/removal/effective_on",
    )
    # A tampered signature.
    envelope = registry.envelope(
        court, decision(number, listing_id, action="to_follow", decided_on=today), "decision"
    )
    envelope["decision"]["reasons"] = "改动过的理由"
    with registry.http(court.api_key) as http:
        answer = http.post(f"/v1/corrections/{number}/decision", json=envelope)
    assert (answer.status_code, answer.json()["code"]) == (422, "signature_invalid")
    # Nothing of the refusals was kept: the listing is active, the application still under review.
    with registry.http(court.api_key) as http:
        assert http.get(f"/v1/listings/{listing_id}").json()["status"] == "active"
        assert http.get(f"/v1/corrections/{number}").json()["status"] == "under_review"


def test_a_finding_of_the_court_is_held_to_three_working_days(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    listed_on = registry.today - timedelta(days=40)
    filed_on = listed_on - timedelta(days=5)
    body = person_named(
        registry, court, "郑爽", listed_on=listed_on.isoformat(), filed_on=filed_on.isoformat(),
        case_number=registry.generator.case_number(court.code, filed_on.year),
    )  # fmt: skip
    listing_id = publish_one(registry, court, body)
    found_on = registry.today - timedelta(days=20)
    finding = {
        "listing_id": listing_id,
        "ground": "inaccurate_information",
        "found_on": found_on.isoformat(),
        "action": "to_follow",
        "document_number": "（2026）京0105执99号之一",
        "decided_on": found_on.isoformat(),
        "reasons": "被执行人身份信息有误。",
    }
    with registry.http(court.api_key) as http:
        answer = http.post("/v1/corrections/findings", json=registry.envelope(court, finding, "finding"))
    assert answer.status_code == 201, answer.text
    found = answer.json()
    assert found["status"] == "found_by_court" and found["carried_out"] is False
    assert found["correction_due_on"] < registry.today.isoformat()
    overdue = admin.get("/v1/corrections", params={"state": "overdue"}).json()
    [late] = overdue["corrections"]
    assert (late["id"], late["awaiting"], late["overdue"]) == (found["id"], "correction", True)
    assert late["days_overdue"] > 0
    metrics = admin.get("/metrics/corrections").text
    assert f'registry_corrections_overdue{{awaiting="correction",court="{court.code}"}} 1.0' in metrics
    # Carried out late: off the overdue list, recorded as late.
    with registry.http(court.api_key) as http:
        assert (
            http.post(
                f"/v1/listings/{listing_id}/amendments", json=registry.envelope(court, amended_body(body))
            ).status_code
            == 200
        )
    _carry_out(registry)
    assert admin.get("/v1/corrections", params={"state": "overdue"}).json()["total"] == 0
    # A state it does not know is refused naming the parameter as sent (it named `which`).
    unknown = admin.get("/v1/corrections", params={"state": "bogus"})
    assert unknown.status_code == 400 and unknown.json()["pointer"] == "/query/state"
    assert unknown.json()["detail"].startswith("state: ")
    assert admin.get(f"/v1/corrections/{found['id']}").json()["carried_out_on_time"] is False
    # Another court cannot record a finding on this listing.
    other = registry.court("沪0101", "上海市黄浦区人民法院", "31")
    with registry.http(other.api_key) as http:
        answer = http.post("/v1/corrections/findings", json=registry.envelope(other, finding, "finding"))
    assert answer.status_code == 404


def test_applications_fall_under_a_budget_per_address(
    registry: Registry, court: CourtHandle, settings: Settings
) -> None:
    listing_id, body = _listed(registry, court)
    wrong = application(listing_id, body)
    wrong["applicant"]["id_number"] = "11010519491231002X"
    limited = settings.override(corrections={"budget_per_address": 2})
    with serve_app(create_app(limited, run_scheduler=False)) as url, httpx.Client(base_url=url) as http:
        # Refused attempts count too: guessing identifiers against a listing is what it stops.
        codes = [http.post("/v1/public/corrections", json=wrong).status_code for _ in range(2)]
        assert codes == [404, 404]
        over = http.post("/v1/public/corrections", json=application(listing_id, body))
        assert over.status_code == 429 and over.json()["code"] == "correction_budget_exhausted"
        assert int(over.headers["retry-after"]) > 0


def test_the_budget_refuses_while_the_shared_store_does_not_answer(
    registry: Registry, court: CourtHandle, settings: Settings
) -> None:
    """Counting per process would give each web process a budget of its own: refused, as
    exact-number lookups are (the embedded default, no store, counts in the process above)."""
    listing_id, body = _listed(registry, court)
    down = settings.override(shared_store={"url": f"redis://127.0.0.1:{free_port()}/0"})
    with serve_app(create_app(down, run_scheduler=False)) as url, httpx.Client(base_url=url) as http:
        answers = [
            http.post("/v1/public/corrections", json=application(listing_id, body)),
            http.post(
                "/v1/public/certificates",
                json={"listing": {"id": listing_id}, "id_number": body["debtor"]["id_number"]},
            ),
        ]
    for answer in answers:
        assert (answer.status_code, answer.json()["code"]) == (429, "correction_budget_exhausted")
        assert answer.headers["retry-after"] == str(int(DOWN_SECONDS) + 1)


def test_a_reconsideration_window_beyond_the_calendar_is_flagged_and_on_metrics(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    listing_id, body = _listed(registry, court)
    last = last_covered_year()
    secrets = load_secrets(settings)
    # Filed on 10 December of the last year the data covers (reviewed within it), dismissed
    # on the 28th: the ten days to ask for reconsideration end in the next, not yet covered.
    dismissed_on = date(last, 12, 28)
    with registry.engine.begin() as conn:
        receipt = file_application(
            conn,
            msgspec.convert(application(listing_id, body), ApplicationIn),
            secrets,
            max_attachments=settings.corrections.max_attachments,
            max_attachment_bytes=settings.corrections.max_attachment_bytes,
            now=china_midnight(date(last, 12, 10)) + timedelta(hours=10),
        )
    number = receipt.application_number
    assert receipt.review_due_on.year == last
    dismissal = decision(number, listing_id, outcome="dismissed", action="none", decided_on=dismissed_on)
    with registry.engine.begin() as conn:
        decide(
            conn,
            number,
            registry.envelope(court, dismissal, "decision"),
            secrets,
            client_court=court.code,
            actor="test",
            now=china_midnight(dismissed_on) + timedelta(hours=10),
        )
    seen = status(registry, number, receipt.tracking_code).json()
    assert seen["reconsideration_until"].startswith(str(last + 1))
    # Flagged wherever the deadline is shown: the applicant's status, the court's file and queue.
    assert seen["deadline_provisional"] is True
    with registry.http(court.api_key) as http:
        assert http.get(f"/v1/corrections/{number}").json()["deadline_provisional"] is True
        [line] = http.get("/v1/corrections", params={"state": "all"}).json()["corrections"]
        assert line["deadline_provisional"] is True
    assert f'registry_calendar_provisional_deadlines{{year="{last + 1}"}} 1.0' in admin.get("/metrics").text


def test_upheld_with_its_amendment_the_listing_is_corrected(registry: Registry, court: CourtHandle) -> None:
    listing_id, body = _listed(registry, court)
    receipt = _filed(registry, listing_id, body, ground="inaccurate_information", attachments=[])
    number, code = receipt["application_number"], receipt["tracking_code"]
    corrected = amended_body(body)
    # A wrongful-listing ground is corrected by removal only; this one by the amendment.
    answer = post_decision(
        registry, court, number,
        decision(number, listing_id, action="amendment", decided_on=registry.today),
        amendment=corrected,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert (answer.json()["listing_version"], answer.json()["carried_out"]) == (2, True)
    run_search_indexer(registry.engine)
    with registry.http() as public:
        entry = public.get(f"/v1/public/defaulters/{listing_id}").json()
    assert entry["obligations"] == corrected["obligations"]
    seen = status(registry, number, code).json()
    assert (seen["status"], seen["listing_status"], seen["carried_out"]) == ("upheld", "active", True)
    # A decision on a closed application is refused.
    again = post_decision(
        registry, court, number, decision(number, listing_id, action="to_follow", decided_on=registry.today)
    )
    assert (again.status_code, again.json()["code"]) == (409, "correction_not_open")


def test_courts_are_told_of_each_step_through_their_feed(
    registry: Registry, court: CourtHandle, superior: CourtHandle
) -> None:
    listing_id, body = _listed(registry, court)
    receipt = _filed(registry, listing_id, body)
    number, code = receipt["application_number"], receipt["tracking_code"]
    with registry.http(court.api_key) as http:
        page = http.get("/v1/corrections/events").json()
    assert [(e["type"], e["data"]["correction_id"]) for e in page["events"]] == [("correction.filed", number)]
    cursor = page["next_after"]
    post_decision(
        registry, court, number,
        decision(number, listing_id, outcome="dismissed", action="none", decided_on=registry.today),
    )  # fmt: skip
    with registry.http() as public:
        public.post(
            "/v1/public/corrections/reconsideration",
            json={"application_number": number, "tracking_code": code, "statement": "复议"},
        )
    with registry.http(court.api_key) as http:
        later = http.get("/v1/corrections/events", params={"after": cursor}).json()
    assert [e["type"] for e in later["events"]] == [
        "correction.decided",
        "correction.reconsideration_requested",
    ]
    with registry.http(superior.api_key) as http:
        sent = http.get("/v1/corrections/events").json()["events"]
    assert [e["type"] for e in sent] == ["correction.reconsideration_requested"]
    other = registry.court("沪0101", "上海市黄浦区人民法院", "31")
    with registry.http(other.api_key) as http:
        assert http.get("/v1/corrections/events").json()["events"] == []
    # Ids and codes only.
    assert STATEMENT not in str(later) and "复议" not in str(later)


def test_the_queue_reads_a_court_as_the_cli_does_and_refuses_one_it_does_not_know(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    listing_id, body = _listed(registry, court)
    number = _filed(registry, listing_id, body)["application_number"]

    def ids(**params: str) -> list[str]:
        answer = admin.get("/v1/corrections", params=params)
        assert answer.status_code == 200, answer.text
        return [line["id"] for line in answer.json()["corrections"]]

    # Full-width digits are the same court (as `registry corrections list --court` reads them).
    assert ids(court="京０１０５") == ids(court=court.code) == [number]
    # A typo is refused, not answered with a clean, empty list.
    for typed, status_code, code in (
        ("京9999", 400, "unknown_court"),
        ("nonexistent", 400, "invalid_parameter"),
        ("京01055", 400, "invalid_parameter"),
    ):
        refused = admin.get("/v1/corrections", params={"court": typed, "state": "overdue"})
        assert (refused.status_code, refused.json()["code"]) == (status_code, code), (typed, refused.text)
        assert refused.json()["pointer"] == "/query/court"
    # Which of two states was meant is a guess: refused, not the last taken.
    for query in ("state=open&state=all", f"court={court.code}&court=沪0101"):
        repeated = admin.get(f"/v1/corrections?{query}")
        assert (repeated.status_code, repeated.json()["code"]) == (400, "repeated_parameter"), query
        assert repeated.json()["pointer"] == "/query/" + query.split("=")[0]


def test_a_decision_says_something_and_names_its_stage(registry: Registry, court: CourtHandle) -> None:
    listing_id, body = _listed(registry, court)
    number = _filed(registry, listing_id, body, ground="inaccurate_information")["application_number"]
    to_follow = decision(number, listing_id, action="to_follow", decided_on=registry.today)
    for member, text in (
        ("reasons", "\n"),
        ("reasons", " \n\u3000"),
        ("document_number", " "),
        ("document_number", "某某决定书"),
        ("document_number", "（二〇二六）京执异号"),
    ):
        refused = post_decision(registry, court, number, to_follow | {member: text})
        assert (refused.status_code, refused.json()["code"]) == (422, "invalid_field"), (member, text)
        assert refused.json()["pointer"] == f"/decision/{member}"
    # No stage: a field missing, not "no None decision is awaited".
    stageless = {k: v for k, v in to_follow.items() if k != "stage"}
    refused = post_decision(registry, court, number, stageless)
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_field"), refused.text
    assert refused.json()["pointer"] == "/decision/stage"
    with registry.http(court.api_key) as http:
        assert http.get(f"/v1/corrections/{number}").json()["status"] == "under_review"


def test_a_document_number_is_shown_as_it_was_checked(registry: Registry, court: CourtHandle) -> None:
    """Folded as a listing's document numbers are (NFKC): the applicant reads the digits the
    registry checked, not full-width ones or a superscript it read as a digit."""
    listing_id, body = _listed(registry, court)
    receipt = _filed(registry, listing_id, body)
    number, code = receipt["application_number"], receipt["tracking_code"]
    signed = decision(number, listing_id, outcome="dismissed", action="none", decided_on=registry.today)
    answer = post_decision(registry, court, number, signed | {"document_number": "（2026）京0105执异８８²号"})
    assert answer.status_code == 200, answer.text
    [shown] = status(registry, number, code).json()["decisions"]
    assert shown["document_number"] == "（2026）京0105执异882号"


def test_a_blank_reconsideration_statement_is_refused(
    registry: Registry, court: CourtHandle, superior: CourtHandle
) -> None:
    listing_id, body = _listed(registry, court)
    receipt = _filed(registry, listing_id, body)
    number, code = receipt["application_number"], receipt["tracking_code"]
    dismiss(registry, court, number, listing_id)
    with registry.http() as public:
        refused = public.post(
            "/v1/public/corrections/reconsideration",
            json={"application_number": number, "tracking_code": code, "statement": " \n "},
        )
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_field"), refused.text
    assert refused.json()["pointer"] == "/statement"
    assert status(registry, number, code).json()["status"] == "dismissed"


def test_without_a_known_superior_court_the_status_does_not_offer_reconsideration(
    registry: Registry, court: CourtHandle
) -> None:
    listing_id, body = _listed(registry, court)
    receipt = _filed(registry, listing_id, body)
    number, code = receipt["application_number"], receipt["tracking_code"]
    dismiss(registry, court, number, listing_id)
    seen = status(registry, number, code).json()
    assert (seen["status"], seen["may_request_reconsideration"]) == ("dismissed", False)
    # What it would have offered: refused.
    with registry.http() as public:
        asked = public.post(
            "/v1/public/corrections/reconsideration",
            json={"application_number": number, "tracking_code": code, "statement": "原审查有误。"},
        )
    assert (asked.status_code, asked.json()["code"]) == (409, "no_superior_court")


def test_every_correction_line_says_whether_its_deadline_is_provisional(
    registry: Registry, court: CourtHandle
) -> None:
    listing_id, body = _listed(registry, court)
    receipt = _filed(registry, listing_id, body)
    assert receipt["deadline_provisional"] is False
    seen = status(registry, receipt["application_number"], receipt["tracking_code"]).json()
    assert seen["deadline_provisional"] is False
    with registry.http(court.api_key) as http:
        [line] = http.get("/v1/corrections").json()["corrections"]
    assert line["deadline_provisional"] is False

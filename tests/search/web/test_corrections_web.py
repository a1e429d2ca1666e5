"""The correction pages over plain HTTP: headers, escaping, refusals in words, the rate limit."""

from __future__ import annotations

import re

import httpx

from registry.settings import Settings
from service.app import create_app
from tests.support.harness import CourtHandle, Registry, serve_app
from tests.support.listings import person_named, publish_one

PAGES = ("/corrections/apply", "/corrections/status", "/certificates", "/certificates/verify")


def test_every_page_keeps_the_public_pages_headers(registry: Registry) -> None:
    with registry.http() as http:
        for path in PAGES:
            answer = http.get(path)
            assert answer.status_code == 200, path
            assert "script-src" not in answer.headers["content-security-policy"]
            assert answer.headers["content-security-policy"].startswith("default-src 'none'")
            assert answer.headers["cache-control"] == "no-store"
            assert answer.headers["referrer-policy"] == "no-referrer"


def test_what_was_typed_comes_back_escaped_and_the_number_never(
    registry: Registry, court: CourtHandle
) -> None:
    body = person_named(registry, court, "马丽")
    listing_id = publish_one(registry, court, body)
    form = {
        "listing": listing_id,
        "name": '<script>alert("x")</script>',
        "id_kind": "id_number",
        "number": body["debtor"]["id_number"],
        "ground": "should_be_deleted",
        "statement": "",
        "contact": "13800000000",
    }
    with registry.http() as http:
        answer = http.post(
            "/corrections/apply", data=form, files={"attachments": ("", b"", "application/octet-stream")}
        )
    assert answer.status_code == 422
    assert "请填写申请理由" in answer.text
    assert "<script>alert" not in answer.text and "&lt;script&gt;" in answer.text
    assert body["debtor"]["id_number"] not in answer.text
    # A file of the wrong type is refused in words, nothing stored.
    form["statement"] = "理由"
    with registry.http() as http:
        answer = http.post(
            "/corrections/apply",
            data=form,
            files={"attachments": ("a.exe", b"MZ\x90\x00", "application/pdf")},
        )
    assert answer.status_code == 415 and "附件只接受 PDF、JPEG 或 PNG 文件" in answer.text
    with registry.http() as http:
        answer = http.post("/corrections/status", data={"number": "0" * 26, "code": "x"})
    assert answer.status_code == 404 and "申请编号或查询码不正确" in answer.text
    with registry.http() as http:
        answer = http.get("/certificates/verify", params={"token": "a.b.c"})
    assert answer.status_code == 400 and "核验未通过" in answer.text


def test_past_the_public_rate_limit_a_person_reads_why(registry: Registry, settings: Settings) -> None:
    limited = settings.override(server={"public_rate_limit": "2/minute"})
    with serve_app(create_app(limited, run_scheduler=False)) as url, httpx.Client(base_url=url) as http:
        codes = [
            http.get("/corrections/apply", headers={"Accept": "text/html"}).status_code for _ in range(3)
        ]
        assert codes == [200, 200, 429]
        answer = http.get("/certificates", headers={"Accept": "text/html"})
        assert (
            answer.headers["content-type"].startswith("text/html") and int(answer.headers["retry-after"]) > 0
        )


def _shown(page: str, element: str) -> str:
    found = re.search(rf'id="{element}">([^<]+)<', page)
    assert found is not None, element
    return found.group(1)


def test_a_form_sent_again_gets_its_application_number_again(registry: Registry, court: CourtHandle) -> None:
    """The answer to the first sending lost (a dropped connection), the visitor sends the same
    form again: the form's own key makes it the same application, with a new tracking code."""
    body = person_named(registry, court, "马丽")
    listing_id = publish_one(registry, court, body)
    with registry.http() as http:
        form_page = http.get("/corrections/apply", params={"listing": listing_id}).text
        key = re.search(r'name="idempotency_key" value="([A-Za-z0-9_-]+)"', form_page)
        assert key is not None
        assert key.group(1) not in http.get("/corrections/apply").text  # each form its own
        form = {
            "idempotency_key": key.group(1),
            "listing": listing_id,
            "name": "马丽",
            "id_kind": "id_number",
            "number": body["debtor"]["id_number"],
            "ground": "should_be_deleted",
            "statement": "已经履行完毕",
            "contact": "13800000000",
        }
        empty = {"attachments": ("", b"", "application/octet-stream")}
        first = http.post("/corrections/apply", data=form, files=empty)
        again = http.post("/corrections/apply", data=form, files=empty)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    number = _shown(first.text, "application-number")
    assert _shown(again.text, "application-number") == number
    assert _shown(again.text, "tracking-code") != _shown(first.text, "tracking-code")

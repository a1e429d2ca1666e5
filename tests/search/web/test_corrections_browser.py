"""The correction procedure end to end, with the listed person in real headless Chromium and the
courts over the API: apply on the web page -> the court decides (upheld: the listing leaves the
public list; dismissed: reconsideration at the superior court) -> a removal certificate with
its QR code, checked on the verification page and offline with an independent JOSE library.
Every page is checked with axe-core (no serious or critical violation)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from registry.corrections.services import READER
from registry.courts.services import set_superior
from registry.eventlog.readers import follow_sync
from registry.timeutil import utcnow
from tests.support.browser import PHONE, browser, no_horizontal_scroll, serious_violations
from tests.support.corrections import PDF, decision, post_decision, wrongful_removal
from tests.support.harness import CourtHandle, Registry, run_search_indexer
from tests.support.listings import passport_holder_named, person_named, publish_one
from tests.support.publishing import remove

pytestmark = pytest.mark.slow
__all__ = ["browser"]  # the module's Chromium (tests/support/browser.py)


@pytest.fixture
def page(browser: Browser, registry: Registry) -> Iterator[Page]:
    context = browser.new_context(base_url=registry.url, locale="zh-CN")
    yield context.new_page()
    context.close()


@pytest.fixture
def index(engine: sa.Engine) -> Callable[[], int]:
    return functools.partial(run_search_indexer, engine)


def accessible(page: Page) -> None:
    """No serious or critical axe-core violation on the page as it stands."""
    assert serious_violations(page) == []


def apply_on_the_web(page: Page, listing_id: str, body: dict[str, Any], ground: str) -> tuple[str, str]:
    """From the entry's page to the receipt; returns (application number, tracking code)."""
    page.goto(f"/defaulters/{listing_id}")
    page.get_by_role("link", name="申请纠正本条信息").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("申请纠正失信信息")
    expect(page.get_by_label("失信信息编号或执行案号")).to_have_value(listing_id)
    accessible(page)
    page.get_by_label("申请人姓名或名称").fill(body["debtor"]["name"])
    page.get_by_label("被执行人的完整证件号码").fill(body["debtor"]["id_number"])
    page.get_by_label(ground).check()
    page.get_by_label("申请理由").fill("本人已全部履行。\n请予删除。")
    page.get_by_label("联系方式（电话或地址）").fill("13800000000")
    page.get_by_label("证明材料（可选）").set_input_files(
        files=[{"name": "付款凭证.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    page.get_by_role("button", name="提交申请").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("纠正申请已提交")
    accessible(page)
    # The number is never shown back.
    assert body["debtor"]["id_number"] not in page.content()
    return page.locator("#application-number").inner_text(), page.locator("#tracking-code").inner_text()


def open_status(page: Page, number: str, code: str) -> None:
    page.goto("/corrections/status")
    page.get_by_label("申请编号").fill(number)
    page.get_by_label("查询码").fill(code)
    page.get_by_role("button", name="查询").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("纠正申请进度")


def test_upheld_the_listing_leaves_the_list_and_a_certificate_proves_it(
    page: Page, registry: Registry, court: CourtHandle, index: Callable[[], int]
) -> None:
    body = person_named(registry, court, "韩梅")
    listing_id = publish_one(registry, court, body)
    index()
    number, code = apply_on_the_web(page, listing_id, body, "不应被纳入失信被执行人名单")

    # The court sees it in its queue, with the file, and upholds it with its removal.
    with registry.http(court.api_key) as http:
        [queued] = http.get("/v1/corrections").json()["corrections"]
        assert queued["id"] == number
        assert http.get(f"/v1/corrections/{number}/attachments/1").content == PDF
    answer = post_decision(
        registry, court, number, decision(number, listing_id, decided_on=registry.today),
        removal=wrongful_removal(listing_id, registry.today),
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    index()
    # Gone from the public list: the entry's page, the search.
    response = page.goto(f"/defaulters/{listing_id}")
    assert response is not None and response.status == 404
    page.goto("/?q=" + "韩梅")
    expect(page.get_by_role("status")).to_contain_text("未在本名单中查询到")

    open_status(page, number, code)
    expect(page.locator("#application-status")).to_have_text("申请理由成立，执行法院已决定纠正")
    expect(page.get_by_role("region", name="审查决定")).to_contain_text("经审查")
    accessible(page)

    # The certificate: a printable page with a QR code that opens the verification page.
    page.goto(f"/certificates?listing={listing_id}")
    accessible(page)
    page.get_by_label("被执行人的完整证件号码").fill(body["debtor"]["id_number"])
    page.get_by_role("button", name="出具证明").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("失信信息删除证明")
    certificate = page.locator("article.certificate")
    expect(certificate).to_contain_text(body["case_number"])
    expect(certificate).to_contain_text(court.name)
    expect(certificate).to_contain_text("不应纳入失信被执行人名单")
    today = registry.today
    expect(certificate.locator("dl.entry")).to_contain_text(
        f"删除日期{today.year}年{today.month}月{today.day}日"
    )
    expect(page.locator(".qr svg")).to_be_visible()
    assert body["debtor"]["id_number"] not in page.content()
    accessible(page)
    token = page.locator("#certificate-token").inner_text().strip()

    # A bank checks it offline with the JWK Set and PyJWT.
    with registry.http() as http:
        jwks = http.get("/.well-known/jwks.json").json()
    [key] = [k for k in jwks["keys"] if k["kid"] == jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["EdDSA"])
    assert claims["listing_id"] == listing_id and claims["reason"] == "wrongly_listed"
    # ... or opens the QR code's address.
    page.goto("/certificates/verify?token=" + token)
    expect(page.get_by_role("status")).to_contain_text("核验通过")
    expect(page.locator("dl.entry")).to_contain_text(body["case_number"])
    accessible(page)
    answer_ = page.goto("/certificates/verify?token=" + token[:-4] + "AAAA")
    assert answer_ is not None and answer_.status == 400
    expect(page.get_by_role("alert")).to_contain_text("核验未通过")


def test_dismissed_then_reconsidered_at_the_superior_court(
    page: Page, registry: Registry, court: CourtHandle, index: Callable[[], int]
) -> None:
    superior = registry.court("京03", "北京市第三中级人民法院", "11")
    with registry.engine.begin() as conn:
        set_superior(conn, court.code, superior.code, actor="test", now=utcnow())
    body = person_named(registry, court, "林涛")
    listing_id = publish_one(registry, court, body)
    index()
    number, code = apply_on_the_web(page, listing_id, body, "失信信息应予删除")
    dismissed = post_decision(
        registry, court, number,
        decision(number, listing_id, outcome="dismissed", action="none", decided_on=registry.today),
    )  # fmt: skip
    assert dismissed.status_code == 200, dismissed.text

    open_status(page, number, code)
    expect(page.locator("#application-status")).to_have_text("申请理由不成立，执行法院已决定驳回")
    accessible(page)
    page.get_by_label("复议理由").fill("已提交付款凭证，原决定有误。")
    page.get_by_role("button", name="申请复议").click()
    expect(page.locator("#application-status")).to_have_text("上一级人民法院复议中")
    # Still published meanwhile.
    response = page.goto(f"/defaulters/{listing_id}")
    assert response is not None and response.status == 200

    with registry.http(superior.api_key) as http:
        [queued] = http.get("/v1/corrections").json()["corrections"]
        assert queued["awaiting"] == "reconsideration"
    upheld = post_decision(
        registry, superior, number,
        decision(number, listing_id, stage="reconsideration", action="ordered", decided_on=registry.today),
    )  # fmt: skip
    assert upheld.status_code == 200, upheld.text
    # The listing court carries it out; the public list follows.
    remove(registry, court, listing_id, reason="performed")
    follow_sync(registry.engine, READER)
    index()
    response = page.goto(f"/defaulters/{listing_id}")
    assert response is not None and response.status == 404
    open_status(page, number, code)
    expect(page.locator("#application-status")).to_have_text("复议理由成立，上一级人民法院已决定纠正")
    expect(page.locator("dl.entry")).to_contain_text("（已纠正）")
    assert [h.strip() for h in page.locator("section.decision h3").all_inner_texts()] == [
        f"{court.name} · 审查决定",
        f"{superior.name} · 复议决定",
    ]


def test_a_refused_application_is_explained_and_works_on_a_phone(
    browser: Browser, registry: Registry, court: CourtHandle, index: Callable[[], int]
) -> None:
    body = person_named(registry, court, "曹宇")
    listing_id = publish_one(registry, court, body)
    index()
    context = browser.new_context(base_url=registry.url, viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto(f"/corrections/apply?listing={listing_id}")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.get_by_label("申请人姓名或名称").fill("曹宇")
        page.get_by_label("被执行人的完整证件号码").fill("11010519491231002X")  # valid, but not theirs
        page.get_by_label("失信信息应予删除").check()
        page.get_by_label("申请理由").fill("理由")
        page.get_by_label("联系方式（电话或地址）").fill("13800000000")
        page.get_by_role("button", name="提交申请").click()
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("未找到与所填案号或信息编号及证件号码相符的失信信息")
        field = page.get_by_label("失信信息编号或执行案号")
        expect(field).to_have_attribute("aria-invalid", "true")
        assert page.title().startswith("错误：")
        # What was typed stays, except the number.
        expect(page.get_by_label("申请理由")).to_have_value("理由")
        expect(page.get_by_label("被执行人的完整证件号码")).to_have_value("")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        accessible(page)
    finally:
        context.close()


@pytest.mark.parametrize("width", [360, 390])
def test_the_certificate_and_its_qr_code_fit_a_phone(
    browser: Browser, registry: Registry, court: CourtHandle, width: int
) -> None:
    body = person_named(registry, court, "邓敏")
    listing_id = publish_one(registry, court, body)
    remove(registry, court, listing_id)
    context = browser.new_context(
        base_url=registry.url, viewport={"width": width, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        page = context.new_page()
        page.goto(f"/certificates?listing={listing_id}")
        page.get_by_label("被执行人的完整证件号码").fill(body["debtor"]["id_number"])
        page.get_by_role("button", name="出具证明").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("失信信息删除证明")
        assert no_horizontal_scroll(page)
        # The whole code on the screen, square, and big enough to scan.
        box = page.locator(".qr svg").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
        assert box["width"] >= 250 and abs(box["height"] - box["width"]) < 1
        accessible(page)
    finally:
        context.close()


def test_the_holders_code_is_never_printed_even_when_shown(
    page: Page, registry: Registry, court: CourtHandle
) -> None:
    body = person_named(registry, court, "邓敏")
    listing_id = publish_one(registry, court, body)
    remove(registry, court, listing_id)
    page.goto(f"/certificates?listing={listing_id}")
    page.get_by_label("被执行人的完整证件号码").fill(body["debtor"]["id_number"])
    page.get_by_role("button", name="出具证明").click()
    page.get_by_text("身份核对码（另行保存，不随证明打印或转交）").click()
    nonce = page.locator("#certificate-nonce")
    expect(nonce).to_be_visible()
    page.emulate_media(media="print")
    # The certificate prints; the code that, with it, lets anyone try numbers does not.
    expect(page.locator("#certificate-token")).to_be_visible()
    expect(nonce).to_be_hidden()


def test_a_passport_holder_applies_and_gets_a_certificate_that_checks_their_number(
    page: Page, registry: Registry, court: CourtHandle
) -> None:
    """Listed under a passport: the forms offer it by name, with the nationality beside the
    number; a missing nationality is asked for at its field."""
    body = passport_holder_named(registry, court, "Anne MARTIN")
    listing_id = publish_one(registry, court, body)
    page.goto(f"/corrections/apply?listing={listing_id}")
    page.get_by_label("申请人姓名或名称").fill("Anne MARTIN")
    page.get_by_label("证件类型").select_option(label="护照")
    page.get_by_label("被执行人的完整证件号码").fill("E1234567")
    page.get_by_label("失信信息应予删除").check()
    page.get_by_label("申请理由").fill("已全部履行。")
    page.get_by_label("联系方式（电话或地址）").fill("13800000000")
    page.get_by_role("button", name="提交申请").click()
    expect(page.get_by_role("alert")).to_contain_text("请填写国籍或注册地国家或地区的三位字母代码")
    country = page.get_by_label("国籍或注册地国家或地区（三位字母代码，如 CAN）")
    expect(country).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("证件类型")).to_have_value("passport")
    accessible(page)
    page.get_by_label("被执行人的完整证件号码").fill("E1234567")
    country.fill("can")
    page.get_by_role("button", name="提交申请").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("纠正申请已提交")

    remove(registry, court, listing_id)
    page.goto(f"/certificates?listing={listing_id}")
    page.get_by_label("证件类型").select_option(label="护照")
    page.get_by_label("被执行人的完整证件号码").fill("E1234567")
    page.get_by_label("国籍或注册地国家或地区（三位字母代码，如 CAN）").fill("CAN")
    page.get_by_role("button", name="出具证明").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("失信信息删除证明")
    token = page.locator("#certificate-token").inner_text().strip()
    page.get_by_text("身份核对码（另行保存，不随证明打印或转交）").click()
    nonce = page.locator("#certificate-nonce").inner_text().strip()

    for nationality, verdict in (("CAN", "号码核对相符"), ("USA", "号码核对不符")):
        page.goto("/certificates/verify?token=" + token)
        page.get_by_label("证件类型").select_option(label="护照")
        page.get_by_label("持有人的完整证件号码").fill("E1234567")
        page.get_by_label("国籍或注册地国家或地区（三位字母代码，如 CAN）").fill(nationality)
        page.get_by_label("身份核对码").fill(nonce)
        page.get_by_role("button", name="核对").click()
        expect(page.locator("#holder-result")).to_contain_text(verdict)
        accessible(page)

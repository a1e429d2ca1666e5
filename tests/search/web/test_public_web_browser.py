"""The public web page in real headless Chromium (Debian's `chromium`, driven by Playwright).

Playwright's own browser download cannot work on these machines, so the tests launch
/usr/bin/chromium and install the Debian package when it is missing (as root, with apt-get);
they are skipped, saying why, only when that installation is impossible.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.support.browser import DESKTOP, PHONE, browser, no_horizontal_scroll, serious_violations
from tests.support.harness import CourtHandle, Registry, run_search_indexer
from tests.support.listings import organization_named, person_named, publish_one
from tests.support.publishing import remove
from tests.support.web import NO_RESULT, masked

# Each module starts Chromium.
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


def search_for(page: Page, text: str) -> None:
    page.goto("/")
    page.get_by_label("被执行人姓名 / 名称，或证件号码").fill(text)
    page.get_by_role("button", name="查询").click()
    # The click returns once the form's navigation has started: read the page once loaded
    # (a loaded machine once read the old page's empty list).
    page.wait_for_url("**/?q=*")


def hits(page: Page) -> list[str]:
    return page.locator("ol.hits h3 a").all_inner_texts()


def test_a_visitor_finds_a_two_character_name_and_opens_the_entry(
    page: Page, registry: Registry, court: CourtHandle, index: Callable[[], int]
) -> None:
    body = person_named(registry, court, "张伟")
    publish_one(registry, court, body)
    publish_one(registry, court, person_named(registry, court, "张伟明"))
    publish_one(registry, court, person_named(registry, court, "李四"))
    index()

    search_for(page, "张伟")
    assert sorted(hits(page)) == ["张伟", "张伟明"]
    expect(page.get_by_role("status")).to_contain_text("共找到 2 条")
    number = body["debtor"]["id_number"]
    item = page.locator("li.hit", has=page.get_by_role("link", name="张伟", exact=True))
    expect(item).to_contain_text(masked(number))

    item.get_by_role("link", name="张伟", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("张伟")
    expect(page.locator("dl.entry")).to_contain_text(masked(number))
    expect(page.locator("dl.entry")).to_contain_text(body["case_number"])
    expect(page.locator("dl.entry")).to_contain_text(court.name)
    assert number not in page.content()
    # Back to the same results.
    page.get_by_role("link", name="返回检索结果").click()
    assert sorted(hits(page)) == ["张伟", "张伟明"]
    expect(page.get_by_label("被执行人姓名 / 名称，或证件号码")).to_have_value("张伟")


def test_pinyin_finds_the_chinese_name(
    page: Page, registry: Registry, court: CourtHandle, index: Callable[[], int]
) -> None:
    publish_one(registry, court, person_named(registry, court, "张伟"))
    index()
    search_for(page, "zhangwei")
    assert hits(page) == ["张伟"]


def test_a_removed_listing_disappears_after_the_indexer_runs(
    page: Page, registry: Registry, court: CourtHandle, index: Callable[[], int]
) -> None:
    listing_id = publish_one(registry, court, person_named(registry, court, "赵敏"))
    index()
    search_for(page, "赵敏")
    assert hits(page) == ["赵敏"]
    detail_url = page.get_by_role("link", name="赵敏").get_attribute("href")
    assert detail_url is not None

    remove(registry, court, listing_id)
    index()
    page.reload()
    assert hits(page) == []
    expect(page.get_by_role("status")).to_contain_text(NO_RESULT)
    answer = page.goto(detail_url)
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("未找到该信息")


def test_no_result_wording(page: Page, registry: Registry, index: Callable[[], int]) -> None:
    search_for(page, "欧阳明月")
    status = page.get_by_role("status")
    expect(status).to_contain_text(NO_RESULT)
    expect(status).to_contain_text("本结果仅反映本名单当前公布的信息")
    # It never claims more than the list shows.
    for claim in ("无失信记录", "信用良好", "未被列入失信"):
        assert claim not in page.content()


def test_keyboard_only_search_and_open(
    page: Page, registry: Registry, court: CourtHandle, index: Callable[[], int]
) -> None:
    publish_one(registry, court, person_named(registry, court, "钱芳"))
    index()
    page.goto("/")
    focused: list[str] = []
    for _ in range(3):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.id || document.activeElement.textContent"))
    # Skip link first, then the site name, then the search field.
    assert focused == ["跳到主要内容", "失信被执行人名单公示查询", "q"]
    # The focused field shows a visible focus ring.
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.type("钱芳")
    page.keyboard.press("Enter")
    page.wait_for_url("**/?q=*")
    assert hits(page) == ["钱芳"]
    # Tab on to the hit's link and follow it with Enter.
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "钱芳":
            break
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("钱芳")


def test_the_page_works_without_javascript(
    browser: Browser, registry: Registry, court: CourtHandle, index: Callable[[], int]
) -> None:
    publish_one(registry, court, person_named(registry, court, "孙丽"))
    index()
    context = browser.new_context(base_url=registry.url, java_script_enabled=False)
    try:
        page = context.new_page()
        search_for(page, "孙丽")
        assert hits(page) == ["孙丽"]
    finally:
        context.close()


def test_on_a_phone_nothing_scrolls_sideways(
    browser: Browser, registry: Registry, court: CourtHandle, index: Callable[[], int]
) -> None:
    long_name = "北京市朝阳区某某某某某某房地产开发经营有限责任公司第一分公司"
    publish_one(registry, court, organization_named(registry, court, long_name))
    index()
    context = browser.new_context(base_url=registry.url, viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto("/")
        assert no_horizontal_scroll(page)
        search_for(page, "房地产开发")
        assert hits(page) == [long_name]
        assert no_horizontal_scroll(page)
        # The field and the button fit the screen and are big enough to tap.
        for box in (
            page.locator("#q").bounding_box(),
            page.get_by_role("button", name="查询").bounding_box(),
        ):
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
            assert box["height"] >= 36
        page.get_by_role("link", name=long_name).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(long_name)
        assert no_horizontal_scroll(page)
    finally:
        context.close()


def test_a_long_name_without_spaces_wraps_on_a_phone(
    browser: Browser, registry: Registry, court: CourtHandle, index: Callable[[], int]
) -> None:
    """A Latin company name is one word to the browser: the result's heading link and the
    entry's h1 break it rather than scroll the page sideways at 390 px."""
    long_name = "Zhongguancun" + "International" * 10 + "CoLtd"  # 147 characters
    publish_one(registry, court, organization_named(registry, court, long_name))
    index()
    context = browser.new_context(base_url=registry.url, viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        search_for(page, "Zhongguancun")
        assert hits(page) == [long_name]
        assert no_horizontal_scroll(page)
        page.get_by_role("link", name=long_name).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(long_name)
        assert no_horizontal_scroll(page)
    finally:
        context.close()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_axe_finds_nothing_serious_on_the_search_pages(
    browser: Browser,
    registry: Registry,
    court: CourtHandle,
    index: Callable[[], int],
    viewport: dict[str, int],
) -> None:
    """The start page, a result list, no result, a refused number and an entry: no serious or
    critical axe-core violation at either width."""
    publish_one(registry, court, person_named(registry, court, "张伟"))
    index()
    context = browser.new_context(base_url=registry.url, locale="zh-CN", viewport=viewport)
    try:
        page = context.new_page()
        page.goto("/")
        assert serious_violations(page) == []
        search_for(page, "张伟")
        assert hits(page) == ["张伟"]
        assert serious_violations(page) == []
        search_for(page, "欧阳无此人")
        expect(page.get_by_role("status")).to_contain_text(NO_RESULT)
        assert serious_violations(page) == []
        search_for(page, "110105194912310021")
        assert serious_violations(page) == []
        search_for(page, "张伟")
        page.get_by_role("link", name="张伟", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("张伟")
        assert serious_violations(page) == []
    finally:
        context.close()


def test_labels_language_and_announced_errors(page: Page, registry: Registry) -> None:
    page.goto("/")
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert (
        page.locator('meta[name="viewport"]').get_attribute("content")
        == "width=device-width, initial-scale=1"
    )
    expect(page.get_by_role("heading", level=1)).to_have_text("失信被执行人查询")
    # Every control is labelled (get_by_label resolves <label for>).
    expect(page.get_by_label("被执行人姓名 / 名称，或证件号码")).to_have_attribute("id", "q")
    expect(page.get_by_label("省份")).to_have_attribute("id", "province")
    expect(page.get_by_role("search")).to_be_visible()

    search_for(page, "11****1949********")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("不支持以部分号码或打码号码查询")
    field = page.get_by_label("被执行人姓名 / 名称，或证件号码")
    expect(field).to_have_attribute("aria-invalid", "true")
    described: Any = field.get_attribute("aria-describedby")
    assert "form-error" in str(described).split()
    expect(field).to_be_focused()
    assert page.title().startswith("错误：")


def test_a_malformed_id_number_is_refused_not_searched(page: Page, registry: Registry) -> None:
    response = page.goto("/?q=110105194912310021")
    assert response is not None and response.status == 400
    expect(page.get_by_role("alert")).to_contain_text("该身份证号码无效")
    assert hits(page) == []
    assert page.locator("section.results").count() == 0


# The sizes the public pages are held to: two phones and a desktop.
SCREENS: list[ViewportSize] = [
    {"width": 390, "height": 844},
    {"width": 360, "height": 740},
    {"width": 1280, "height": 800},
]


@pytest.mark.parametrize("viewport", SCREENS, ids=lambda v: f"{v['width']}x{v['height']}")
def test_an_error_no_page_answers_is_an_accessible_page(
    browser: Browser, registry: Registry, viewport: ViewportSize
) -> None:
    """An unknown address (and a wrong method: a form sent to a page that takes none) opens a
    page in Chinese with the same status: no serious or critical axe-core violation, no
    sideways scrolling, a way home."""
    context = browser.new_context(base_url=registry.url, locale="zh-CN", viewport=viewport)
    try:
        page = context.new_page()
        for path in ("/defaulters", "/nope/" + "x" * 80):
            response = page.goto(path)
            assert response is not None and response.status == 404
            assert page.get_attribute("html", "lang") == "zh-CN"
            expect(page.get_by_role("heading", level=1)).to_have_text("页面不存在")
            assert serious_violations(page) == []
            assert no_horizontal_scroll(page)
        page.get_by_role("link", name="返回首页").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("失信被执行人查询")
    finally:
        context.close()

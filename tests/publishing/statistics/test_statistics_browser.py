"""The statistics page and the oversight dashboard in real headless Chromium, at phone and
desktop widths: axe finds nothing serious or critical, nothing scrolls sideways, and the
charts render (a screenshot of each chart shows the bars' colour)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from publishing.statistics.reader import READER
from publishing.sync.notices import notice_reader
from registry.clients.services import create_client
from registry.eventlog.readers import follow_sync, step
from registry.timeutil import utcnow
from tests.publishing.statistics.test_statistics_pages import listed_today
from tests.support.browser import DESKTOP, PHONE, browser, no_horizontal_scroll, serious_violations
from tests.support.harness import CourtHandle, Registry
from tests.support.listings import post_removal, removal_body

pytestmark = pytest.mark.slow
__all__ = ["browser"]  # the module's Chromium (tests/support/browser.py)

BAR = (0x8B, 0x1C, 0x1C)  # the first series' colour (publishing/statistics/charts.py)


def bar_pixels(png: bytes) -> int:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return sum(
        1
        for r, g, b in image.get_flattened_data()
        if abs(r - BAR[0]) < 24 and abs(g - BAR[1]) < 24 and abs(b - BAR[2]) < 24
    )


def charts_render(page: Page) -> None:
    images = page.locator("figure.chart img")
    assert images.count() >= 3
    drawn = 0
    for index in range(images.count()):
        image = images.nth(index)
        image.scroll_into_view_if_needed()
        # Loaded and decoded: a broken image has no natural width.
        assert image.evaluate("img => img.complete && img.naturalWidth > 0"), image.get_attribute("src")
        box = image.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 60
        shot = image.screenshot()
        if os.environ.get("REGISTRY_TEST_SCREENSHOTS"):
            Path(os.environ["REGISTRY_TEST_SCREENSHOTS"], f"chart{index}.png").write_bytes(shot)
        drawn += bar_pixels(shot) > 50
    assert drawn >= 2, "the charts show no bars"


@pytest.fixture
def figures(registry: Registry, court: CourtHandle) -> CourtHandle:
    """Twelve listings today, four of them civil servants; six removed on time; one agency
    whose notices were all issued a month ago and are overdue."""
    with registry.engine.begin() as conn:
        client_id, _ = create_client(conn, "中国人民银行征信中心", "agency", None, actor="test", now=utcnow())
    with registry.http(registry.client("admin")) as admin:
        body = {"client_id": client_id, "profile": "credit_reference", "mode": "pull"}
        assert admin.post("/v1/sync/subscriptions", json=body).status_code == 201
    ids = listed_today(registry, court, 12, special=4)
    for listing_id in ids[:6]:
        removal = removal_body(listing_id, registry.today)
        assert post_removal(registry, court, listing_id, removal).status_code == 200
    follow_sync(registry.engine, READER)
    with registry.engine.begin() as conn:
        step(conn, notice_reader(3), utcnow() - timedelta(days=30))
    return court


@pytest.fixture(params=["phone", "desktop"])
def viewport(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "phone":
        return {"viewport": PHONE, "is_mobile": True, "has_touch": True}
    return {"viewport": DESKTOP}


def _context(browser: Browser, registry: Registry, viewport: dict[str, Any], **extra: Any) -> Iterator[Page]:
    context = browser.new_context(base_url=registry.url, locale="zh-CN", **viewport, **extra)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_the_public_page_is_accessible_and_its_charts_render(
    browser: Browser, registry: Registry, figures: CourtHandle, viewport: dict[str, Any]
) -> None:
    for page in _context(browser, registry, viewport):
        page.goto("/statistics")
        expect(page.get_by_role("heading", level=1)).to_have_text("失信被执行人名单统计")
        assert page.get_attribute("html", "lang") == "zh-CN"
        expect(page.get_by_label("开始日期")).to_have_attribute("type", "date")
        expect(page.get_by_label("省份", exact=True)).to_be_visible()
        assert serious_violations(page) == []
        assert no_horizontal_scroll(page)
        charts_render(page)
        # The filter form works without script: one province, by day.
        page.get_by_label("统计周期").select_option("day")
        page.get_by_label("开始日期").fill(registry.today.isoformat())
        page.get_by_role("button", name="查询").click()
        page.wait_for_url("**/statistics?*")
        expect(page.locator("section", has=page.get_by_role("heading", name="按省份"))).to_contain_text(
            "北京"
        )
        assert serious_violations(page) == []


def test_a_bad_date_is_announced(browser: Browser, registry: Registry, viewport: dict[str, Any]) -> None:
    for page in _context(browser, registry, viewport):
        response = page.goto("/statistics?from=2026-02-30")
        assert response is not None and response.status == 400
        expect(page.get_by_role("alert")).to_contain_text("有效日期")
        expect(page.get_by_label("开始日期")).to_have_attribute("aria-invalid", "true")
        assert serious_violations(page) == []


def test_the_dashboard_is_accessible_and_its_charts_render(
    browser: Browser, registry: Registry, figures: CourtHandle, viewport: dict[str, Any]
) -> None:
    admin_key = registry.client("admin")
    headers = {"Authorization": f"Bearer {admin_key}"}
    for page in _context(browser, registry, viewport, extra_http_headers=headers):
        page.goto("/oversight")
        expect(page.get_by_role("heading", level=1)).to_have_text("执行联动监督")
        expect(page.get_by_role("heading", name="删除失信信息及时率（三个工作日内）")).to_be_visible()
        timeliness = page.locator(
            "section", has=page.get_by_role("heading", name="删除失信信息及时率（三个工作日内）")
        )
        expect(timeliness).to_contain_text(figures.name)
        expect(timeliness).to_contain_text("100.0%")
        notices = page.get_by_role("region", name="协助执行通知办理情况（按协助单位）").last
        expect(notices).to_contain_text("中国人民银行征信中心")
        notices = page.get_by_role("region", name="协助执行通知办理情况（按协助单位）").last
        expect(notices).to_contain_text("中国人民银行征信中心")
        assert serious_violations(page) == []
        assert no_horizontal_scroll(page)
        charts_render(page)
    for page in _context(
        browser, registry, viewport, extra_http_headers={"Authorization": f"Bearer {figures.api_key}"}
    ):
        page.goto("/oversight")
        expect(page.get_by_text(f"本院（{figures.code}）数据")).to_be_visible()
        assert serious_violations(page) == []

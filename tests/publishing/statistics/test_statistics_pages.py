"""The public statistics page and the oversight dashboard over HTTP: Chinese, the public
page's CSP, charts as SVG images without script, small cells hidden in page and chart,
bad input answered with the form and a 400, the dashboard guarded and scoped to a court."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import httpx

from publishing.statistics.reader import READER
from registry.eventlog.readers import follow_sync
from tests.support.harness import CourtHandle, Registry
from tests.support.listings import publish_many

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def listed_today(registry: Registry, court: CourtHandle, count: int, special: int = 0) -> list[str]:
    """`count` listings dated today, the first `special` of them persons marked civil servants."""
    today = registry.today.isoformat()
    bodies = []
    for index in range(count):
        if index < special:
            body = registry.person_listing(court, listed_on=today, filed_on=today)
            body["special_subject"] = {"category": "civil_servant"}
        else:
            body = registry.listing(court, listed_on=today, filed_on=today)
        body["case_number"] = registry.generator.case_number(court.code, registry.today.year)
        body["term_years"] = None
        body["grounds"] = ["able_but_refuses"]
        bodies.append(body)
    return publish_many(registry, court, bodies)


def test_the_public_page_is_chinese_under_the_csp_with_svg_charts(
    registry: Registry, court: CourtHandle
) -> None:
    listed_today(registry, court, 6)
    other = registry.court("沪0115", "上海市浦东新区人民法院", "31")
    listed_today(registry, other, 2)
    follow_sync(registry.engine, READER)
    with registry.http() as anyone:
        page = anyone.get("/statistics")
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == CSP
        html = page.text
        assert '<html lang="zh-CN">' in html and "失信被执行人名单统计" in html
        assert "<script" not in html
        # 北京: six, shown; 上海: two, hidden.
        assert re.search(r"<th scope=\"row\">北京</th><td>6</td>", html)
        assert re.search(r"<th scope=\"row\">上海</th><td>&lt;5</td>", html)
        sources = re.findall(r'<img src="([^"]+)"', html)
        assert len(sources) == 5
        for source in sources:
            chart = anyone.get(source.replace("&amp;", "&"))
            assert chart.status_code == 200, source
            assert chart.headers["content-type"].startswith("image/svg+xml")
            assert b"<script" not in chart.content
            ET.fromstring(chart.content)  # well-formed
        # The province chart draws 北京's six and not 上海's hidden two.
        provinces = anyone.get(next(s for s in sources if "provinces" in s).replace("&amp;", "&")).text
        assert "北京" in provinces
        bars = re.findall(r'class="rect reactive tooltip-trigger"', provinces)
        assert len(bars) == 1
        assert anyone.get("/statistics/charts/nothing.svg").status_code == 404


def test_bad_input_answers_the_form_with_the_reason(registry: Registry) -> None:
    with registry.http() as anyone:
        page = anyone.get("/statistics", params={"from": "2026-02-30"})
    assert page.status_code == 400
    assert 'role="alert"' in page.text and "有效日期" in page.text
    assert 'id="from" name="from" value="2026-02-30" aria-invalid="true"' in page.text
    assert "<title>错误：" in page.text


def test_the_dashboard_is_guarded_and_a_court_sees_its_own(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    listed_today(registry, court, 1)
    follow_sync(registry.engine, READER)
    with registry.http() as anyone:
        assert anyone.get("/oversight").status_code == 401
        assert anyone.get("/oversight/charts/removal_timeliness.svg").status_code == 401
    page = admin.get("/oversight", params={"from": (registry.today - timedelta(days=30)).isoformat()})
    assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
    for title in (
        "删除失信信息及时率",
        "协助执行通知办理情况",
        "特殊主体失信被执行人履行情况",
        "协助单位接收时效",
        "金融机构查询量",
    ):
        assert title in page.text
    assert 'name="court"' in page.text  # an admin may choose a court
    for key in ("removal_timeliness", "notices_by_agency", "special_subjects"):
        chart = admin.get(f"/oversight/charts/{key}.svg")
        assert chart.status_code == 200 and chart.headers["content-type"].startswith("image/svg+xml")
    with registry.http(court.api_key) as own:
        mine = own.get("/oversight")
        assert mine.status_code == 200 and f"本院（{court.code}）" in mine.text
        assert 'name="court"' not in mine.text
        # A subscription or a bank's checks are no court's business.
        assert "协助单位接收时效" not in mine.text and "金融机构查询量" not in mine.text
        assert own.get("/oversight", params={"court": "沪0115"}).status_code == 403

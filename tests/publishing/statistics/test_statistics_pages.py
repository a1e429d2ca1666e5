"""The public statistics page and the oversight dashboard over HTTP: Chinese, the public
page's CSP, charts as SVG images without script, small cells hidden in page and chart,
bad input answered with the form and a 400, past the public rate limit the reason in Chinese,
the dashboard guarded and scoped to a court, its codes shown in Chinese."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import httpx

from publishing.statistics.oversight import MODE_NAMES, PROFILE_NAMES, PURPOSE_NAMES
from publishing.statistics.reader import READER
from publishing.sync.notices import notice_reader
from publishing.sync.profiles import PROFILES
from publishing.sync.services import MODES
from registry.checks.schemas import PURPOSES
from registry.clients.services import create_client
from registry.eventlog.readers import follow_sync, step
from registry.settings import Settings
from registry.timeutil import utcnow
from service.app import create_app
from tests.support.checks import bank
from tests.support.corrections import application, apply, dismiss
from tests.support.harness import CourtHandle, Registry, serve_app
from tests.support.listings import person_named, publish_many, publish_one

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
        body.pop("extension", None)  # no term, no extension
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


def test_a_parameter_given_twice_is_refused_on_the_page_and_its_charts_as_by_the_api(
    registry: Registry,
) -> None:
    """Of two provinces, which was meant is a guess: the page showed the first, the API
    refused both; now both refuse, and so do the charts."""
    twice = "province=11&province=12"
    with registry.http() as anyone:
        page = anyone.get(f"/statistics?{twice}")
        chart = anyone.get(f"/statistics/charts/series.svg?{twice}")
        api = anyone.get(f"/v1/statistics/listings?{twice}")
    assert api.status_code == 400 and api.json()["code"] == "repeated_parameter"
    assert page.status_code == 400
    assert 'role="alert"' in page.text and "同一查询条件只能填写一个" in page.text
    assert (chart.status_code, chart.json()["code"]) == (400, "repeated_parameter")


def test_past_the_public_rate_limit_a_person_reads_why_and_a_program_gets_the_problem(
    settings: Settings,
) -> None:
    limited = settings.override(server={"public_rate_limit": "2/minute"})
    browser = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    with serve_app(create_app(limited, run_scheduler=False)) as url, httpx.Client(base_url=url) as http:
        codes = [http.get("/statistics", headers=browser).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        page = http.get("/statistics", headers=browser)
        problem = http.get("/statistics", headers={"Accept": "application/json"})
    assert page.status_code == 429 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CSP
    assert '<html lang="zh-CN">' in page.text
    assert f"请在 {page.headers['retry-after']} 秒后再试" in page.text
    assert problem.status_code == 429 and problem.json()["code"] == "rate_limited"


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
        "纠正申请与复议办理情况",
        "协助执行通知办理情况",
        "特殊主体失信被执行人履行情况",
        "协助单位接收时效",
        "金融机构查询量",
    ):
        assert title in page.text
    assert 'name="court"' in page.text  # an admin may choose a court
    for key in ("removal_timeliness", "corrections", "notices_by_agency", "special_subjects"):
        chart = admin.get(f"/oversight/charts/{key}.svg")
        assert chart.status_code == 200 and chart.headers["content-type"].startswith("image/svg+xml")
    with registry.http(court.api_key) as own:
        mine = own.get("/oversight")
        assert mine.status_code == 200 and f"本院（{court.code}）" in mine.text
        assert 'name="court"' not in mine.text
        # A subscription or a bank's checks are no court's business.
        assert "协助单位接收时效" not in mine.text and "金融机构查询量" not in mine.text
        assert own.get("/oversight", params={"court": "沪0115"}).status_code == 403


def test_the_dashboard_and_its_csvs_show_words_where_the_json_keeps_codes(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    """Agency profiles, delivery modes, subscription states, check purposes and special
    subjects: a person reads them in Chinese (page, chart, CSV), a program as codes (JSON)."""
    with registry.engine.begin() as conn:
        client_id, _ = create_client(conn, "中国人民银行征信中心", "agency", None, actor="test", now=utcnow())
    subscription = {"client_id": client_id, "profile": "credit_reference", "mode": "pull"}
    assert admin.post("/v1/sync/subscriptions", json=subscription).status_code == 201
    listed_today(registry, court, 3, special=2)
    follow_sync(registry.engine, READER)
    with registry.engine.begin() as conn:
        step(conn, notice_reader(3), utcnow() - timedelta(days=30))
    _, checks = bank(registry, "某某银行股份有限公司")
    with checks:
        asked = {
            "purpose": "loan_application",
            "reference": "r1",
            "subjects": [{"id_number": "11010519491231002X"}],
        }
        assert checks.post("/v1/checks", json=asked).status_code == 200
    params = {"from": (registry.today - timedelta(days=30)).isoformat()}

    page = admin.get("/oversight", params=params).text
    for words in ("征信系统", "拉取", "正常", "新增贷款或授信审批", "公务员"):
        assert f">{words}<" in page, words
    tables = re.findall(r"<table.*?</table>", page, re.S)
    assert len(tables) == 6
    for table in tables:
        text = re.sub(r"<[^>]+>", "", table)
        assert not re.search(r"[A-Za-z]", text), text
    chart = admin.get("/oversight/charts/notices_by_agency.svg", params=params).text
    assert "中国人民银行征信中心（征信系统）" in chart and "credit_reference" not in chart

    sections = {s["key"]: s for s in admin.get("/v1/oversight/summary", params=params).json()["sections"]}
    for key in sections:
        response = admin.get(f"/v1/oversight/summary/{key}/csv", params=params)
        assert response.status_code == 200 and response.content.startswith(b"\xef\xbb\xbf")
        text = response.content.decode("utf-8-sig")
        assert not re.search(r"[A-Za-z]", text), text
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == [c["label"] for c in sections[key]["columns"]]
    lag = admin.get("/v1/oversight/summary/delivery_lag/csv", params=params).content.decode("utf-8-sig")
    assert "中国人民银行征信中心,征信系统,拉取,正常," in lag

    # The JSON keeps the codes.
    assert sections["notices_by_agency"]["rows"][0]["profile"] == "credit_reference"
    lag_row = sections["delivery_lag"]["rows"][0]
    assert (lag_row["profile"], lag_row["mode"], lag_row["state"]) == ("credit_reference", "pull", "active")
    assert sections["bank_checks"]["rows"][0]["purpose"] == "loan_application"
    assert {r["category"] for r in sections["special_subjects"]["rows"]} >= {"civil_servant", "party_member"}


def test_every_profile_mode_and_purpose_has_its_words() -> None:
    """A code added to sync or checks without its Chinese would reach the dashboard as itself."""
    assert PROFILE_NAMES.keys() == PROFILES.keys()
    assert set(MODE_NAMES) == set(MODES)
    assert PURPOSE_NAMES.keys() == PURPOSES.keys()


def test_the_dashboard_counts_each_court_s_corrections_against_their_deadlines(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    """Issue 17 and SPC Art. 11-12: applications filed in the period by the listing court,
    reviewed (within the fifteen days or late), upheld, reconsidered, carried out."""
    first = publish_one(registry, court, (body := person_named(registry, court, "周杰")))
    second = publish_one(registry, court, (other := person_named(registry, court, "吴敏")))
    receipts = [apply(registry, application(first, body)), apply(registry, application(second, other))]
    assert [r.status_code for r in receipts] == [201, 201]
    number = receipts[0].json()["application_number"]
    dismiss(registry, court, number, first)
    params = {"from": registry.today.isoformat(), "to": registry.today.isoformat()}
    sections = {s["key"]: s for s in admin.get("/v1/oversight/summary", params=params).json()["sections"]}
    [row] = sections["corrections"]["rows"]
    assert row == {
        "court": court.code, "court_name": court.name, "filed": 2, "found": 0, "reviewed": 1,
        "reviewed_late": 0, "review_overdue": 0, "review_on_time_rate": 1.0, "upheld": 0,
        "reconsideration_asked": 0, "reconsideration_late": 0, "carried_out": 0, "carried_out_late": 0,
    }  # fmt: skip
    with registry.http(court.api_key) as own:
        mine = {s["key"]: s for s in own.get("/v1/oversight/summary", params=params).json()["sections"]}
    assert mine["corrections"]["rows"] == [row]
    csv_text = admin.get("/v1/oversight/summary/corrections/csv", params=params).content.decode("utf-8-sig")
    assert "当事人申请" in csv_text and court.name in csv_text
    assert ",100.0%," in csv_text  # the rate as the dashboard shows it, not 1.0

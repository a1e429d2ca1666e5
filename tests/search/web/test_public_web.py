"""The public web page over HTTP: real listings published by a court, indexed by the real
indexer, served by the session server. (The browser tests are in test_public_web_browser.py.)"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from registry.settings import Settings
from service.app import create_app
from tests.support.harness import CourtHandle, Registry, run_search_indexer, serve_app
from tests.support.listings import passport_holder_named, person_named, publish_one
from tests.support.publishing import remove
from tests.support.web import NO_RESULT, masked

ORG_CODE = "91110000600037341L"


@pytest.fixture
def index(engine: sa.Engine) -> Callable[[], int]:
    """Runs the search indexer over the event log (what the scheduler's job does every 0.5 s)."""
    return functools.partial(run_search_indexer, engine)


def organization(registry: Registry, court: CourtHandle, name: str) -> dict[str, Any]:
    body = registry.listing(court)
    body["debtor"] = {
        "kind": "organization",
        "name": name,
        "credit_code": ORG_CODE,
        "legal_representative": "王建国",
    }
    return body


def page(url: str, **params: str) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=30) as client:
        return client.get("/", params=params)


def hit_names(html: str) -> list[str]:
    return re.findall(r'<h3><a href="/defaulters/[0-9A-Z]{26}[^"]*">([^<]*)</a></h3>', html)


def results(html: str) -> str:
    """The result section of a page."""
    start = html.index('<section class="results"')
    return html[start : html.index("</section>", start)]


def test_a_two_character_name_is_found_with_the_art6_fields(
    registry: Registry, court: CourtHandle, index: Callable[[], int]
) -> None:
    body = person_named(
        registry,
        court,
        "张伟",
        amount_cents=1_334_567,
        performance={"status": "partial", "performed_cents": 100_000, "unperformed_cents": 1_234_567},
        grounds=["able_but_refuses"],
        term_years=None,
    )
    listing_id = publish_one(registry, court, body)
    publish_one(registry, court, person_named(registry, court, "李四"))
    index()

    found = page(registry.url, q="张伟")
    assert found.status_code == 200
    assert hit_names(found.text) == ["张伟"]
    number = body["debtor"]["id_number"]
    assert masked(number) in found.text
    assert number not in found.text

    with httpx.Client(base_url=registry.url) as client:
        detail = client.get(f"/defaulters/{listing_id}", params={"q": "张伟", "page": "1"})
    assert detail.status_code == 200
    html = detail.text
    assert number not in html
    for shown in (
        masked(number),
        court.name,
        body["case_number"],
        body["basis"]["document_number"],
        body["basis"]["issuer"],
        "部分未履行",
        "已履行部分：1,000.00 元",
        "未履行部分：12,345.67 元",
        "有履行能力而拒不履行生效法律文书确定义务",
        "男" if body["debtor"]["id_number"][16] in "13579" else "女",
    ):
        assert shown in html, shown
    # The age in words, as the feeds give it.
    assert re.search(r"<dt>公布时年龄</dt><dd>[0-9]+岁</dd>", html)
    # The back link returns to the same search.
    assert 'href="/?q=%E5%BC%A0%E4%BC%9F&amp;page=1"' in html


def test_an_organisation_is_found_by_part_of_its_name_and_by_its_credit_code(
    registry: Registry, court: CourtHandle, index: Callable[[], int]
) -> None:
    publish_one(registry, court, organization(registry, court, "北京星河建筑工程有限公司"))
    index()
    assert hit_names(page(registry.url, q="星河建筑").text) == ["北京星河建筑工程有限公司"]
    by_code = page(registry.url, q=ORG_CODE.lower())
    assert hit_names(by_code.text) == ["北京星河建筑工程有限公司"]
    # An organisation's code is public registration data (SPC Art. 6): shown in full.
    assert ORG_CODE in results(by_code.text)
    assert f"<title>“{ORG_CODE}”" in by_code.text
    assert f'value="{ORG_CODE}"' in by_code.text
    assert "王建国" not in by_code.text  # the legal representative is on the detail page only


def test_an_organisation_code_in_the_field_finds_its_holder_and_pages_on_its_hyphenated_form(
    registry: Registry, court: CourtHandle, index: Callable[[], int]
) -> None:
    """An organisation code typed without its hyphen is shown and carried with it: nine
    digits without one are refused (they may be a passport's), so a page link must keep it."""
    body = organization(registry, court, "南京组织代码测试有限公司")
    del body["debtor"]["credit_code"]
    body["debtor"]["organization_code"] = "60003734-1"
    publish_one(registry, court, body)
    index()
    found = page(registry.url, q="60003734-1")
    assert found.status_code == 200
    assert hit_names(found.text) == ["南京组织代码测试有限公司"]
    assert "<title>“60003734-1”" in found.text and 'value="60003734-1"' in found.text
    wrong = page(registry.url, q="60003734-2")
    assert wrong.status_code == 400 and "该组织机构代码无效" in wrong.text
    bare = page(registry.url, q="600037341")
    assert bare.status_code == 400 and "带连字符的组织机构代码" in bare.text


def test_parameters_the_page_does_not_read_are_ignored(
    registry: Registry, court: CourtHandle, index: Callable[[], int]
) -> None:
    """Links from elsewhere carry utm_ tags; the page has no court field (the API refuses
    an unknown court, and any parameter it does not take)."""
    publish_one(registry, court, person_named(registry, court, "审计丙丁"))
    index()
    answer = page(registry.url, q="审计丙丁", utm_source="weibo", court="沪9999")
    assert answer.status_code == 200
    assert hit_names(answer.text) == ["审计丙丁"]


def test_each_number_is_labelled_with_the_document_it_is_of(
    registry: Registry, court: CourtHandle, index: Callable[[], int]
) -> None:
    """A passport's number is not a 身份证号码, nor a foreign registration a 统一社会信用代码."""
    resident = person_named(registry, court, "欧阳明")
    passport = passport_holder_named(registry, court, "欧阳明")
    registered = organization(registry, court, "欧阳明贸易有限公司")
    del registered["debtor"]["credit_code"]
    registered["debtor"]["registration"] = {"country": "GBR", "number": "SC123456"}
    ids = {
        "居民身份证": publish_one(registry, court, resident),
        "护照": publish_one(registry, court, passport),
        "境外注册号": publish_one(registry, court, registered),
    }
    index()
    found = results(page(registry.url, q="欧阳明").text)
    assert sorted(re.findall(r"<dt>([^<]*)</dt><dd class=\"num\">", found)) == sorted(ids)
    # The issuing country by its Chinese name, not its ISO code (CAN, GBR).
    shown = {"护照": "加拿大 *********", "境外注册号": "英国 SC123456"}
    numbers = dict(re.findall(r"<dt>([^<]*)</dt><dd class=\"num\">([^<]*)</dd>", found))
    assert {label: numbers[label] for label in shown} == shown
    with httpx.Client(base_url=registry.url) as client:
        for label, listing_id in ids.items():
            entry = client.get(f"/defaulters/{listing_id}").text
            assert re.findall(r"<dt>([^<]*)</dt><dd class=\"num\">", entry) == [label]
            if label in shown:
                assert f'<dd class="num">{shown[label]}</dd>' in entry


def test_a_full_id_number_finds_its_holder_only(
    registry: Registry, court: CourtHandle, index: Callable[[], int]
) -> None:
    first = person_named(registry, court, "王芳")
    publish_one(registry, court, first)
    publish_one(registry, court, person_named(registry, court, "王芳"))
    index()
    assert hit_names(page(registry.url, q="王芳").text) == ["王芳", "王芳"]
    number = first["debtor"]["id_number"]
    # Spaces and full-width digits as people paste them.
    spaced = " ".join([number[:6], number[6:14], number[14:]]).translate(
        str.maketrans("0123456789", "０１２３４５６７８９")
    )
    exact = page(registry.url, q=spaced)
    assert exact.status_code == 200
    assert hit_names(exact.text) == ["王芳"]
    assert masked(number) in results(exact.text)
    assert number not in results(exact.text)


def test_no_result_says_only_what_the_list_shows(
    registry: Registry, court: CourtHandle, index: Callable[[], int]
) -> None:
    publish_one(registry, court, person_named(registry, court, "张伟"))
    index()
    answer = page(registry.url, q="欧阳明月")
    assert answer.status_code == 200
    assert NO_RESULT in answer.text
    assert "仅反映本名单当前公布的信息" in answer.text
    assert hit_names(answer.text) == []
    # The province filter is a condition like the name: 张伟 is listed in Beijing, not Shanghai.
    assert NO_RESULT in page(registry.url, q="张伟", province="31").text
    assert hit_names(page(registry.url, q="张伟", province="11").text) == ["张伟"]


def test_a_common_name_can_be_narrowed_by_province(
    registry: Registry, court: CourtHandle, index: Callable[[], int]
) -> None:
    shanghai = registry.court("沪0101", "上海市黄浦区人民法院", "31")
    publish_one(registry, court, person_named(registry, court, "刘洋"))
    publish_one(registry, court, person_named(registry, court, "刘洋"))
    publish_one(registry, shanghai, person_named(registry, shanghai, "刘洋"))
    index()
    everywhere = page(registry.url, q="刘洋")
    assert len(hit_names(everywhere.text)) == 3
    facets = re.findall(r'<li><a href="/\?([^"]+)">([^<]+)</a></li>', everywhere.text)
    assert [label for _, label in facets] == ["北京（2）", "上海（1）"]
    in_shanghai = httpx.get(f"{registry.url}/?{facets[1][0].replace('&amp;', '&')}")
    assert hit_names(in_shanghai.text) == ["刘洋"]
    assert "上海市黄浦区人民法院" in results(in_shanghai.text)
    assert "按省份筛选" not in in_shanghai.text


def test_a_removed_listing_leaves_the_page_once_indexed(
    registry: Registry, court: CourtHandle, index: Callable[[], int]
) -> None:
    listing_id = publish_one(registry, court, person_named(registry, court, "赵敏"))
    index()
    assert hit_names(page(registry.url, q="赵敏").text) == ["赵敏"]
    remove(registry, court, listing_id)
    index()
    assert NO_RESULT in page(registry.url, q="赵敏").text
    with httpx.Client(base_url=registry.url) as client:
        gone = client.get(f"/defaulters/{listing_id}")
    assert gone.status_code == 404
    assert "未找到该信息" in gone.text


def test_results_are_paged_twenty_at_a_time(
    registry: Registry, court: CourtHandle, index: Callable[[], int]
) -> None:
    names = [f"孙{'一二三四五六七八九十'[i % 10]}光" for i in range(23)]
    envelopes = [registry.envelope(court, person_named(registry, court, name)) for name in names]
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings/batch", json={"envelopes": envelopes})
    assert response.status_code == 200, response.text
    index()
    # One character needs a province (search.text.too_broad); the page keeps it in its links.
    first = page(registry.url, q="孙", province=court.province_code)
    assert len(hit_names(first.text)) == 20
    assert "共找到 23 条" in first.text
    assert 'href="/?q=%E5%AD%99&amp;page=2&amp;province=11" rel="next"' in first.text
    second = page(registry.url, q="孙", province=court.province_code, page="2")
    assert len(hit_names(second.text)) == 3
    assert 'href="/?q=%E5%AD%99&amp;page=1&amp;province=11" rel="prev"' in second.text
    beyond = page(registry.url, q="孙", province=court.province_code, page="3")
    assert beyond.status_code == 404
    assert "检索结果共 2 页" in beyond.text


def test_past_the_exact_count_limit_the_page_says_more_than_and_pages_on(
    registry: Registry, court: CourtHandle, index: Callable[[], int], settings: Settings
) -> None:
    """REGISTRY_SEARCH_EXACT_COUNT_LIMIT: past it, the page claims no count it did not make
    (no "共 N 条", no last page) and offers the next page while a page is full."""
    names = [f"祁{'一二三四五六七八九十'[i % 10]}光" for i in range(23)]
    envelopes = [registry.envelope(court, person_named(registry, court, name)) for name in names]
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings/batch", json={"envelopes": envelopes})
    assert response.status_code == 200, response.text
    index()
    limited = settings.override(search={"exact_count_limit": 21})
    with serve_app(create_app(limited, run_scheduler=False)) as url:
        first = page(url, q="祁", province=court.province_code)
        assert len(hit_names(first.text)) == 20
        assert "找到超过 21 条" in first.text and "共找到" not in first.text and "共 " not in first.text
        assert 'href="/?q=%E7%A5%81&amp;page=2&amp;province=11" rel="next"' in first.text
        second = page(url, q="祁", province=court.province_code, page="2")
        assert len(hit_names(second.text)) == 3
        assert 'rel="prev"' in second.text and 'rel="next"' not in second.text
        beyond = page(url, q="祁", province=court.province_code, page="3")
        assert beyond.status_code == 404
        assert "该页不存在" in beyond.text
    assert "共找到 23 条" in page(registry.url, q="祁", province=court.province_code).text


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"q": ""}, 400, "请输入被执行人姓名、名称或完整的证件号码"),
        ({"q": "张" * 65}, 400, "检索内容过长"),
        ({"q": "王"}, 400, "请同时选择省份"),
        ({"q": "有限公司"}, 400, "组织形式用语不能单独检索"),
        ({"q": "有限公司", "province": "11"}, 400, "组织形式用语不能单独检索"),
        ({"q": "张" * 1000}, 400, "检索内容过长"),
        ({"q": "张\x00伟"}, 400, "控制字符"),
        ({"q": "张\x1b[31m伟"}, 400, "控制字符"),
        ({"q": "!!!"}, 400, "至少一个汉字、字母或数字"),
        ({"q": "110105194912310021"}, 400, "该身份证号码无效"),
        ({"q": "91110000600037341A"}, 400, "该统一社会信用代码无效"),
        ({"q": "1101051949****002X"}, 400, "不支持以部分号码或打码号码查询"),
        ({"q": "11010519491231"}, 400, "请输入完整的 18 位"),
        ({"q": "张伟 11010519491231002X"}, 400, "不要与姓名一并输入"),
        ({"q": "١١٠١٠٥١٩٤٩١٢٣١٠٠٢X"}, 400, "请输入完整的 18 位"),
        ({"q": "张伟", "province": "99"}, 400, "请从列表中选择省份"),
        ({"q": "张伟", "province": "11' OR 1=1 --"}, 400, "请从列表中选择省份"),
        ({"q": "张伟", "page": "0"}, 400, "页码须为"),
        ({"q": "张伟", "page": "abc"}, 400, "页码须为"),
        ({"q": "张伟", "page": "99999999999999999999"}, 400, "页码须为"),
        ({"q": "张伟", "page": "501"}, 400, "页码须为"),
        ({"q": "张伟", "page": "2"}, 404, "该页不存在"),
    ],
)
def test_bad_input_is_answered_on_the_page_with_a_4xx(
    registry: Registry, index: Callable[[], int], params: dict[str, str], status: int, message: str
) -> None:
    answer = page(registry.url, **params)
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("text/html")
    assert message in answer.text
    assert 'role="alert"' in answer.text


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("q=x&q=审计甲乙", "q"),
        ("q=审计甲乙&q=x", "q"),
        ("q=审计甲乙&province=11&province=12", "province"),
        ("q=审计甲乙&page=1&page=2", "page"),
    ],
)
def test_a_repeated_parameter_is_refused_on_the_page_as_by_the_api(
    registry: Registry, index: Callable[[], int], query: str, field: str
) -> None:
    with httpx.Client(base_url=registry.url, timeout=30) as client:
        answer = client.get(f"/?{query}")
        api = client.get(f"/v1/public/defaulters?{query}")
    assert (api.status_code, api.json()["code"]) == (400, "repeated_parameter")
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")
    assert 'role="alert"' in answer.text
    assert "只能填写一个" in answer.text
    assert "检索结果" not in answer.text
    if field in ("q", "province"):
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', answer.text, re.S)


@pytest.mark.parametrize(
    "params",
    [
        {"q": "张伟", "id_type": "passport"},
        {"id_type": "resident_id"},
        {"nationality": "CAN"},
        {"q": "张伟", "nationality": "CAN", "province": "11"},
    ],
)
def test_an_id_type_or_nationality_without_a_number_is_refused_on_the_page_as_by_the_api(
    registry: Registry, index: Callable[[], int], params: dict[str, str]
) -> None:
    with httpx.Client(base_url=registry.url, timeout=30) as client:
        answer = client.get("/", params=params)
        api = client.get("/v1/public/defaulters", params=params)
    assert (api.status_code, api.json()["code"]) == (400, "invalid_parameter")
    assert answer.status_code == 400
    assert 'role="alert"' in answer.text
    assert "须与完整的证件号码一并提供" in answer.text
    assert "检索结果" not in answer.text


def test_a_number_in_the_field_beside_an_id_type_is_refused_on_the_page_as_by_the_api(
    registry: Registry, index: Callable[[], int]
) -> None:
    params = {"q": "11010519491231002X", "id_type": "passport"}
    with httpx.Client(base_url=registry.url, timeout=30) as client:
        answer = client.get("/", params=params)
        api = client.get("/v1/public/defaulters", params=params)
    assert (api.status_code, api.json()["code"]) == (400, "conflicting_identifiers")
    assert answer.status_code == 400
    assert "请只输入一个证件号码" in answer.text
    assert "11010519491231002X" not in answer.text.split('id="q"')[0]  # not in the title


def test_what_the_visitor_typed_is_escaped(registry: Registry, index: Callable[[], int]) -> None:
    answer = page(registry.url, q='"><script>alert(1)</script>')
    assert answer.status_code == 200
    assert "<script>" not in answer.text
    assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in answer.text
    # And the page forbids scripts outright.
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize("listing_id", ["nope", "01J0000000000000000000NONE", "0" * 26, "A" * 500])
def test_an_unknown_entry_is_a_404_page(registry: Registry, listing_id: str) -> None:
    with httpx.Client(base_url=registry.url) as client:
        answer = client.get(f"/defaulters/{listing_id}")
    assert answer.status_code == 404
    assert "未找到该信息" in answer.text


def test_the_empty_form(registry: Registry) -> None:
    answer = page(registry.url)
    assert answer.status_code == 200
    assert '<label for="q">' in answer.text
    assert '<label for="province">' in answer.text
    assert "检索结果" not in answer.text

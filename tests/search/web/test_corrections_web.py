"""The correction pages over plain HTTP: headers, escaping, refusals in words (an empty field
asked for and marked), the rate limit."""

from __future__ import annotations

import re

import httpx
import pytest

from registry.courts.services import set_superior
from registry.identity.types import ID_TYPE_NAMES
from registry.settings import Settings
from registry.timeutil import utcnow
from service.app import create_app
from tests.support.corrections import (
    IDENTITIES,
    application,
    apply,
    dismiss,
    form_identifier,
    listed_as,
)
from tests.support.harness import CourtHandle, Registry, serve_app
from tests.support.listings import ending_today, expire_tomorrow, person_named, publish_one
from tests.support.publishing import remove

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


def _invalid(page: str) -> list[str]:
    """The ids of the fields the page marks invalid."""
    return re.findall(r'id="([a-z_]+)"[^>]* aria-invalid="true"', page)


def _part(name: str, value: bytes, content_type: str | None = None) -> bytes:
    head = f'Content-Disposition: form-data; name="{name}"\r\n'
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    return b"--X\r\n" + head.encode() + b"\r\n" + value + b"\r\n"


@pytest.mark.parametrize(
    "bad",
    [_part("name", b"\xff\xfe"), _part("name", "张伟".encode(), "text/plain; charset=x-no-such-charset")],
    ids=["not utf-8", "unknown charset"],
)
def test_a_form_field_that_cannot_be_decoded_is_answered_with_the_form(
    registry: Registry, bad: bytes
) -> None:
    body = (
        _part("listing", b"01J0000000000000000000NONE")
        + bad
        + _part("statement", "理由".encode())
        + b"--X--\r\n"
    )
    with registry.http() as http:
        answer = http.post(
            "/corrections/apply", content=body, headers={"Content-Type": "multipart/form-data; boundary=X"}
        )
    assert answer.status_code == 400 and answer.headers["content-type"].startswith("text/html")
    assert "所填内容含有无法识别的字符或格式不正确" in answer.text
    assert 'name="idempotency_key"' in answer.text  # the form, to send again


def test_an_empty_reconsideration_statement_is_asked_for(registry: Registry, court: CourtHandle) -> None:
    # The form is offered only where the registry knows the court one level up.
    superior = registry.court("京03", "北京市第三中级人民法院", "11")
    with registry.engine.begin() as conn:
        set_superior(conn, court.code, superior.code, actor="test", now=utcnow())
    body = person_named(registry, court, "马丽")
    listing_id = publish_one(registry, court, body)
    filed = apply(registry, application(listing_id, body))
    assert filed.status_code == 201, filed.text
    number, code = filed.json()["application_number"], filed.json()["tracking_code"]
    dismiss(registry, court, number, listing_id)
    with registry.http() as http:
        answer = http.post("/corrections/reconsider", data={"number": number, "code": code, "statement": " "})
    assert answer.status_code == 422
    assert "请填写复议理由。" in answer.text and "无法识别的字符" not in answer.text
    assert _invalid(answer.text) == ["statement"]


def test_without_a_registered_superior_court_a_dismissed_applicant_is_told_where_to_go(
    registry: Registry, court: CourtHandle
) -> None:
    """No form the registry could not send on (409 no_superior_court), but the right still
    stands (Art. 12): the page says to ask the court one level up directly, and by when."""
    body = person_named(registry, court, "马丽")
    listing_id = publish_one(registry, court, body)
    filed = apply(registry, application(listing_id, body))
    number, code = filed.json()["application_number"], filed.json()["tracking_code"]
    dismiss(registry, court, number, listing_id)
    with registry.http() as http:
        page = http.post("/corrections/status", data={"number": number, "code": code})
    assert page.status_code == 200
    assert 'action="/corrections/reconsider"' not in page.text
    assert "本系统未登记该院的上一级人民法院，无法在线提交，请直接向上一级人民法院提出" in page.text


ASKED = {"listing": "请填写失信信息编号或执行案号。", "number": "请填写被执行人的完整证件号码。"}


@pytest.mark.parametrize(
    ("listing", "number", "field"),
    [
        ("", "", "listing"),
        ("", "11010519491231002X", "listing"),
        ("01J0000000000000000000NONE", "", "number"),
        ("（2024）京0105执3408号", " ", "number"),
    ],
)
def test_an_empty_certificate_request_asks_for_what_is_missing(
    registry: Registry, listing: str, number: str, field: str
) -> None:
    with registry.http() as http:
        answer = http.post(
            "/certificates", data={"listing": listing, "id_kind": "id_number", "number": number}
        )
    assert answer.status_code == 422
    assert ASKED[field] in answer.text
    assert "无法识别的字符" not in answer.text and "校验位" not in answer.text
    assert _invalid(answer.text) == [field]


@pytest.mark.parametrize(
    ("form", "message", "fields"),
    [
        ({"number": "", "code": ""}, "请填写申请编号和查询码。", ["number", "code"]),
        ({"number": "", "code": "abc"}, "请填写申请编号。", ["number"]),
        ({"number": "0" * 26, "code": " "}, "请填写查询码。", ["code"]),
    ],
)
def test_an_empty_status_form_asks_for_what_is_missing(
    registry: Registry, form: dict[str, str], message: str, fields: list[str]
) -> None:
    with registry.http() as http:
        answer = http.post("/corrections/status", data=form)
    assert answer.status_code == 422
    assert 'role="alert"' in answer.text and message in answer.text
    assert "申请编号或查询码不正确" not in answer.text
    assert _invalid(answer.text) == fields


def test_an_empty_verification_form_asks_for_the_code(registry: Registry) -> None:
    with registry.http() as http:
        asked = http.get("/certificates/verify", params={"token": " "})
        blank = http.get("/certificates/verify")
    assert asked.status_code == 400
    assert 'role="alert"' in asked.text and "请填写核验码。" in asked.text
    assert _invalid(asked.text) == ["token"]
    # Opened without a code, the form is simply shown.
    assert blank.status_code == 200 and 'role="alert"' not in blank.text and _invalid(blank.text) == []


def test_an_expiry_s_certificate_dates_the_term_s_last_day_as_such(
    registry: Registry, court: CourtHandle
) -> None:
    """An expired entry was shown through its last day and left the list as the next began:
    that day is its 纳入期限届满日, not a 删除日期 a day early."""
    body = ending_today(registry, court)
    listing_id = publish_one(registry, court, body)
    assert expire_tomorrow(registry) == 1
    form = {"listing": listing_id, "id_kind": "id_number", "number": body["debtor"]["id_number"]}
    with registry.http() as http:
        page = http.post("/certificates", data=form)
        assert page.status_code == 201, page.text
        token = re.search(r'id="certificate-token">([^<]+)<', page.text)
        assert token is not None
        verified = http.get("/certificates/verify", params={"token": token.group(1)})
    last_day = f"{registry.today.year}年{registry.today.month}月{registry.today.day}日"
    for text in (page.text, verified.text):
        assert f"<dt>纳入期限届满日</dt><dd>{last_day}</dd>" in text
        assert "删除日期" not in text


def _nonce(page: str) -> str:
    found = re.search(r'id="certificate-nonce">([^<]+)<', page)
    assert found is not None
    return found.group(1)


def test_every_identifier_type_is_offered_by_its_name(registry: Registry, court: CourtHandle) -> None:
    """The forms name every document a listing is made under, with the country field a
    passport or a foreign registration needs; the holder's check on the verification page too."""
    body = person_named(registry, court, "马丽")
    listing_id = publish_one(registry, court, body)
    remove(registry, court, listing_id)
    with registry.http() as http:
        issued = http.post(
            "/certificates", data={"listing": listing_id, "number": body["debtor"]["id_number"]}
        )
        assert issued.status_code == 201, issued.text
        token = _shown(issued.text, "certificate-token")
        pages = [http.get(path).text for path in ("/corrections/apply", "/certificates")]
        pages.append(http.get("/certificates/verify", params={"token": token}).text)
    for page in pages:
        options = re.findall(r'<option value="([a-z_]+)"( selected)?>([^<]+)</option>', page)
        assert [(code, name) for code, _, name in options] == list(ID_TYPE_NAMES.items())
        assert [code for code, selected, _ in options if selected] == ["resident_id"]
        assert '<label for="country">国籍或注册地国家或地区（三位字母代码，如 CAN）</label>' in page


@pytest.mark.parametrize("kind", list(IDENTITIES))
def test_listed_under_any_identifier_they_apply_and_get_a_certificate_on_the_pages(
    registry: Registry, court: CourtHandle, kind: str
) -> None:
    identity, other = IDENTITIES[kind]
    body = listed_as(registry, court, "司马安", identity)
    listing_id = publish_one(registry, court, body)
    form = {
        "listing": listing_id,
        "name": "司马安",
        "role": "debtor" if "id_number" in identity else "representative",
        "ground": "should_be_deleted",
        "statement": "已经履行完毕",
        "contact": "13800000000",
    }
    empty = {"attachments": ("", b"", "application/octet-stream")}
    mine, theirs = form_identifier(identity), form_identifier(other)
    with registry.http() as http:
        wrong = http.post("/corrections/apply", data=form | theirs, files=empty)
        assert wrong.status_code == 404 and "未找到与所填案号或信息编号及证件号码相符的失信信息" in wrong.text
        # The type and the country chosen stay chosen; the number is never shown back.
        assert f'<option value="{kind}" selected>' in wrong.text and theirs["number"] not in wrong.text
        filed = http.post("/corrections/apply", data=form | mine, files=empty)
        assert filed.status_code == 201, filed.text
        assert mine["number"] not in filed.text
    remove(registry, court, listing_id)
    with registry.http() as http:
        assert http.post("/certificates", data={"listing": listing_id} | theirs).status_code == 404
        issued = http.post("/certificates", data={"listing": listing_id} | mine)
        assert issued.status_code == 201, issued.text
        token, nonce = _shown(issued.text, "certificate-token"), _nonce(issued.text)

        def check(identifier: dict[str, str]) -> str:
            page = http.post("/certificates/verify", data={"token": token, "nonce": nonce} | identifier)
            assert page.status_code == 200, page.text
            assert identifier["number"] not in page.text
            return page.text

        assert "号码核对相符" in check(mine)
        assert "号码核对不符" in check(theirs)


@pytest.mark.parametrize(
    ("identifier", "status", "message", "field"),
    [
        (
            {"id_kind": "passport", "number": "E1234567", "country": ""},
            422,
            "请填写国籍或注册地国家或地区的三位字母代码",
            "country",
        ),
        (
            {"id_kind": "passport", "number": "E1234567", "country": "XX"},
            422,
            "国籍须为三位字母的国家或地区代码",
            "country",
        ),
        (
            {"id_kind": "registration", "number": "SC123456", "country": "UK"},
            422,
            "注册地国家或地区须为三位字母的代码",
            "country",
        ),
        (
            {"id_kind": "hk_macao_travel_permit", "number": "X1234", "country": ""},
            422,
            "该港澳居民来往内地通行证号码无效",
            "number",
        ),
        (
            {"id_kind": "organization_code", "number": "60003734-2", "country": ""},
            422,
            "该组织机构代码无效",
            "number",
        ),
        (
            {"id_kind": "driving_licence", "number": "E1234567", "country": ""},
            422,
            "请从列表中选择证件类型",
            "id_kind",
        ),
    ],
)
def test_an_identifier_that_is_not_valid_is_explained_at_its_field(
    registry: Registry, identifier: dict[str, str], status: int, message: str, field: str
) -> None:
    form = {
        "listing": "01J0000000000000000000NONE",
        "name": "司马安",
        "ground": "should_be_deleted",
        "statement": "已经履行完毕",
        "contact": "13800000000",
    }
    with registry.http() as http:
        applied = http.post(
            "/corrections/apply",
            data=form | identifier,
            files={"attachments": ("", b"", "application/octet-stream")},
        )
        certificate = http.post("/certificates", data={"listing": form["listing"]} | identifier)
    for page in (applied, certificate):
        assert page.status_code == status, page.text
        assert message in page.text and "无法识别的字符" not in page.text
        assert _invalid(page.text) == [field]


def test_control_and_bidi_characters_are_never_shown_back(registry: Registry, court: CourtHandle) -> None:
    raw = "ab\x00\x01\x1b\u202ecd"
    with registry.http() as http:
        for path in ("/corrections/apply", "/certificates"):
            page = http.get(path, params={"listing": raw})
            assert page.status_code == 200
            assert 'id="listing" name="listing" type="text" value="abcd"' in page.text
            assert not {"\x00", "\x01", "\x1b", "\u202e"} & set(page.text)
        # Typed into a form refused for another reason, they are not shown back either.
        form = {
            "listing": raw,
            "name": "马\u202e丽\x1b",
            "id_kind": "passport",
            "number": "E1234567",
            "country": "C\u200bAN\x07",
            "ground": "should_be_deleted",
            "statement": "第一行\u2066\n第二行\x0b",
            "contact": "138\u202d00000000",
        }
        pages = [
            http.post(
                "/corrections/apply", data=form, files={"attachments": ("", b"", "application/octet-stream")}
            ),
            http.post("/certificates", data=form),
            http.post("/corrections/status", data={"number": raw, "code": "x"}),
        ]
    applied, certificate, tracked = pages
    assert applied.status_code == 422 and "所填内容含有无法识别的字符" in applied.text
    assert (
        'value="马丽"' in applied.text
        and 'value="CAN"' in applied.text
        and 'value="13800000000"' in applied.text
    )
    assert ">第一行\n第二行</textarea>" in applied.text
    assert certificate.status_code == 422 and 'value="CAN"' in certificate.text
    assert tracked.status_code == 404 and 'value="abcd"' in tracked.text
    for page in pages:
        assert not {"\x00", "\x01", "\x07", "\x0b", "\x1b", "\u200b", "\u202d", "\u202e", "\u2066"} & set(
            page.text
        )


def test_a_parameter_given_twice_is_refused_in_words(registry: Registry, court: CourtHandle) -> None:
    """`?token=abc&token=<valid>` answered from one of the two: which was meant is a guess."""
    body = person_named(registry, court, "马丽")
    listing_id = publish_one(registry, court, body)
    remove(registry, court, listing_id)
    with registry.http() as http:
        issued = http.post(
            "/certificates", data={"listing": listing_id, "number": body["debtor"]["id_number"]}
        )
        token = _shown(issued.text, "certificate-token")
        for params, field in (
            ([("token", "abc"), ("token", token)], "token"),
            ([("token", token), ("token", "abc")], "token"),
            ([("token", token), ("token", token)], "token"),
        ):
            page = http.get("/certificates/verify", params=params)
            assert page.status_code == 400, params
            assert "“核验码”在网址中出现了不止一次" in page.text
            assert "核验通过" not in page.text and "核验未通过" not in page.text
            assert _invalid(page.text) == [field]
        for path in ("/corrections/apply", "/certificates"):
            page = http.get(path, params=[("listing", listing_id), ("listing", "0" * 26)])
            assert page.status_code == 400, path
            assert "“失信信息编号或执行案号”在网址中出现了不止一次" in page.text
            assert listing_id not in page.text and _invalid(page.text) == ["listing"]


def test_an_application_number_in_lower_case_finds_the_application(
    registry: Registry, court: CourtHandle
) -> None:
    body = person_named(registry, court, "马丽")
    listing_id = publish_one(registry, court, body)
    filed = apply(registry, application(listing_id, body))
    assert filed.status_code == 201, filed.text
    number, code = filed.json()["application_number"], filed.json()["tracking_code"]
    with registry.http() as http:
        page = http.post("/corrections/status", data={"number": number.lower(), "code": code})
    assert page.status_code == 200, page.text
    assert _shown(page.text, "application-status") == "执行法院审查中"

"""The web page's one search field (`search.web.forms.parse_search`), called directly: a name
or a full number goes where it belongs, a partial or masked number is refused with a reason
in Chinese, and a full number never shows unmasked in the page title. No server."""

from __future__ import annotations

import os

import pytest

from registry.identity.crypto import BlindIndex
from search.web.forms import MAX_PAGE, MESSAGES, FormError, parse_search

BLIND = BlindIndex(os.urandom(32))
ID_NUMBER = "11010519491231002X"
CREDIT_CODE = "91110000600037341L"
GENERIC = "检索条件有误，请检查后重新输入。"


def form_error(q: str | None, province: str | None = None, page: str | None = None) -> FormError:
    with pytest.raises(FormError) as caught:
        parse_search(q, province, page, BLIND)
    return caught.value


@pytest.mark.parametrize(
    "typed",
    [ID_NUMBER, "11010519491231002x", " 1101 0519 4912 3100 2X ", "１１０１０５１９４９１２３１００２Ｘ"],
)
def test_an_id_number_however_typed_is_searched_exactly_and_masked_in_the_title(typed: str) -> None:
    form = parse_search(typed, None, None, BLIND)
    assert form.query.identifier_blind == BLIND(ID_NUMBER)
    assert form.query.text is None
    assert form.q == ID_NUMBER
    assert form.title == "11****1949********"


@pytest.mark.parametrize("typed", ["MAKPWBYQX", "makpwbyq-x", "MAKPWBYQ-X"])
def test_an_organisation_code_is_searched_exactly_and_shown_with_its_hyphen(typed: str) -> None:
    form = parse_search(typed, None, None, BLIND)
    assert form.query.identifier_blind == BLIND("organization_code:MAKPWBYQX")
    # The paging links carry it as written: nine characters without a hyphen are not always a code.
    assert form.q == form.title == "MAKPWBYQ-X"


def test_a_credit_code_is_searched_exactly() -> None:
    form = parse_search(CREDIT_CODE.lower(), None, None, BLIND)
    assert form.query.identifier_blind == BLIND("credit_code:" + CREDIT_CODE)
    assert form.q == form.title == CREDIT_CODE  # public registration data


@pytest.mark.parametrize("text", ["张伟", "zhangwei", "恒信达", "ABC国际贸易"])
def test_a_name_is_a_text_query_shown_as_typed(text: str) -> None:
    form = parse_search(text, None, None, BLIND)
    assert (form.q, form.title, form.query.text) == (text, text, text)
    assert form.query.identifier_blind is None


def test_province_and_page_are_carried() -> None:
    form = parse_search("王", "11", "3", BLIND)
    assert (form.province, form.page, form.query.province, form.query.page) == ("11", 3, "11", 3)
    assert form.query.per_page == 20


@pytest.mark.parametrize(
    "typed",
    [
        "1101051949****002X",  # the national site's mask
        "11****1949********",  # the mask the list itself shows
        "110105194912",  # the first twelve digits
        "张三 11010519491231002X",  # a name and a number together
        "91110000600037",  # a partial credit code
    ],
)
def test_partial_masked_or_mixed_numbers_are_refused_with_a_reason(typed: str) -> None:
    error = form_error(typed)
    assert (error.code, error.field) == ("incomplete_identifier", "q")
    assert "完整的 18 位身份证号码" in error.message


def test_a_name_with_a_few_digits_is_still_a_name() -> None:
    assert parse_search("张三2号", None, None, BLIND).query.text == "张三2号"


@pytest.mark.parametrize(
    ("q", "province", "page", "code", "field"),
    [
        ("", None, None, "query_required", "q"),
        (None, "11", None, "query_required", "q"),
        ("王", None, None, "query_too_broad", "q"),
        ("有限公司", "11", None, "query_names_no_one", "q"),
        ("张" * 65, None, None, "query_too_long", "q"),
        ("张" * 201, None, None, "parameter_too_long", "q"),
        ("张\u202e伟", None, None, "control_characters", "q"),
        ("·—", None, None, "invalid_query", "q"),
        ("110105194912310021", None, None, "invalid_id_number", "q"),
        ("91110000600037341M", None, None, "invalid_credit_code", "q"),
        ("60003734-2", None, None, "invalid_organization_code", "q"),
        ("张伟", "99", None, "unknown_province", "province"),
        ("张伟", None, "0", "invalid_page", "page"),
        ("张伟", None, str(MAX_PAGE + 1), "page_out_of_range", "page"),
    ],
)
def test_every_refusal_is_put_into_words_for_the_visitor(
    q: str | None, province: str | None, page: str | None, code: str, field: str
) -> None:
    error = form_error(q, province, page)
    assert (error.code, error.field) == (code, field)
    assert error.message == MESSAGES[code][0] != GENERIC


def test_the_last_page_is_allowed() -> None:
    assert parse_search("张伟", None, str(MAX_PAGE), BLIND).page == MAX_PAGE


def test_a_too_broad_refusal_tells_the_visitor_to_choose_a_province() -> None:
    assert "省份" in form_error("王").message

"""The web page's search form: one field for a name or a full number, a province, a page.

A visitor types what they have, and it goes to the JSON API's `q` as typed: a resident ID
number, a unified social credit code, a foreign permanent residence ID, a Hong Kong or
Macao permit or an organisation code is recognised there (`search.query.recognise_number`),
validated (GB 11643 / GB 32100 / GB 11714 checks) and searched exactly through the blind
index; anything else is a name
(Chinese or pinyin, in part). The rest of the validation is the JSON API's own
(`search.query.parse_query`), so the page and the API accept and refuse the same things; its
problem codes are put into words for the visitor here. Partial or masked numbers are
refused: the list is never searched by fragments of a number, and a silent empty result
would read as "not listed".
"""

from __future__ import annotations

from dataclasses import dataclass

from registry.identity.crypto import BlindIndex
from registry.identity.types import parse_person, public_identifier
from registry.problems import Problem
from search.interface import SearchQuery
from search.query import DEFAULT_PER_PAGE, MAX_QUERY_CHARS, MAX_WINDOW, parse_query, recognise_number

PER_PAGE = DEFAULT_PER_PAGE
MAX_PAGE = MAX_WINDOW // PER_PAGE

_TOO_LONG = f"检索内容过长，请不超过 {MAX_QUERY_CHARS} 个字。"
_INVALID_PAGE = f"页码须为 1 至 {MAX_PAGE} 之间的整数。"
# Problem codes of search.query, in the visitor's words, and the field at fault.
MESSAGES: dict[str, tuple[str, str]] = {
    "query_required": ("请输入被执行人姓名、名称或完整的证件号码。", "q"),
    "parameter_too_long": (_TOO_LONG, "q"),
    "query_too_long": (_TOO_LONG, "q"),
    "query_too_broad": ("检索范围过大：只输入一个字或一个拼音音节时，请同时选择省份。", "q"),
    "query_names_no_one": (
        "“有限公司”等组织形式用语不能单独检索，请输入被执行人名称中的其他文字。",
        "q",
    ),
    "control_characters": ("检索内容含有控制字符或无法识别的字符，请重新输入。", "q"),
    "invalid_query": ("请输入至少一个汉字、字母或数字。", "q"),
    "invalid_id_number": ("该身份证号码无效（校验位、出生日期或行政区划代码不符），请核对后重新输入。", "q"),
    "invalid_credit_code": ("该统一社会信用代码无效（校验位不符），请核对后重新输入。", "q"),
    "invalid_organization_code": ("该组织机构代码无效（校验码不符），请核对后重新输入。", "q"),
    "unknown_province": ("请从列表中选择省份。", "province"),
    "incomplete_identifier": (
        "请输入完整的 18 位身份证号码或统一社会信用代码（也可输入外国人永久居留身份证号码、"
        "港澳居民来往内地通行证号码，或带连字符的组织机构代码，如 60003734-1；不要与姓名一并输入）；"
        "不支持以部分号码或打码号码查询。",
        "q",
    ),
    "invalid_page": (_INVALID_PAGE, "page"),
    "page_out_of_range": (_INVALID_PAGE, "page"),
    # An id_type or nationality in the page's address (the API's parameters, refused there too).
    "invalid_parameter": (
        "证件类型和国籍须与完整的证件号码一并提供：请直接在检索框中输入完整的证件号码，"
        "不要单独指定证件类型或国籍。",
        "q",
    ),
    "conflicting_identifiers": ("请只输入一个证件号码：检索框中的号码不能与其他证件参数一并提供。", "q"),
}
_UNKNOWN = ("检索条件有误，请检查后重新输入。", "q")


class FormError(Exception):
    """What is wrong with the form, in words for the visitor, and which field."""

    def __init__(self, code: str, message: str, field: str = "q") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True)
class SearchForm:
    q: str  # the visitor's words, shown back in the field and carried by paging links
    title: str  # for the page title (browser history, tabs): a full number is shown masked
    province: str | None
    page: int
    query: SearchQuery


def form_error(exc: Problem) -> FormError:
    """A refusal of search.query in the visitor's words, at its field."""
    message, field = MESSAGES.get(exc.code, _UNKNOWN)
    return FormError(exc.code, message, field)


def parse_search(
    q: str | None, province: str | None, page: str | None, blind_index: BlindIndex
) -> SearchForm:
    """The form's three fields to a `SearchQuery`, or a `FormError` to show the visitor."""
    # A number typed into the one field is recognised by the JSON API's own rules.
    params = {"q": q or None, "province": province or None, "page": page or None}
    try:
        query = parse_query(params, blind_index)
    except Problem as exc:
        raise form_error(exc) from exc
    if query.text is not None:
        return SearchForm(query.text, query.text, query.province, query.page, query)
    recognised = recognise_number(q or "")
    if recognised is None:  # parse_query found no text, so q held a number: never here
        raise FormError("query_required", *MESSAGES["query_required"])
    number = recognised.number
    if recognised.id_type is None:
        title = number  # an organisation's code is public registration data, shown as written
    else:
        # Masked as the list shows it (an old 15-digit resident ID in its 18-digit form).
        title = public_identifier(recognised.id_type, parse_person(recognised.id_type, number).number)
    return SearchForm(number, title, query.province, query.page, query)

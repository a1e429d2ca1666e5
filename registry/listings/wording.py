"""The words people read: the Chinese of every code a listing carries, in the Provisions'
wording (法释〔2013〕17号 as amended by 法释〔2017〕7号), for every human-facing surface (the
public page, feeds, printable notices, export headers). JSON keeps the codes.

Grounds follow Art. 1; removal reasons Art. 10 (and Art. 12 for a wrongful listing);
performance the national disclosure site (全部未履行 / 部分未履行).
"""

from __future__ import annotations

import functools
import gettext
from datetime import date, datetime

import pycountry

from registry.calendar import CHINA_TIME

GROUNDS: dict[str, str] = {
    "able_but_refuses": "有履行能力而拒不履行生效法律文书确定义务",
    "obstructs_enforcement": "以伪造证据、暴力、威胁等方法妨碍、抗拒执行",
    "evades_enforcement": "以虚假诉讼、虚假仲裁或者以隐匿、转移财产等方法规避执行",
    "breaches_property_reporting": "违反财产报告制度",
    "breaches_consumption_restriction": "违反限制消费令",
    "breaches_settlement": "无正当理由拒不履行执行和解协议",
}
REMOVAL_REASONS: dict[str, str] = {
    "performed": "被执行人已履行义务或人民法院已执行完毕",
    "settlement_performed": "当事人达成执行和解协议且已履行完毕",
    "creditor_request": "申请执行人书面申请删除失信信息，人民法院审查同意",
    "no_property_found": "终结本次执行程序后未发现可供执行财产，且未提供有效财产线索",
    "enforcement_suspended": "因审判监督或破产程序，人民法院依法裁定中止执行",
    "not_enforced": "人民法院依法裁定不予执行",
    "enforcement_terminated": "人民法院依法裁定终结执行",
    "wrongly_listed": "不应纳入失信被执行人名单，依法撤销",
    "term_expired": "纳入期限届满",
}
PERFORMANCE: dict[str, str] = {"none": "全部未履行", "partial": "部分未履行"}
SEX: dict[str, str] = {"M": "男", "F": "女"}
# Opinion Art. 2, 4: the special subjects a court may name (registry.listings.schemas).
SPECIAL_SUBJECTS: dict[str, str] = {
    "party_member": "中共党员",
    "civil_servant": "公务员",
    "npc_deputy": "人大代表",
    "cppcc_member": "政协委员",
    "state_organ": "国家机关",
    "state_owned_enterprise": "国有企业",
    "public_institution": "事业单位",
}
KIND: dict[str, str] = {"person": "自然人", "organization": "法人或其他组织"}


def label(table: dict[str, str], code: str | None) -> str:
    """The words for `code`; an unknown code is shown as itself rather than hidden."""
    if code is None:
        return ""
    return table.get(code, code)


@functools.cache
def _country_names() -> dict[str, str]:
    """ISO 3166-1 alpha-3 code -> the country's Chinese name (pycountry's zh_CN catalogue),
    read once, on first use."""
    chinese = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["zh_CN"])
    names = {country.alpha_3: chinese.gettext(country.name) for country in pycountry.countries}
    # China's regions by the names Chinese official documents use (the catalogue has 香港,
    # 澳门, 中国台湾省); Kosovo's user-assigned code, which passports carry and the catalogue
    # lacks.
    return names | {"HKG": "中国香港", "MAC": "中国澳门", "TWN": "中国台湾", "XKX": "科索沃"}


def country_name(code: str) -> str:
    """The Chinese name of an ISO 3166-1 alpha-3 country code (`CAN` -> 加拿大); an unknown
    code is shown as itself."""
    return _country_names().get(code, code)


# Their numbers begin with the issuing country's code, `CAN *********` as the public sees it,
# `CAN:E12345678` as an agency does (registry.identity.types).
_COUNTRY_FIRST = frozenset({"passport", "registration"})


def identifier_text(id_type: str, shown: str) -> str:
    """An identifier as people read it: a passport's or a foreign registration's country in
    Chinese (`加拿大 *********`), not its ISO code; every other identifier as it is."""
    if id_type in _COUNTRY_FIRST and len(shown) > 3 and shown[3] in " :":
        return f"{country_name(shown[:3])} {shown[4:]}"
    return shown


def removal_date_label(reason: str, removed: str = "删除日期") -> str:
    """What a removal's date is: the day of the court's removal, or for an expiry the last day
    of the term (the entry was shown through it and left the list as the next day began)."""
    return "纳入期限届满日" if reason == "term_expired" else removed


def grounds_text(codes: list[str]) -> str:
    return "；".join(label(GROUNDS, code) for code in codes)


def yuan(cents: int) -> str:
    """12345678 -> '123,456.78 元' (integer arithmetic: amounts are exact)."""
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{fraction:02d} 元"


def cn_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def china_time(moment: datetime) -> str:
    """An instant as read in China: '2026年3月2日 09:30（北京时间）'."""
    local = moment.astimezone(CHINA_TIME)
    return f"{cn_date(local.date())} {local:%H:%M}（北京时间）"

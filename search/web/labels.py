"""Chinese wording of the public entry's codes, and the Jinja2 environment that uses it.

The ground texts follow SPC Provisions Art. 1 (法释〔2017〕7号); performance wording follows
the national disclosure site (全部未履行 / 部分未履行).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from registry.identity.identifiers import PROVINCES

GROUNDS: dict[str, str] = {
    "able_but_refuses": "有履行能力而拒不履行生效法律文书确定义务",
    "obstructs_enforcement": "以伪造证据、暴力、威胁等方法妨碍、抗拒执行",
    "evades_enforcement": "以虚假诉讼、虚假仲裁或者以隐匿、转移财产等方法规避执行",
    "breaches_property_reporting": "违反财产报告制度",
    "breaches_consumption_restriction": "违反限制消费令",
    "breaches_settlement": "无正当理由拒不履行执行和解协议",
}
PERFORMANCE: dict[str, str] = {"none": "全部未履行", "partial": "部分未履行"}
SEX: dict[str, str] = {"M": "男", "F": "女"}
KIND: dict[str, str] = {"person": "自然人", "organization": "法人或其他组织"}

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def yuan(cents: int) -> str:
    """12345678 -> '123,456.78 元' (integer arithmetic: amounts are exact)."""
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{fraction:02d} 元"


def cn_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _label(table: dict[str, str]) -> Callable[[str], str]:
    # An unknown code is shown as itself rather than hidden: it is what the court sent.
    return lambda code: table.get(code, code)


def environment() -> Environment:
    """Autoescaping everywhere (every value on the page comes from courts or the visitor), and
    StrictUndefined so that a misspelt variable fails the tests instead of rendering blank."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        yuan=yuan,
        cn_date=cn_date,
        ground=_label(GROUNDS),
        performance=_label(PERFORMANCE),
        sex=_label(SEX),
        kind=_label(KIND),
    )
    env.globals["provinces"] = PROVINCES
    return env

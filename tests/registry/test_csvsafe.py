"""The one CSV writer: a cell a spreadsheet would run as a formula is written as text."""

from __future__ import annotations

import csv
import io

import pytest

from registry.csvsafe import DictWriter, Writer, cell


@pytest.mark.parametrize(
    "text",
    ["=1+1", "+1", "-1+2", "@SUM(A1)", "\t=1", "\r=1", '=HYPERLINK("http://x.example","点")', "＝1+1"],
)
def test_formula_openers_are_neutralised(text: str) -> None:
    assert cell(text) == "'" + text
    out = io.StringIO()
    Writer(out).writerow([text, "张三"])
    assert next(csv.reader(io.StringIO(out.getvalue()))) == ["'" + text, "张三"]


@pytest.mark.parametrize("value", ["张三", "a=b", "（2024）京0105执1234号", "", 12, -5, None, "1.50"])
def test_other_cells_are_unchanged(value: object) -> None:
    assert cell(value) == value


def test_the_dict_writer_neutralises_every_value_and_ignores_extras() -> None:
    out = io.StringIO()
    writer = DictWriter(out, ("a", "b"), lineterminator="\n")
    writer.writeheader()
    writer.writerows([{"a": "-cmd", "b": "ok", "extra": "=x"}])
    assert out.getvalue() == "a,b\n'-cmd,ok\n"

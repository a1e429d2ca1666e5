"""CSV that a spreadsheet opens as data, never as formulas: the one writer of every CSV the
service writes (the query-log export, the public listing export, statistics).

A cell whose text begins with `=`, `+`, `-`, `@`, a tab or a carriage return (or their
full-width forms, which some spreadsheets read alike) is a formula to Excel, LibreOffice
and Google Sheets, and court- or bank-supplied text can begin that way
(`=HYPERLINK("http://…")`). Such a cell is written with a leading apostrophe, as OWASP's
CSV injection guidance recommends: the spreadsheet shows the text, the apostrophe hides.
Numbers are written as numbers (a negative amount stays a number); only text is changed.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

# The media type of every CSV answer. Litestar adds `charset=utf-8` to a text/* type: naming it
# here too sent it twice.
MEDIA_TYPE = "text/csv"
TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def cell(value: Any) -> Any:
    """`value`, with an apostrophe in front if it is text a spreadsheet would run."""
    if isinstance(value, str) and value.startswith(TRIGGERS):
        return "'" + value
    return value


def row(values: Iterable[Any]) -> list[Any]:
    return [cell(value) for value in values]


class Writer:
    """`csv.writer`, every cell neutralised."""

    def __init__(self, out: _Writable, **options: Any) -> None:
        self._writer = csv.writer(out, **options)

    def writerow(self, values: Iterable[Any]) -> None:
        self._writer.writerow(row(values))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        self._writer.writerows(row(values) for values in rows)


class DictWriter:
    """`csv.DictWriter` over `fields` (extra keys ignored), every cell neutralised."""

    def __init__(self, out: _Writable, fields: Sequence[str], **options: Any) -> None:
        self._writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore", **options)

    def writeheader(self) -> None:
        self._writer.writeheader()

    def writerow(self, values: Mapping[str, Any]) -> None:
        self._writer.writerow({name: cell(value) for name, value in values.items()})

    def writerows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for values in rows:
            self.writerow(values)

"""Numbers on the command line, read as the settings and the HTTP API read them: ASCII digits
only. Python's `int()` and `float()` take any script's digits (`--port ٨٧١٥` listened on
8715) and `nan`, `inf`, `1_000`; here full-width digits fold (NFKC), anything else is refused
with click's one `Error: Invalid value for '--option'` line.

Every integer or float option of `registry` uses these types (`AsciiInt()` where any whole
number will do), with the bounds `click.IntRange` and `click.FloatRange` take.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

import click

_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


def _ascii(
    kind: click.ParamType[Any],
    value: Any,
    shape: re.Pattern[str],
    what: str,
    param: click.Parameter | None,
    ctx: click.Context | None,
) -> Any:
    """`value` folded (NFKC) when it is text in `shape`; click's one-line refusal otherwise."""
    if not isinstance(value, str):
        return value
    text = unicodedata.normalize("NFKC", value).strip()
    if shape.fullmatch(text) is None:
        kind.fail(f"{value!r} is not {what} in ASCII digits (0-9)", param, ctx)
    return text


class AsciiInt(click.IntRange):
    """A whole number in ASCII digits (full-width ones fold), optionally bounded."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        text = _ascii(self, value, _INTEGER, "a whole number", param, ctx)
        return super().convert(text, param, ctx)

    def _describe_range(self) -> str:
        # Unbounded: no "[x<=None]" in the help.
        return "" if self.min is None and self.max is None else super()._describe_range()


class AsciiFloat(click.FloatRange):
    """A finite decimal number in ASCII digits (full-width ones fold), optionally bounded:
    never `nan` or `inf`, which compare false with every bound."""

    name = "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = super().convert(_ascii(self, value, _DECIMAL, "a decimal number", param, ctx), param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number

    def _describe_range(self) -> str:
        return "" if self.min is None and self.max is None else super()._describe_range()

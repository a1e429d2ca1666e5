"""The Jinja2 environment of the public page, with the Chinese wording of the public entry's
codes (`registry.listings.wording`, shared with the feeds, notices and exports)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from registry.identity.identifiers import PROVINCES
from registry.identity.types import ID_TYPE_NAMES
from registry.listings.wording import (
    GROUNDS,
    KIND,
    PERFORMANCE,
    SEX,
    cn_date,
    identifier_text,
    removal_date_label,
    yuan,
)

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


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
        # The document the entry's number is of (a passport, a travel permit, a credit code...).
        id_type=_label(ID_TYPE_NAMES),
        # The number of that document: a passport's country in Chinese, not its ISO code.
        identifier=lambda shown, id_type: identifier_text(id_type, shown),
        removal_date_label=removal_date_label,
        # A date as a certificate's claims hold it (ISO text), in Chinese.
        cn_iso=lambda text: cn_date(date.fromisoformat(text)),
    )
    env.globals["provinces"] = PROVINCES
    return env

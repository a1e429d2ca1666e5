"""`registry check` decodes its request as the bank API decodes a body (`decode_body`):
`reference` is 1 to 128 characters and `purpose` at most 256, neither holding a control,
format or line separator character (`registry.text`). A bell and 3,000 characters went into
the query log and the signed receipt. A refusal is one `Error:` line naming the option, and
leaves nothing in the log."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from registry.settings import Settings
from tests.support.harness import run_registry

pytestmark = pytest.mark.slow

ID_NUMBER = "11010519491231002X"

REFUSED = {
    "bell in reference": (("--reference", "a\x07"), "--reference", "U+0007"),
    "bidi override in reference": (("--reference", "ref\u202e1"), "--reference", "U+202E"),
    "line separator in reference": (("--reference", "a\u2028b"), "--reference", "U+2028"),
    "reference too long": (("--reference", "r" * 3000), "--reference", "128"),
    "reference one too long": (("--reference", "r" * 129), "--reference", "128"),
    "empty reference": (("--reference", ""), "--reference", "length >= 1"),
    "zero-width space in purpose": (("--purpose", "credit_review\u200b"), "--purpose", "U+200B"),
}


def _logged(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT reference FROM check_log")).scalars())


@pytest.mark.parametrize(("args", "option", "why"), REFUSED.values(), ids=REFUSED.keys())
def test_a_reference_or_purpose_the_api_refuses_is_refused(
    settings: Settings, engine: sa.Engine, args: tuple[str, str], option: str, why: str
) -> None:
    done = run_registry(settings, "check", ID_NUMBER, *args)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    [error] = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert "invalid_field" in error and option in error and why in error, error
    assert ID_NUMBER not in done.stdout + done.stderr
    assert _logged(engine) == []


def test_a_reference_the_api_takes_is_logged_and_in_the_receipt(
    settings: Settings, engine: sa.Engine
) -> None:
    reference = "贷款-" + "r" * 125
    done = run_registry(settings, "check", ID_NUMBER, "--reference", reference)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["reference"] == reference
    assert _logged(engine) == [reference]


def test_an_argument_that_is_not_utf8_is_one_line(settings: Settings, engine: sa.Engine) -> None:
    # The byte 0xFF, which the shell passes on and Python reads as a lone surrogate.
    done = run_registry(settings, "check", ID_NUMBER, "--reference", "a\udcffb")
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    [error] = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert "invalid_field" in error and "UTF-8" in error, error
    assert _logged(engine) == []

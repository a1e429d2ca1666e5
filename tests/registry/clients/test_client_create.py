"""An API client's name is a short text under the one text rule (`registry.text`): 1 to 200
characters once normalised, no control, format or line separator character (a bell, a
zero-width space and 5,000 characters were kept). The court a court client is bound to is
folded as `registry court add` folds it (NFKC: `京０１０５` is 京0105)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from registry.clients.services import create_client
from registry.courts.services import add_court
from registry.problems import Problem
from registry.settings import Settings
from tests.support.harness import run_registry

NOW = datetime(2025, 3, 1, tzinfo=UTC)
# Short text, as a listing's short text fields (docs/court-contract.md).
NAME_MAX = 200

REFUSED_NAMES = {
    "bell": "bad\x07name",
    "zero-width space": "a\u200bb",
    "bidi override": "银行\u202e",
    "information separator": "a\x1fb",
    "too long": "a" * 5000,
    "one too many": "a" * (NAME_MAX + 1),
    "blank": "\u3000",
    "not UTF-8": "a\udcffb",
}


def _clients(engine: sa.Engine) -> dict[str, str | None]:
    with engine.connect() as conn:
        return {
            name: court for name, court in conn.execute(sa.text("SELECT name, court_code FROM api_clients"))
        }


def _court(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        add_court(conn, "京0105", "北京市朝阳区人民法院", None, actor="test", now=NOW)


@pytest.mark.parametrize("name", REFUSED_NAMES.values(), ids=REFUSED_NAMES.keys())
def test_a_client_name_breaking_the_text_rule_is_refused(engine: sa.Engine, name: str) -> None:
    with pytest.raises(Problem) as refused, engine.begin() as conn:
        create_client(conn, name, "bank", None, actor="test", now=NOW)
    assert (refused.value.status, refused.value.code, refused.value.pointer) == (
        422,
        "invalid_field",
        "/name",
    )
    assert "client name" in refused.value.detail
    assert _clients(engine) == {}


def test_a_client_name_is_kept_normalised(engine: sa.Engine) -> None:
    longest = "a" * NAME_MAX
    with engine.begin() as conn:
        create_client(conn, "  Ｂａｎｋ　of  Test ", "bank", None, actor="test", now=NOW)
        create_client(conn, longest, "bank", None, actor="test", now=NOW)
    assert _clients(engine) == {"Bank of Test": None, longest: None}


def test_the_court_of_a_court_client_is_folded(engine: sa.Engine) -> None:
    _court(engine)
    with engine.begin() as conn:
        create_client(conn, "朝阳法院执行局", "court", "京０１０５", actor="test", now=NOW)
        bound = conn.execute(sa.text("SELECT court_code FROM events WHERE type = 'client.created'")).all()
    assert _clients(engine) == {"朝阳法院执行局": "京0105"}
    assert bound == [("京0105",)]


def test_an_unknown_or_malformed_court_is_refused(engine: sa.Engine) -> None:
    _court(engine)
    with pytest.raises(Problem) as refused, engine.begin() as conn:
        create_client(conn, "x", "court", "京01", actor="test", now=NOW)
    assert (refused.value.code, refused.value.status) == ("court_not_found", 404)
    with pytest.raises(Problem) as refused, engine.begin() as conn:
        create_client(conn, "x", "court", "京\u200b0105", actor="test", now=NOW)
    assert (refused.value.code, refused.value.pointer) == ("invalid_court_code", "/court_code")
    assert _clients(engine) == {}


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["bad\x07name", "a\u200bb", "a" * 5000, "a\udcffb"], ids=["bell", "zwsp", "long", "not-utf8"]
)
def test_client_create_refuses_a_bad_name_in_one_line(
    settings: Settings, engine: sa.Engine, name: str
) -> None:
    done = run_registry(settings, "client", "create", name, "--role", "bank")
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    [error] = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert "invalid_field" in error and "client name" in error, error
    assert not done.stdout
    assert _clients(engine) == {}


@pytest.mark.slow
def test_client_create_folds_the_court_as_court_add_does(settings: Settings, engine: sa.Engine) -> None:
    added = run_registry(settings, "court", "add", "京０１０５", "北京市朝阳区人民法院")
    assert added.returncode == 0, added.stderr
    done = run_registry(settings, "client", "create", "x", "--role", "court", "--court", "京０１０５")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("rk_")
    assert _clients(engine) == {"x": "京0105"}

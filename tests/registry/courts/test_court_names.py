"""A court's name is a short text under the one text rule (`registry.text`), as a listing's
short text fields are: 1 to 200 characters once normalised, and no control, format or line
separator character. It goes out on /v1/courts, in search hits, feeds and exports; a bidi
override (U+202E) in it was registered and published."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from registry.courts.services import add_court
from registry.problems import Problem
from registry.settings import Settings
from tests.support.harness import run_registry

NOW = datetime(2025, 3, 1, tzinfo=UTC)
# Short text, as a listing's short text fields (docs/court-contract.md).
NAME_MAX = 200

REFUSED_NAMES = {
    "bidi override": "测试\u202e法院",
    "bell": "测试\x07法院",
    "information separator": "测试\x1f法院",
    "zero-width space": "测试\u200b法院",
    "line separator": "测试\u2028法院",
    "Hangul filler": "测试\u3164法院",
    "too long": "法" * (NAME_MAX + 1),
    "blank": " \u3000 ",
    "not UTF-8": "测试\udcff法院",
}


def _courts_and_events(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        courts = conn.execute(sa.text("SELECT count(*) FROM courts")).scalar_one()
        events = conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one()
    return courts, events


@pytest.mark.parametrize("name", REFUSED_NAMES.values(), ids=REFUSED_NAMES.keys())
def test_a_court_name_breaking_the_text_rule_is_refused(engine: sa.Engine, name: str) -> None:
    with pytest.raises(Problem) as refused, engine.begin() as conn:
        add_court(conn, "京0109", name, None, actor="test", now=NOW)
    assert (refused.value.status, refused.value.code, refused.value.pointer) == (
        422,
        "invalid_field",
        "/name",
    )
    assert "court name" in refused.value.detail
    assert _courts_and_events(engine) == (0, 0)


def test_a_court_name_is_kept_normalised(engine: sa.Engine) -> None:
    longest = "法" * NAME_MAX
    with engine.begin() as conn:
        add_court(conn, "京０１０９", "  北京市　朝阳区（测试）法院 ", None, actor="test", now=NOW)
        add_court(conn, "京0110", longest, None, actor="test", now=NOW)
        names = {code: name for code, name in conn.execute(sa.text("SELECT code, name FROM courts"))}
    assert names == {"京0109": "北京市 朝阳区(测试)法院", "京0110": longest}


@pytest.mark.slow
def test_court_add_refuses_a_bidi_override_in_one_line(settings: Settings, engine: sa.Engine) -> None:
    done = run_registry(settings, "court", "add", "京０１０９", "测试\u202e法院")
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    [error] = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert "invalid_field" in error and "court name" in error and "U+202E" in error, error
    assert "\u202e" not in done.stdout + done.stderr
    assert _courts_and_events(engine) == (0, 0)


@pytest.mark.slow
def test_court_add_refuses_a_name_that_is_not_utf8_in_one_line(settings: Settings, engine: sa.Engine) -> None:
    # The byte 0xFF, which the shell passes on and Python reads as a lone surrogate: a traceback.
    done = run_registry(settings, "court", "add", "京0109", "测试\udcff法院")
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    [error] = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert "invalid_field" in error and "court name" in error and "UTF-8" in error, error
    assert _courts_and_events(engine) == (0, 0)


@pytest.mark.slow
def test_a_court_key_that_would_never_be_valid_is_refused_before_a_key_file_is_written(
    settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    """`--valid-until` in the past (a typo in the year) gave a key that could never sign."""
    assert run_registry(settings, "court", "add", "京0109", "北京市朝阳区测试法院").returncode == 0
    private = tmp_path / "court.pem"
    key_add = ("court", "key", "add", "京０１０９", "--generate", str(private), "--valid-until")
    done = run_registry(settings, *key_add, "2020-01-01")
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    [error] = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert "valid_until" in error, error
    assert not private.exists()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM court_keys")).scalar() == 0
    added = run_registry(settings, *key_add, "2099-01-01")
    assert added.returncode == 0, added.stderr
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT court_code FROM court_keys")).scalar() == "京0109"


@pytest.mark.slow
def test_a_revocation_reason_breaking_the_text_rule_is_refused_and_the_key_stays(
    settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    assert run_registry(settings, "court", "add", "京0109", "北京市朝阳区测试法院").returncode == 0
    added = run_registry(settings, "court", "key", "add", "京0109", "--generate", str(tmp_path / "k.pem"))
    key_id = added.stdout.strip().splitlines()[-1]
    done = run_registry(settings, "court", "key", "revoke", key_id, "--reason", "lost\u202e")
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert [line for line in done.stderr.splitlines() if line.startswith("Error:")], done.stderr
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT revoked_at FROM court_keys")).scalar() is None
    assert run_registry(settings, "court", "key", "revoke", key_id, "--reason", "丢失").returncode == 0

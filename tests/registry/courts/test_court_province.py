"""A court's province is a known two-digit code, its code's own: `--province zz`, Arabic-Indic
`٣٣`, `99`, or Shanghai's 31 for the Beijing court 京0112 were registered, and one listing from
the court with province `zz` then stopped the search follower for every court (it reads the
province as a number). Without `--province` the province is derived from the court code."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from registry.courts.services import add_court
from registry.problems import Problem
from registry.settings import Settings
from tests.support.harness import run_registry

NOW = datetime(2025, 3, 1, tzinfo=UTC)

REFUSED = {
    "letters": ("京0112", "zz"),
    "Arabic-Indic digits": ("京0112", "٣٣"),
    "no such province": ("京0112", "99"),
    "another province": ("京0112", "31"),
    "one digit": ("京0112", "1"),
    "blank": ("京0112", ""),
    "XPCC court, not Xinjiang": ("兵0101", "11"),
    "military court, Arabic-Indic digits": ("军01", "١١"),
}


def _provinces(engine: sa.Engine) -> dict[str, str | None]:
    with engine.connect() as conn:
        return {
            code: province
            for code, province in conn.execute(sa.text("SELECT code, province_code FROM courts"))
        }


def _events(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one())


@pytest.mark.parametrize(("code", "province"), REFUSED.values(), ids=REFUSED.keys())
def test_a_province_that_is_not_the_courts_is_refused(engine: sa.Engine, code: str, province: str) -> None:
    with pytest.raises(Problem) as refused, engine.begin() as conn:
        add_court(conn, code, "测试法院", province, actor="test", now=NOW)
    assert (refused.value.status, refused.value.code, refused.value.pointer) == (
        422,
        "invalid_field",
        "/province_code",
    )
    assert "--province" in refused.value.detail
    assert _provinces(engine) == {} and _events(engine) == 0


def test_a_province_is_derived_or_given_as_the_courts_own(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        add_court(conn, "京0112", "北京市通州区人民法院", None, actor="test", now=NOW)
        add_court(conn, "沪0115", "上海市浦东新区人民法院", "31", actor="test", now=NOW)
        add_court(conn, "京0113", "北京市顺义区人民法院", "１１", actor="test", now=NOW)  # full-width
        add_court(conn, "兵0101", "测试垦区人民法院", "65", actor="test", now=NOW)
        add_court(conn, "军01", "测试军事法院", None, actor="test", now=NOW)
        add_court(conn, "军02", "测试军事法院二", "11", actor="test", now=NOW)  # no province of its own
    assert _provinces(engine) == {
        "京0112": "11",
        "沪0115": "31",
        "京0113": "11",
        "兵0101": "65",
        "军01": None,
        "军02": "11",
    }


@pytest.mark.slow
@pytest.mark.parametrize("province", ["zz", "٣٣", "99", "31"])
def test_court_add_refuses_a_wrong_province_in_one_line(
    settings: Settings, engine: sa.Engine, province: str
) -> None:
    done = run_registry(settings, "court", "add", "京0112", "北京市通州区人民法院", "--province", province)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    [error] = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert "invalid_field" in error and "--province" in error, error
    assert _provinces(engine) == {} and _events(engine) == 0


@pytest.mark.slow
def test_court_add_without_a_province_takes_the_codes(settings: Settings, engine: sa.Engine) -> None:
    done = run_registry(settings, "court", "add", "京0112", "北京市通州区人民法院")
    assert done.returncode == 0, done.stderr
    assert _provinces(engine) == {"京0112": "11"}

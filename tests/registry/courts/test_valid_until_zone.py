"""`registry court key add --valid-until`: a date, or a time without an offset, is China time
(the courts' clock), whatever the operator machine's zone: under TZ=Asia/Shanghai the same
date was stored eight hours earlier than under UTC. A time with Z or an offset is taken as
given."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from registry.calendar import today_in_china
from registry.settings import Settings
from tests.support.harness import run_registry

pytestmark = pytest.mark.slow

COURT = "京0108"


def _valid_until(settings: Settings, key_id: str) -> str | None:
    listed = run_registry(settings, "court", "list")
    assert listed.returncode == 0, listed.stderr
    [key] = [k for c in json.loads(listed.stdout) for k in c["keys"] if k["key_id"] == key_id]
    value: str | None = key["valid_until"]
    return value


def _key_id(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_a_valid_until_date_is_china_time_whatever_the_machines_zone(
    settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    assert run_registry(settings, "court", "add", COURT, "北京市海淀区人民法院").returncode == 0
    day = today_in_china() + timedelta(days=400)
    # Midnight starting that day in Beijing: 16:00 UTC the day before.
    expected = f"{day - timedelta(days=1):%Y-%m-%d}T16:00:00.000000Z"
    for n, zone in enumerate(("Asia/Shanghai", "UTC", "America/Los_Angeles")):
        key = tmp_path / f"k{n}.pem"
        done = run_registry(
            settings, "court", "key", "add", COURT, "--generate", str(key), "--valid-until", str(day), TZ=zone
        )
        assert _valid_until(settings, _key_id(done)) == expected, zone
    # A time without an offset is China time too; with Z or an offset, as given.
    for n, (given, stored) in enumerate(
        (
            (f"{day}T08:30:00", f"{day}T00:30:00.000000Z"),
            (f"{day}T08:30:00Z", f"{day}T08:30:00.000000Z"),
            (f"{day}T08:30:00+09:00", f"{day - timedelta(days=1)}T23:30:00.000000Z"),
        )
    ):
        key = tmp_path / f"t{n}.pem"
        done = run_registry(
            settings, "court", "key", "add", COURT, "--generate", str(key), "--valid-until", given, TZ="UTC"
        )
        assert _valid_until(settings, _key_id(done)) == stored, given


def test_a_valid_until_that_is_no_date_is_one_error_line(
    settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    assert run_registry(settings, "court", "add", COURT, "北京市海淀区人民法院").returncode == 0
    for given in ("next year", "٢٠٢٧-01-01", "2027-02-30"):
        key = tmp_path / "k.pem"
        done = run_registry(
            settings, "court", "key", "add", COURT, "--generate", str(key), "--valid-until", given
        )
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert "--valid-until" in done.stderr, done.stderr
        assert not key.exists()

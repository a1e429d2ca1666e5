"""Each court knows its superior court (SPC Provisions Art. 12: reconsideration one level up),
set by `registry court add --superior` and `registry court superior`."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from registry.courts.services import court_level
from registry.settings import Settings
from tests.support.harness import Registry, cli_env, registry_bin

pytestmark = pytest.mark.slow


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [registry_bin(), *args],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _superiors(registry: Registry) -> dict[str, str | None]:
    courts = httpx.get(registry.url + "/v1/courts").json()["courts"]
    return {court["code"]: court["superior_code"] for court in courts}


def test_levels_follow_the_court_code() -> None:
    assert [court_level(code) for code in ("最高法", "京", "京03", "京0105")] == [0, 1, 2, 3]


def test_the_hierarchy_is_built_from_the_top_with_the_cli(registry: Registry, settings: Settings) -> None:
    for args in (
        ("最高法", "最高人民法院"),
        ("京", "北京市高级人民法院", "--superior", "最高法"),
        ("京03", "北京市第三中级人民法院", "--superior", "京"),
        ("京0105", "北京市朝阳区人民法院", "--superior", "京03"),
    ):
        done = _cli(settings, "court", "add", *args)
        assert done.returncode == 0, done.stderr
    assert _superiors(registry) == {"最高法": None, "京": "最高法", "京03": "京", "京0105": "京03"}


def test_a_superior_must_be_one_level_up_in_the_same_province(registry: Registry, settings: Settings) -> None:
    top = (("最高法", "最高人民法院"), ("京", "北京市高级人民法院"), ("沪01", "上海市第一中级人民法院"))
    for args in top:
        assert _cli(settings, "court", "add", *args).returncode == 0
    skipping = _cli(settings, "court", "add", "京0105", "北京市朝阳区人民法院", "--superior", "京")
    assert skipping.returncode != 0 and "superior_court_invalid" in skipping.stderr
    elsewhere = _cli(settings, "court", "add", "京0105", "北京市朝阳区人民法院", "--superior", "沪01")
    assert elsewhere.returncode != 0 and "superior_court_invalid" in elsewhere.stderr
    unknown = _cli(settings, "court", "add", "京0105", "北京市朝阳区人民法院", "--superior", "京03")
    assert unknown.returncode != 0 and "court_not_found" in unknown.stderr
    # Nothing was half-registered by the refusals.
    assert "京0105" not in _superiors(registry)
    # A court registered before its superior gets one later.
    assert _cli(settings, "court", "add", "京03", "北京市第三中级人民法院").returncode == 0
    assert _cli(settings, "court", "superior", "京03", "京").returncode == 0
    assert _superiors(registry)["京03"] == "京"

"""Settings split by concern keep the environment variable names deployments already use,
and the reference in docs/settings.md is the one generated from the classes."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.settings import Settings, SettingsError, load_settings, reference_markdown

# Every variable the service read before the split, with a value and where it must land.
VARIABLES = {
    "REGISTRY_DATABASE_URL": ("sqlite:///x.db", lambda s: s.database.url, "sqlite+aiosqlite:///x.db"),
    "REGISTRY_SECRETS_FILE": ("/k/s.json", lambda s: str(s.keys.secrets_file), "/k/s.json"),
    "REGISTRY_DATA_KEY_ID": ("k9", lambda s: s.keys.data_key_id, "k9"),
    "REGISTRY_SIGNING_KEY_FILE": ("/k/g.json", lambda s: str(s.keys.signing_key_file), "/k/g.json"),
    "REGISTRY_PORT": ("8123", lambda s: s.server.port, 8123),
    "REGISTRY_SCHEDULER": ("false", lambda s: s.server.scheduler, False),
    "REGISTRY_PUBLIC_RATE_LIMIT": ("5/second", lambda s: s.server.public_rate_limit, "5/second"),
    "REGISTRY_INGEST_WORKERS": ("3", lambda s: s.listings.ingest_workers, 3),
    "REGISTRY_BATCH_MAX_ITEMS": ("7", lambda s: s.listings.batch_max_items, 7),
    "REGISTRY_CHECK_DAILY_QUOTA": ("11", lambda s: s.checks.daily_quota, 11),
    "REGISTRY_CHECK_RATE_PER_SECOND": ("12", lambda s: s.checks.rate_per_second, 12),
    "REGISTRY_WATCHLIST_INTERVAL_SECONDS": ("13", lambda s: s.checks.watchlist_interval_seconds, 13),
    "REGISTRY_SYNC_LEASE_SECONDS": ("14", lambda s: s.sync.lease_seconds, 14.0),
    "REGISTRY_NOTICE_DEADLINE_DAYS": ("5", lambda s: s.sync.notice_deadline_days, 5),
    "REGISTRY_FEED_PAGE_SIZE": ("20", lambda s: s.feeds.feed_page_size, 20),
    "REGISTRY_EXPORT_DIR": ("/e", lambda s: str(s.exports.dir), "/e"),
    "REGISTRY_EXPORT_HOUR": ("4", lambda s: s.exports.hour, 4),
    "REGISTRY_LOG_ORIGIN": ("o/x", lambda s: s.translog.origin, "o/x"),
    "REGISTRY_LOG_INTERVAL_SECONDS": ("61", lambda s: s.translog.interval_seconds, 61),
    "REGISTRY_SEARCH_BACKEND": ("meilisearch", lambda s: s.search.backend, "meilisearch"),
    "REGISTRY_MEILISEARCH_URL": ("http://m:7700", lambda s: s.meilisearch.url, "http://m:7700"),
    "REGISTRY_MEILISEARCH_INDEX": ("ix", lambda s: s.meilisearch.index, "ix"),
}


@pytest.mark.parametrize("name", sorted(VARIABLES))
def test_each_variable_keeps_its_name(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    raw, read, expected = VARIABLES[name]
    monkeypatch.setenv(name, raw)
    assert read(Settings()) == expected


def test_override_changes_one_concern_and_validates() -> None:
    settings = Settings()
    changed = settings.override(checks={"rate_per_second": 2})
    assert changed.checks.rate_per_second == 2
    assert settings.checks.rate_per_second == 50  # the original is left alone
    assert changed.checks.daily_quota == settings.checks.daily_quota
    with pytest.raises(ValueError, match="rate_per_second"):
        settings.override(checks={"rate_per_second": 0})


@pytest.mark.parametrize(
    ("name", "too_many"),
    [("REGISTRY_BATCH_MAX_ITEMS", "1000000"), ("REGISTRY_SYNC_MAX_PARALLEL", "100000")],
)
def test_a_bound_past_what_a_process_can_hold_is_refused_at_start(
    name: str, too_many: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A million envelopes a batch or 100,000 pushes at once would exhaust memory and
    connections long before they helped: refused with the variable's name, not run."""
    monkeypatch.setenv(name, too_many)
    with pytest.raises(ValueError, match="less than or equal"):
        Settings()


def test_the_settings_reference_is_generated_not_written() -> None:
    committed = (Path(__file__).resolve().parents[2] / "docs" / "settings.md").read_text()
    assert committed == reference_markdown(), "run `registry settings > docs/settings.md`"
    # Every variable named above is documented.
    for name in VARIABLES:
        assert f"`{name}`" in committed


def test_a_misspelt_variable_is_named_not_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """REGISTRY_DATABSE_URL was ignored: the service migrated and served a new empty SQLite
    database beside the real one, with new keys."""
    monkeypatch.setenv("REGISTRY_DATABSE_URL", "postgresql://postgres@127.0.0.1/x")
    monkeypatch.setenv("REGISTRY_REDIS_URI", "redis://127.0.0.1")
    monkeypatch.setenv("REGISTRY_TEST_ANYTHING", "1")  # the tests' own variables are theirs
    with pytest.raises(SettingsError) as refused:
        load_settings()
    lines = str(refused.value).splitlines()
    assert [line.split(":")[0] for line in lines] == ["REGISTRY_DATABSE_URL", "REGISTRY_REDIS_URI"]
    assert "postgres@" not in str(refused.value)  # the value (perhaps a password) never shown
    monkeypatch.delenv("REGISTRY_DATABSE_URL")
    monkeypatch.delenv("REGISTRY_REDIS_URI")
    assert load_settings().database.url == Settings().database.url


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REGISTRY_DATABASE_URL", "postgresql://postgres@127.0.0.1:abc/registry"),
        ("REGISTRY_DATABASE_URL", "postgresql://postgres@127.0.0.1:\u0663\u0663/registry"),
        ("REGISTRY_DATABASE_URL", "postgresql://postgres@127.0.0.1:70000/registry"),
        ("REGISTRY_PUBLIC_BASE_URL", "https://user:secret@registry.example"),
        ("REGISTRY_PUBLIC_BASE_URL", "https://registry.example:99999"),
        # ipaddress's own message repeated the value.
        ("REGISTRY_FORWARDED_ALLOW_IPS", "10.0.0.1,secret-host"),
    ],
)
def test_a_url_with_a_bad_port_or_a_password_in_the_public_address_is_one_line(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 68-line traceback for the port; the public address would have shown the password
    in every link the service writes."""
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert str(refused.value).startswith(name) and "secret" not in str(refused.value)


def test_the_service_s_own_address_brackets_an_ipv6_host() -> None:
    settings = Settings().override(server={"host": "::1", "port": 8715})
    assert settings.server.base_url() == "http://[::1]:8715"

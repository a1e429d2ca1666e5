"""An operator's mistake or an outage stops the `registry` command with one line naming what to
fix and an exit status other than 0: never a traceback, never a password from a URL."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from registry.settings import Settings
from tests.support.harness import Registry, cli_env, free_port, registry_bin

# Every test runs the `registry` command as a subprocess.
pytestmark = pytest.mark.slow

PASSWORD = "hunter2-not-for-logs"


def _cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # A short timeout: the old code served or ran every job where it should have refused.
    return subprocess.run(
        [registry_bin(), *args],
        env=cli_env(settings) | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _errors(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The `Error:` lines of a refused command, after checking it was refused cleanly."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors, result.stderr
    return errors


def _refused(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    [error] = _errors(result)
    for needle in needles:
        assert needle in error, error
    return error


# ---- settings ----


def test_each_bad_setting_is_named_on_a_line_of_its_own(settings: Settings, engine: sa.Engine) -> None:
    bad = {
        "REGISTRY_PORT": "abc",
        "REGISTRY_EXPIRY_INTERVAL_SECONDS": "١٠",
        "REGISTRY_SEARCH_BACKEND": "elastic",
        "REGISTRY_LOG_FORMAT": "JSON",
        "REGISTRY_SCHEDULER": "",
        "REGISTRY_WATCHLIST_INTERVAL_SECONDS": "-1",  # read under an alias of its own
    }
    errors = _errors(_cli(settings, "client", "list", **bad))
    assert sorted(error.split(":")[1].strip() for error in errors) == sorted(bad)
    assert (
        "Error: REGISTRY_PORT: Input should be a valid integer, unable to parse string as an integer"
        in errors
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REGISTRY_REDIS_URL", "localhost:6379"),
        ("REGISTRY_REDIS_URL", "http://x"),
        ("REGISTRY_MEILISEARCH_URL", "127.0.0.1:7700"),
        ("REGISTRY_DATABASE_URL", f"mysql://registry:{PASSWORD}@db/registry"),
        ("REGISTRY_DATABASE_URL", "localhost/registry"),
        ("REGISTRY_DATABASE_URL", "sqlite://var/x.db"),
        ("REGISTRY_LOG_LEVEL", "verbose"),
        ("REGISTRY_SYNC_INTERVAL_SECONDS", "inf"),
        ("REGISTRY_SYNC_LEASE_SECONDS", "inf"),
        ("REGISTRY_STATISTICS_INTERVAL_SECONDS", "nan"),
        ("REGISTRY_SYNC_BACKOFF_MAX_SECONDS", "1e300"),
        ("REGISTRY_CHECK_LOG_PURGE_INTERVAL_SECONDS", "999999999999"),
        ("REGISTRY_CHECK_LOG_RETENTION_DAYS", "999999999"),
        ("REGISTRY_EXPORT_RETENTION_DAYS", "1000000"),
        ("REGISTRY_NOTICE_DEADLINE_DAYS", "100000"),
        ("REGISTRY_INGEST_WORKERS", "100000"),
        ("REGISTRY_SEARCH_BACKEND", "meilisearch"),  # with no server
    ],
)
def test_a_wrong_value_is_refused_before_the_command_runs(
    settings: Settings, engine: sa.Engine, variable: str, value: str
) -> None:
    """Accepted before, these failed later in a traceback, or never (a search 'unavailable'
    for ever, a lease of inf seconds)."""
    result = _cli(settings, "client", "list", **{variable: value})
    needle = "REGISTRY_MEILISEARCH_URL" if variable == "REGISTRY_SEARCH_BACKEND" else variable
    assert _refused(result, needle).startswith(f"Error: {needle}: ")


# ---- outages ----


@pytest.mark.parametrize(
    "command",
    [
        ("client", "list"),
        ("db", "check"),
        ("keys", "check"),
        ("worker", "--jobs", "expire_fixed_terms"),
        ("serve", "--no-scheduler"),
    ],
)
def test_an_unreachable_database_is_one_line_naming_its_address(
    settings: Settings, command: tuple[str, ...]
) -> None:
    port = free_port()
    url = f"postgresql://registry:{PASSWORD}@127.0.0.1:{port}/registry"
    result = _cli(settings, *command, REGISTRY_DATABASE_URL=url, REGISTRY_PORT=str(free_port()))
    error = _refused(result, f"at 127.0.0.1:{port}")
    assert error.startswith(("Error: database unreachable", "Error: database error")), error


def test_a_database_file_that_cannot_be_made_is_one_line(settings: Settings, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = _cli(settings, "client", "list", REGISTRY_DATABASE_URL=f"sqlite:///{blocker}/registry.db")
    _refused(result, str(blocker))


def test_reindex_with_meilisearch_down_is_one_line(settings: Settings, engine: sa.Engine) -> None:
    down = {
        "REGISTRY_SEARCH_BACKEND": "meilisearch",
        "REGISTRY_MEILISEARCH_URL": f"http://127.0.0.1:{free_port()}",
    }
    _refused(_cli(settings, "search", "reindex", **down), "search engine unavailable", "Meilisearch")


# ---- arguments ----


def test_an_unknown_purpose_is_one_line(settings: Settings, engine: sa.Engine) -> None:
    result = _cli(settings, "check", "11010519491231002X", "--purpose", "nope")
    _refused(result, "unknown_purpose")


@pytest.mark.parametrize("port", ["70000", "0"])
def test_serve_refuses_a_port_out_of_range(settings: Settings, port: str) -> None:
    _refused(_cli(settings, "serve", "--port", port), "--port", port)


def test_serve_refuses_an_address_it_cannot_listen_on(settings: Settings, engine: sa.Engine) -> None:
    port = str(free_port())
    result = _cli(settings, "serve", "--no-scheduler", "--host", "256.1.1.1", "--port", port)
    _refused(result, f"cannot listen on 256.1.1.1:{port}")
    assert "listening on" not in result.stdout


def test_no_export_is_written_for_a_day_after_today(settings: Settings, engine: sa.Engine) -> None:
    _refused(_cli(settings, "export", "run", "--date", "2999-01-01"), "--date", "2999-01-01")
    written = settings.exports.dir.rglob("*") if settings.exports.dir.exists() else iter(())
    assert not [path for path in written if "2999" in path.name]


def test_no_export_is_written_for_a_day_the_same_run_would_prune(
    settings: Settings, engine: sa.Engine
) -> None:
    # It printed a signed manifest, then the run's own prune deleted the export.
    result = _cli(settings, "export", "run", "--date", "1900-01-01")
    _refused(result, "--date", "1900-01-01", "REGISTRY_EXPORT_RETENTION_DAYS")
    assert "manifest" not in result.stdout


@pytest.mark.parametrize("name", ["", "  ", "\u3000"])
def test_a_client_needs_a_name(settings: Settings, engine: sa.Engine, name: str) -> None:
    _refused(_cli(settings, "client", "create", name, "--role", "bank"), "NAME")


@pytest.mark.parametrize("jobs", [",", "", " , "])
def test_the_worker_refuses_an_empty_job_list(settings: Settings, engine: sa.Engine, jobs: str) -> None:
    """An empty list ran every job: the opposite of a choice."""
    _refused(_cli(settings, "worker", "--jobs", jobs), "--jobs")


# ---- numbers on the command line ----

SYNC_CREATE = ("sync", "create", "--client", "x", "--profile", "credit_reference", "--mode", "pull")


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("serve", "--no-scheduler", "--port", "٨٧١٥"), "--port"),  # listened on 8715
        (("import", "{file}", "--chunk-size", "٣"), "--chunk-size"),
        (("import", "{file}", "--workers", "-1"), "--workers"),  # a ValueError traceback
        (("import", "{file}", "--chunk-size", "0"), "--chunk-size"),
        (("import", "{file}", "--chunk-size", "-1"), "--chunk-size"),
        ((*SYNC_CREATE, "--from-seq", "٣"), "--from-seq"),
        (("corrections", "list", "--limit", "١٠"), "--limit"),
        (("worker", "--check", "--max-age", "nan"), "--max-age"),  # "worker alive"
        (("worker", "--check", "--max-age", "inf"), "--max-age"),
        (("worker", "--check", "--max-age", "1e999"), "--max-age"),
        (("worker", "--check", "--max-age", "-5"), "--max-age"),
        (("worker", "--check", "--max-age", "0"), "--max-age"),
    ],
)
def test_a_number_option_takes_ascii_digits_in_range(
    settings: Settings, engine: sa.Engine, tmp_path: Path, args: tuple[str, ...], option: str
) -> None:
    envelopes = tmp_path / "f.jsonl"
    envelopes.write_text("{}\n")
    heartbeat = tmp_path / "worker.heartbeat"
    heartbeat.touch()  # a fresh heartbeat: only the option can refuse
    result = _cli(
        settings,
        *(arg.format(file=envelopes) for arg in args),
        REGISTRY_PORT=str(free_port()),
        REGISTRY_WORKER_HEARTBEAT_FILE=str(heartbeat),
    )
    assert result.returncode == 2, result.stdout + result.stderr
    _refused(result, option)
    assert "listening on" not in result.stdout and "alive" not in result.stdout


def test_full_width_digits_fold_in_a_number_option(settings: Settings, tmp_path: Path) -> None:
    heartbeat = tmp_path / "worker.heartbeat"
    heartbeat.touch()
    result = _cli(
        settings, "worker", "--check", "--max-age", "６０", REGISTRY_WORKER_HEARTBEAT_FILE=str(heartbeat)
    )
    assert result.returncode == 0, result.stderr
    assert "worker alive" in result.stdout


# ---- the database file, Ctrl-C ----


@pytest.mark.parametrize("command", [("client", "list"), ("db", "upgrade")])
def test_a_file_that_is_no_database_is_one_line(
    settings: Settings, tmp_path: Path, command: tuple[str, ...]
) -> None:
    not_a_database = tmp_path / "notes.db"
    not_a_database.write_bytes(b"these are notes, not a database\n" * 200)
    result = _cli(settings, *command, REGISTRY_DATABASE_URL=f"sqlite:///{not_a_database}")
    _refused(result, str(not_a_database), "not a SQLite database")


def test_ctrl_c_in_a_transaction_stays_an_interrupt() -> None:
    """In-process: Ctrl-C inside a driver call (`registry keys rotate --blind-index`) invalidates
    the connection; the log's rollback listener then read its `info` and a 90-line
    PendingRollbackError replaced the interrupt (click prints "Aborted!" for the interrupt)."""
    import registry.eventlog.wake  # noqa: F401 - its listeners, as every command has them

    engine = sa.create_engine("sqlite://")

    def interrupted(*_: object) -> bool:
        raise KeyboardInterrupt

    sa.event.listen(engine, "do_execute", interrupted)
    with pytest.raises(KeyboardInterrupt), engine.begin() as conn:
        conn.execute(sa.text("SELECT 1"))
    engine.dispose()


# ---- serve on IPv6 ----


def test_serve_brackets_an_ipv6_host(settings: Settings, engine: sa.Engine, tmp_path: Path) -> None:
    from tests.support.processes import registry_process, wait_until_up

    port = free_port()
    log = tmp_path / "serve.log"
    command = ["serve", "--no-scheduler", "--host", "::1", "--port", str(port)]
    with registry_process(settings, command, {}, log) as started:
        wait_until_up(f"http://[::1]:{port}", started)
        output = log.read_text()
    assert f"listening on http://[::1]:{port}  (API schema: http://[::1]:{port}/schema)" in output, output


# ---- REGISTRY_LOG_FORMAT=json ----


def _json_lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, str]]:
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert lines and all(line["level"] == "ERROR" for line in lines), lines
    return lines


def test_with_json_logs_an_error_is_a_json_log_line(settings: Settings, engine: sa.Engine) -> None:
    result = _cli(
        settings, "court", "key", "revoke", "ck_nothing", "--reason", "x", REGISTRY_LOG_FORMAT="json"
    )
    [line] = _json_lines(result)
    assert line["message"].startswith("key_not_found: "), line
    assert result.returncode == 1


def test_with_json_logs_each_bad_setting_is_a_json_log_line(settings: Settings) -> None:
    bad = {"REGISTRY_PORT": "abc", "REGISTRY_EXPIRY_INTERVAL_SECONDS": "١٠"}
    lines = _json_lines(_cli(settings, "client", "list", REGISTRY_LOG_FORMAT="json", **bad))
    assert sorted(line["message"].split(":")[0] for line in lines) == sorted(bad)


def test_with_json_logs_a_bad_option_is_a_json_log_line(settings: Settings) -> None:
    result = _cli(settings, "serve", "--port", "٨٧١٥", REGISTRY_LOG_FORMAT="json")
    [line] = _json_lines(result)
    assert "--port" in line["message"], line
    assert result.returncode == 2


def test_with_json_logs_a_warning_is_a_json_log_line(registry: Registry, settings: Settings) -> None:
    """`keys rotate --blind-index` with one key in the environment goes on with a warning:
    under REGISTRY_LOG_FORMAT=json it was a plain line among the shipper's JSON."""
    stored = json.loads(Path(settings.keys.secrets_file).read_text())
    env = {
        "REGISTRY_DATA_KEYS": ",".join(f"{kid}:{key}" for kid, key in stored["data_keys"].items()),
        "REGISTRY_DATA_KEY_ID": stored["active_data_key_id"],
        "REGISTRY_BLIND_INDEX_KEY": stored["blind_index_key"],
        "REGISTRY_LOG_FORMAT": "json",
    }
    result = _cli(settings, "keys", "rotate", "--blind-index", **env)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert any(line["level"] == "WARNING" and "holds one key" in line["message"] for line in lines), lines

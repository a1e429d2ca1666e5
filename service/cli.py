"""The `registry` command: the root group and what belongs to no package (migrations, serving,
the demo, the benches); each plugin adds its own groups. Prints no personal identifier, ever."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path
from typing import Any

import click

from registry.cliparams import AsciiFloat, AsciiInt
from registry.clirun import cli_settings, operator_errors, run_with_services
from registry.logs import configure_logging
from registry.runtime import Services
from registry.settings import Settings
from service.plugins import PLUGINS


def _settings() -> Settings:
    return cli_settings()


class _Registry(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        # Here once, for every command, the plugins' too: an operator's mistake or an outage is
        # one line, never a traceback.
        with operator_errors():
            return super().invoke(ctx)


def _announce(settings: Settings, message: str) -> None:
    """A long-running process's start line: on stdout for a person, as a log line when the
    logs are JSON (one object a line: a plain line in the same stream breaks their parsers)."""
    if settings.server.log_format == "json":
        logging.getLogger("registry").info(message)
    else:
        click.echo(message)


@click.group(cls=_Registry)
def main() -> None:
    """The defaulter credit registry."""
    server = _settings().server
    configure_logging(server.log_level, server.log_format)


# ---- database ----


@main.group()
def db() -> None:
    """Schema migrations."""


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config(str(Path(__file__).resolve().parent.parent / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    return config


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    from alembic import command

    command.upgrade(alembic_config(_settings().database.url), revision)
    click.echo(f"database at {revision}")


@db.command("check")
def db_check() -> None:
    """Fail if the models and the migrations disagree (autogenerate drift check)."""
    from alembic import command

    command.check(alembic_config(_settings().database.url))
    click.echo("no drift")


@main.command("settings")
def settings_reference() -> None:
    """Print the settings reference (Markdown): every REGISTRY_* variable, its default and meaning."""
    from registry.settings import reference_markdown

    click.echo(reference_markdown(), nl=False)


# ---- running ----


@main.command()
@click.option("--host", default=None, help="Default REGISTRY_HOST.")
@click.option("--port", default=None, type=AsciiInt(1, 65535), help="Default REGISTRY_PORT.")
@click.option(
    "--scheduler/--no-scheduler", default=None, help="Run background jobs here (default REGISTRY_SCHEDULER)."
)
def serve(host: str | None, port: int | None, scheduler: bool | None) -> None:
    """Serve the HTTP API (and, by default, the background jobs) in this process."""
    import uvicorn

    from registry.identity.keystore import ensure_keys
    from service.app import create_app

    settings = _settings()
    ensure_keys(settings)  # before listening: refuse at once, naming the missing key ids
    host, port = host or settings.server.host, port or settings.server.port
    _refuse_unusable_address(host, port)
    # The address served is the service's own (feed, export and notice links without
    # REGISTRY_PUBLIC_BASE_URL): `--port 8734` linked to REGISTRY_PORT's 8000.
    settings.server = settings.server.model_copy(update={"host": host, "port": port})
    address = _address(host, port)
    _announce(settings, f"registry listening on http://{address}  (API schema: http://{address}/schema)")
    uvicorn.run(
        create_app(settings, run_scheduler=scheduler),
        host=host,
        port=port,
        access_log=False,
        # Forwarded headers are the app's to believe, from REGISTRY_FORWARDED_ALLOW_IPS only:
        # uvicorn's own default trusts 127.0.0.1 (and FORWARDED_ALLOW_IPS) before the app sees it.
        proxy_headers=False,
        log_level=settings.server.log_level.lower(),
        # uvicorn's own lines go through the root logger, in REGISTRY_LOG_FORMAT.
        log_config=None,
    )


def _address(host: str, port: int) -> str:
    """`host:port` as a URL writes it: an IPv6 address in brackets (`[::1]:8715`)."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def _refuse_unusable_address(host: str, port: int) -> None:
    """Bind a first socket as uvicorn will: uvicorn would start the app, then log the failure
    and stop, after "listening on" was printed."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {_address(host, port)} ({exc.strerror or exc}); "
            "check --host and --port, or REGISTRY_HOST and REGISTRY_PORT"
        ) from exc


@main.command()
@click.option(
    "--check",
    is_flag=True,
    help="Exit 0 if a worker's heartbeat (REGISTRY_WORKER_HEARTBEAT_FILE) is recent, 1 if not.",
)
@click.option(
    "--max-age",
    type=AsciiFloat(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="With --check: seconds.",
)
@click.option(
    "--jobs",
    "only",
    default=None,
    metavar="NAMES",
    help="Run only these jobs: comma-separated job ids or groups (`deliveries`: the agency and bank pushes).",
)
@click.option(
    "--skip-jobs", "skip", default="", metavar="NAMES", help="Run every job but these (ids or groups)."
)
def worker(check: bool, max_age: float, only: str | None, skip: str) -> None:
    """Run the background jobs alone (start the web with --no-scheduler); split them across
    processes with --jobs / --skip-jobs (docs/operations.md)."""
    from service.heartbeat import beat, heartbeat_age, notify
    from service.scheduler import UnknownJob, select_jobs

    settings = _settings()
    heartbeat = settings.server.worker_heartbeat_file
    if check:
        age = heartbeat_age(heartbeat)
        if age is None or age > max_age:
            raise click.ClickException(f"worker heartbeat {'missing' if age is None else f'{age:.0f} s old'}")
        click.echo(f"worker alive (heartbeat {age:.0f} s old)")
        return

    if only is not None and not _names(only):
        # An empty list selected every job: the opposite of what was asked.
        raise click.BadParameter("name at least one job or group", param_hint="--jobs")
    try:
        jobs = select_jobs(settings, PLUGINS, _names(only or ""), _names(skip))
    except UnknownJob as exc:
        raise click.BadParameter(str(exc), param_hint="--jobs/--skip-jobs") from exc
    if not jobs:
        raise click.BadParameter("no job left to run", param_hint="--jobs/--skip-jobs")

    from service.app import process_resources
    from service.scheduler import build_scheduler

    async def work(services: Services) -> None:
        async with process_resources(services, PLUGINS):
            scheduler = build_scheduler(services, PLUGINS, jobs)
            scheduler.start()
            notify("READY=1")
            _announce(settings, f"worker running background jobs: {', '.join(sorted(jobs))}; Ctrl-C stops it")
            try:
                await beat(heartbeat)
            finally:
                scheduler.shutdown(wait=False)

    run_with_services(work)


def _names(option: str) -> list[str]:
    return [name.strip() for name in option.split(",") if name.strip()]


@main.command()
@click.option("--listings", "count", type=AsciiInt(min=0), default=2000, show_default=True)
@click.option("--seed", type=AsciiInt(), default=1, show_default=True)
def demo(count: int, seed: int) -> None:
    """Demo courts with their own keys, and COUNT realistic signed listings."""
    from demo.runner import load_demo

    summary = run_with_services(lambda services: load_demo(services, count, seed))
    click.echo(json.dumps(summary, ensure_ascii=False))


@main.command()
@click.argument(
    "what",
    type=click.Choice(
        [
            "ingest",
            "sync",
            "checks",
            "search",
            "feeds",
            "export",
            "checkpoint",
            "sizes",
            "statistics",
            "keys",
            "readers",
        ]
    ),
    default="ingest",
)
@click.option("--listings", "count", type=AsciiInt(min=1), default=100_000, show_default=True)
@click.option("--batch-size", type=AsciiInt(min=1), default=10_000, show_default=True)
@click.option("--workers", type=AsciiInt(min=0), default=0, help="Preparing processes; 0 = one per core.")
@click.option("--output", type=click.Path(path_type=Path), default=None, help="Also write the JSON here.")
@click.option(
    "--database-url", default=None, help="PostgreSQL server to make scratch databases on (default: SQLite)."
)
@click.option(
    "--removals",
    type=AsciiInt(min=0),
    default=200,
    show_default=True,
    help="sync, search: removals timed (search: this many idle, as many during batches).",
)
@click.option(
    "--workers-split/--one-worker",
    "split",
    default=None,
    help="sync: the deliveries in a worker of their own (default: on PostgreSQL only).",
)
@click.option(
    "--dataset",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="search (SQLite or PostgreSQL), feeds/export/checkpoint (SQLite): keep the built database "
    "(PostgreSQL: its name, on the server) here and reuse a copy of it next time; with --bulk, "
    "search, checks and feeds/export/checkpoint share one kept list (SQLite or PostgreSQL).",
)
@click.option(
    "--bulk",
    "bulk_on_top",
    type=AsciiInt(min=0),
    default=None,
    help="search, sizes, checks, feeds/export/checkpoint: build the list by the bulk path (bench.bulk, "
    "not an ingest figure), the last BULK listings through `registry import` on top of it (the ingest "
    "figure at that size).",
)
def bench(
    what: str,
    count: int,
    batch_size: int,
    workers: int,
    output: Path | None,
    database_url: str | None,
    removals: int,
    dataset: Path | None,
    split: bool | None,
    bulk_on_top: int | None,
) -> None:
    """Measure on a scratch database, JSON out: signed ingest (batch endpoint and `registry
    import`); agency sync (`sync`: fan-out to three push receivers, removal-to-acknowledgement
    latency); the bank check (`checks`: batch-1000 latency, single checks against a bare
    Litestar endpoint); public search (`search`); feeds (request latency), export (time, peak
    memory), checkpoint (time, proof latency); statistics (request latency, docs/statistics.md);
    a blind-index key rotation (`keys`: lookups under two keys, recomputation, retirement);
    each log reader's cost a listing event, alone (`readers`: CPU and write-transaction time)."""
    from bench.checks import run_checks_bench
    from bench.common import MachineRun, run_ingest_bench

    machine = MachineRun()
    if what == "sync":
        from bench.sync import run_sync_bench

        result = run_sync_bench(count=count, removals=removals, database_url=database_url, split=split)
    elif what == "checks":
        result = run_checks_bench(
            count=count, workers=workers, database_url=database_url, dataset=dataset, bulk_on_top=bulk_on_top
        )
    elif what == "search":
        from bench.search import run_search_bench

        result = run_search_bench(
            count=count,
            database_url=database_url,
            dataset=dataset,
            removals=removals,
            batch_size=batch_size,
            bulk_on_top=bulk_on_top,
        )
    elif what == "sizes":
        from bench.sizes import run_sizes_bench

        result = run_sizes_bench(count=count, database_url=database_url, bulk_on_top=bulk_on_top)
    elif what == "statistics":
        from bench.statistics import run_statistics_bench

        result = run_statistics_bench(count=count, database_url=database_url)
    elif what == "readers":
        from bench.readers import run_readers_bench

        result = run_readers_bench(count=count, database_url=database_url)
    elif what == "keys":
        from bench.keys import run_keys_bench

        result = run_keys_bench(count=count, database_url=database_url)
    elif what in ("feeds", "export", "checkpoint"):
        from bench.publishing import run_publishing_bench

        result = run_publishing_bench(
            what, count=count, database_url=database_url, dataset=dataset, bulk_on_top=bulk_on_top
        )
    else:
        result = run_ingest_bench(
            count=count, batch_size=batch_size, workers=workers, database_url=database_url
        )
    # Which machine, under which load, and CPU time beside wall time: first in the output.
    result = {"benchmark": result.pop("benchmark", what), "machine": machine.finish(), **result}
    text = json.dumps(result, indent=2)
    if output is not None:
        output.write_text(text)
    click.echo(text)


for _plugin in PLUGINS:
    for _command in _plugin.cli:
        main.add_command(_command)

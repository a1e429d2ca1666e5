"""`registry log ...`: the transparency log (RFC 6962 Merkle tree of listing events)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from registry.clirun import run_with_services
from registry.listings.ingest import worker_count
from registry.runtime import Services
from registry.settings import Settings


@click.group("log")
def log_group() -> None:
    """The transparency log (RFC 6962 Merkle tree of listing events)."""


@log_group.command("checkpoint")
def log_checkpoint() -> None:
    """Log every pending listing event and sign a checkpoint if the tree grew. A large
    backlog (a first checkpoint over an existing registry) is computed by one process per core
    (REGISTRY_INGEST_WORKERS)."""
    from registry.db import create_sync_engine
    from registry.progress import advance, progress_bar
    from registry.translog.catchup import backlog, catch_up
    from registry.translog.jobs import advance_log

    settings = Settings()
    engine = create_sync_engine(settings.database.url)
    try:
        total = backlog(engine)
        with progress_bar("logging events", total):
            covered = catch_up(engine, settings.database.url, worker_count(settings.listings.ingest_workers))
            # A backlog too small for the parallel catch-up is logged by the reader itself.
            size = run_with_services(advance_log)
            advance(total - covered)
    finally:
        engine.dispose()
    # JSON, as every long command's result (docs/operations.md): null when no event was new.
    click.echo(json.dumps({"checkpoint_tree_size": size}))


@log_group.command("verify")
@click.option("--url", default=None, help="Check a running registry over HTTP, as an outsider would.")
@click.option(
    "--known",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With --url: the last checkpoint you verified (kept up to date here); the log must extend it.",
)
def log_verify(url: str | None, known: Path | None) -> None:
    """Check the checkpoint chain: signatures, consistency, and (from the database) every leaf."""
    from registry.translog.verify import KnownFileError, verify_database, verify_remote

    if url is not None:
        try:
            report = verify_remote(url.rstrip("/"), known)
        except KnownFileError as exc:
            raise click.ClickException(str(exc)) from exc
    else:

        async def work(services: Services) -> Any:
            signer = services.signer
            keys = {kid: private.public_key() for kid, private in signer.keys.items()}
            return await services.db.read(verify_database, keys)

        report = run_with_services(work)
    click.echo(json.dumps(report.as_dict(), indent=2))
    if not report.ok:
        sys.exit(1)

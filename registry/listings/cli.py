"""`registry import` and `registry expire`."""

from __future__ import annotations

import json
import sys
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import click

from registry.cliparams import AsciiInt
from registry.clirun import run_with_services
from registry.listings.ingest import IngestStalled, worker_count
from registry.runtime import Services


@click.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--workers", type=AsciiInt(min=0), default=0, help="Preparing processes; 0 = one per core.")
@click.option("--chunk-size", type=AsciiInt(min=1), default=1000, show_default=True)
def import_command(path: Path, workers: int, chunk_size: int) -> None:
    """Import signed listing envelopes, one JSON object per line."""
    from registry.listings.importer import import_file
    from registry.progress import advance, progress_bar

    total = sum(1 for line in path.open("rb") if line.strip())

    async def work(services: Services) -> dict[str, Any]:
        with progress_bar("importing", total):
            report = await import_file(
                services,
                path,
                workers=worker_count(workers or services.settings.listings.ingest_workers),
                chunk_size=chunk_size,
                on_progress=advance,
            )
        return report.as_dict()

    try:
        result = run_with_services(work)
    except (IngestStalled, BrokenProcessPool) as exc:
        # A worker lost or stuck: no traceback for an operator, and the import is safe to rerun.
        raise click.ClickException(str(exc) or "an ingest worker died; run the import again") from exc
    click.echo(json.dumps(result, ensure_ascii=False))
    if result["rejected"]:
        sys.exit(1)


@click.command()
def expire() -> None:
    """Expire every fixed-term listing whose term has ended, now."""
    from registry.listings.jobs import expire_fixed_terms

    click.echo(f"expired {run_with_services(expire_fixed_terms)}")

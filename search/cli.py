"""`registry search ...`: the public search index (REGISTRY_SEARCH_BACKEND)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import click

from registry.clirun import cli_settings
from search.interface import SearchUnavailable


@click.group()
def search() -> None:
    """The public search index (REGISTRY_SEARCH_BACKEND)."""


@contextmanager
def _engine_down() -> Iterator[None]:
    # The operator's reason, not the public's "retry shortly" (the root group's line for it).
    try:
        yield
    except SearchUnavailable as exc:
        raise click.ClickException(f"search engine unavailable: {exc.reason}") from exc


@search.command("reindex")
def search_reindex() -> None:
    """Rebuild the index from every active listing; the old one serves until the new one is in."""
    from registry.progress import progress_bar
    from search.maintenance import active_listings, reindex_now

    settings = cli_settings()
    with _engine_down(), progress_bar("reindexing", active_listings(settings)):
        figures = reindex_now(settings)
    click.echo(json.dumps(figures))


@search.command("reconcile")
@click.option(
    "--deep",
    is_flag=True,
    help="Rebuild and compare every document whole (slow; Meilisearch compares versions only).",
)
def search_reconcile(deep: bool) -> None:
    """Compare the index with the registry, repair any drift, print the counts (JSON)."""
    from registry.progress import progress_bar
    from search.maintenance import active_listings, reconcile_now

    settings = cli_settings()
    with _engine_down(), progress_bar("reconciling", active_listings(settings)):
        counts = reconcile_now(settings, deep=deep)
    click.echo(json.dumps(counts))


@search.command("recent-index")
def search_recent_index() -> None:
    """Build or move the newest documents' own text indexes if due (embedded engine on
    PostgreSQL; the worker does it hourly), print what was done (JSON)."""
    from registry.progress import display
    from search.maintenance import maintain_recent_now

    # A bar appears if a build is due (its total is the table's blocks, known then).
    with _engine_down(), display():
        done = maintain_recent_now(cli_settings())
    click.echo(json.dumps(done))

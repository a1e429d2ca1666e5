"""`registry search ...`: the public search index (REGISTRY_SEARCH_BACKEND)."""

from __future__ import annotations

import json

import click

from registry.settings import Settings


@click.group()
def search() -> None:
    """The public search index (REGISTRY_SEARCH_BACKEND)."""


@search.command("reindex")
def search_reindex() -> None:
    """Rebuild the index from every active listing; the old one serves until the new one is in."""
    from search.maintenance import reindex_now

    click.echo(json.dumps(reindex_now(Settings())))


@search.command("reconcile")
@click.option(
    "--deep",
    is_flag=True,
    help="Rebuild and compare every document whole (slow; Meilisearch compares versions only).",
)
def search_reconcile(deep: bool) -> None:
    """Compare the index with the registry, repair any drift, print the counts (JSON)."""
    from search.maintenance import reconcile_now

    click.echo(json.dumps(reconcile_now(Settings(), deep=deep)))

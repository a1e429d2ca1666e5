"""`registry feeds sync`."""

from __future__ import annotations

import click

from registry.clirun import run_with_services


@click.group()
def feeds() -> None:
    """Publication feeds."""


@feeds.command("sync")
def feeds_sync() -> None:
    """Bring the feeds' table up to the event log now (the scheduler does it every few seconds)."""
    from publishing.feeds.jobs import follow_publications

    click.echo(f"read {run_with_services(follow_publications)} events")

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
    from publishing.feeds.reader import READER
    from registry.eventlog.readers import follow

    read = run_with_services(lambda services: follow(services.db, READER))
    click.echo(f"read {read} events")

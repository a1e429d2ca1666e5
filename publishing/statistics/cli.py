"""`registry statistics follow`, `rebuild` and `compact`."""

from __future__ import annotations

import click

from registry.clirun import run_with_services


@click.group("statistics")
def statistics() -> None:
    """Statistics kept from the event log (docs/statistics.md)."""


@statistics.command("follow")
def statistics_follow() -> None:
    """Read the log up to its head now (the scheduler does it every few seconds)."""
    from publishing.statistics.reader import READER
    from registry.eventlog.readers import follow

    read = run_with_services(lambda services: follow(services.db, READER))
    click.echo(f"read {read} events")


@statistics.command("rebuild")
def statistics_rebuild() -> None:
    """Count the list again, in SQL, and put the reader at the log's head: after a change of
    how the counts are kept, or after a bulk load (reading millions of events takes hours).
    One transaction: the figures served meanwhile are the old ones (on SQLite, other writes
    wait for it)."""
    import time

    from publishing.statistics.reader import recount
    from registry.clirun import in_write_transaction

    started = time.monotonic()
    counted = in_write_transaction(recount)
    click.echo(f"counted {counted} listings in {time.monotonic() - started:.1f} s")


@statistics.command("compact")
def statistics_compact() -> None:
    """Rewrite the counts in key order (PostgreSQL `CLUSTER`; the table is locked meanwhile,
    so run it in quiet hours), so that a period's rows are read from a few pages."""
    from publishing.statistics.reader import compact
    from registry.clirun import in_write_transaction

    done = in_write_transaction(compact)
    if done is None:
        click.echo("nothing to do: SQLite keeps the counts in key order")
    else:
        click.echo(f"{done.rows} rows: {done.pages_before} pages before, {done.pages_after} after")

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
    """Empty the counts and read the whole log again, e.g. after a change of how they count."""
    from publishing.statistics.reader import READER, reset
    from registry.eventlog.readers import follow

    async def work(services: object) -> int:
        from registry.runtime import Services

        assert isinstance(services, Services)
        await services.db.write(reset)
        return await follow(services.db, READER)

    click.echo(f"read {run_with_services(work)} events")


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

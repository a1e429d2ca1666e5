"""`registry export run`."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

import click

from registry.calendar import today_in_china
from registry.clirun import cli_settings, run_with_services
from registry.runtime import Services


@click.group()
def export() -> None:
    """Signed bulk exports."""


@export.command("run")
@click.option(
    "--date", "day", type=click.DateTime(["%Y-%m-%d"]), default=None, help="China date; default today."
)
def export_run(day: datetime | None) -> None:
    """Write the export of DATE (full public list now + that day's changes), sign it, prune old ones."""
    from sqlalchemy import func, select

    from publishing.exports.jobs import export_now
    from registry.listings.models import Listing
    from registry.progress import progress_bar

    today = today_in_china()
    chosen = day.date() if day is not None else today
    if chosen > today:
        # The list is today's whatever the date: a later one would be published signed, untrue.
        raise click.BadParameter(f"{chosen} is after today in China ({today})", param_hint="--date")
    oldest = today - timedelta(days=cli_settings().exports.retention_days)
    if chosen < oldest:
        # Written, signed and reported, then pruned by the same run: refused, not pretended.
        raise click.BadParameter(
            f"{chosen} is before the oldest day exports are kept for ({oldest}, "
            "REGISTRY_EXPORT_RETENTION_DAYS)",
            param_hint="--date",
        )

    async def work(services: Services) -> dict[str, Any]:
        def active(conn: Any) -> int:
            return int(conn.execute(select(func.count()).where(Listing.status == "active")).scalar_one())

        with progress_bar("exporting", await services.db.read(active)):
            return await asyncio.to_thread(export_now, services, chosen)

    click.echo(json.dumps(run_with_services(work), indent=2))

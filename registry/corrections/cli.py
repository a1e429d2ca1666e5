"""`registry corrections ...`: the correction queue and its deadlines, for operators."""

from __future__ import annotations

import json

import click
import msgspec

from registry.calendar import today_in_china
from registry.cliparams import AsciiInt
from registry.clirun import in_read_transaction, in_write_transaction
from registry.corrections.services import READER, list_corrections
from registry.eventlog.readers import step
from registry.identity.identifiers import IdentifierError, normalise_court_code
from registry.problems import Problem
from registry.timeutil import utcnow


@click.group()
def corrections() -> None:
    """Correction and review (SPC Art. 9, 11, 12)."""


@corrections.command("list")
@click.option("--state", type=click.Choice(["open", "overdue", "all"]), default="open", show_default=True)
@click.option("--court", default=None, help="One court's (the listing court or the deciding court).")
@click.option("--limit", type=AsciiInt(1, 100_000), default=1000, show_default=True)
def corrections_list(state: str, court: str | None, limit: int) -> None:
    """What is awaited of each court and by when, as JSON (ids and codes only)."""
    if court is not None:
        try:
            court = normalise_court_code(court)
        except IdentifierError as exc:
            raise Problem(422, exc.code, exc.message) from exc
    page = in_read_transaction(
        lambda c: list_corrections(c, court, state=state, today=today_in_china(), limit=limit, offset=0)
    )
    click.echo(json.dumps(msgspec.to_builtins(page), ensure_ascii=False, indent=2))


@corrections.command("follow")
def corrections_follow() -> None:
    """Note now the corrections carried out by amendments and removals since the last run."""
    total = 0
    while True:
        read = in_write_transaction(lambda c: step(c, READER, utcnow()))
        total += read
        if read < READER.batch:
            break
    click.echo(f"read {total} events")

"""`registry sync ...`: subscriptions from the command line (the same services as the API)."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import click

from publishing.sync import services as sync
from publishing.sync.delivery import deliver_due
from publishing.sync.notices import PAGE_MAX, count_notices, notice_reader, overdue_notices
from publishing.sync.profiles import PROFILES
from registry.cliparams import AsciiInt
from registry.clirun import CLI_ACTOR, in_write_transaction, run_with_services
from registry.endpoints import PushPolicy
from registry.eventlog.readers import follow
from registry.runtime import Services
from registry.timeutil import utcnow


def _echo(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


@click.group("sync")
def sync_cli() -> None:
    """Agency linkage sync: subscriptions, replay, delivery."""


@sync_cli.command("create")
@click.option("--client", "client_id", required=True, help="The agency client's id.")
@click.option("--profile", type=click.Choice(sorted(PROFILES)), required=True)
@click.option("--mode", type=click.Choice(sync.MODES), required=True)
@click.option(
    "--endpoint",
    "endpoint_url",
    default=None,
    help="https:// URL at a public address pushes go to (push mode; see REGISTRY_PUSH_ALLOWED_NETWORKS).",
)
@click.option(
    "--from-seq", type=AsciiInt(), default=0, show_default=True, help="Start after this log position."
)
def create(client_id: str, profile: str, mode: str, endpoint_url: str | None, from_seq: int) -> None:
    """Subscribe an agency. Prints the subscription (its id is `id`)."""

    async def work(services: Services) -> dict[str, Any]:
        policy = PushPolicy.from_settings(services.settings)
        await sync.vet_endpoint(endpoint_url, policy)
        return await services.db.write(
            lambda c: sync.create_subscription(
                c,
                client_id=client_id,
                profile=profile,
                mode=mode,
                endpoint_url=endpoint_url,
                from_seq=from_seq,
                actor=CLI_ACTOR,
                now=utcnow(),
                policy=policy,
            )
        )

    _echo(run_with_services(work))


@sync_cli.command("list")
def list_command() -> None:
    _echo(in_write_transaction(sync.list_subscriptions))


@sync_cli.command("inspect")
@click.argument("subscription_id")
def inspect(subscription_id: str) -> None:
    """Cursor, backlog, failures and latency percentiles of one subscription."""
    _echo(in_write_transaction(lambda c: sync.subscription_status(c, subscription_id)))


@sync_cli.command("pause")
@click.argument("subscription_id")
def pause(subscription_id: str) -> None:
    _echo(
        in_write_transaction(
            lambda c: sync.set_state(c, subscription_id, "paused", actor=CLI_ACTOR, now=utcnow())
        )
    )


@sync_cli.command("resume")
@click.argument("subscription_id")
def resume(subscription_id: str) -> None:
    """Active again; clears a `failing` flag."""
    _echo(
        in_write_transaction(
            lambda c: sync.set_state(c, subscription_id, "active", actor=CLI_ACTOR, now=utcnow())
        )
    )


@sync_cli.command("replay")
@click.argument("subscription_id")
@click.option(
    "--from-seq", type=AsciiInt(), required=True, help="Deliver again everything after this position."
)
def replay(subscription_id: str, from_seq: int) -> None:
    _echo(
        in_write_transaction(
            lambda c: sync.replay(c, subscription_id, from_seq, actor=CLI_ACTOR, now=utcnow())
        )
    )


@sync_cli.command("deliver")
def deliver() -> None:
    """One push pass now, in this process (the worker does this every REGISTRY_SYNC_INTERVAL_SECONDS)."""
    click.echo(f"delivered {run_with_services(deliver_due)} events")


@sync_cli.command("notices")
def issue() -> None:
    """Issue assistance notices for everything new in the log, now (the worker does this too)."""

    async def work(services: Services) -> int:
        before = await services.db.read(count_notices)
        await follow(services.db, notice_reader(services.settings.sync.notice_deadline_days))
        return await services.db.read(count_notices) - before

    click.echo(f"issued {run_with_services(work)} notices")


@sync_cli.command("overdue")
def overdue() -> None:
    """Notices unacknowledged past their deadline (Art. 24 escalation)."""
    now = utcnow()
    overdue_: list[dict[str, Any]] = []
    while True:  # every one, a page at a time
        after = overdue_[-1]["id"] if overdue_ else ""
        page = in_write_transaction(partial(overdue_notices, now=now, after=after))
        overdue_ += page
        if len(page) < PAGE_MAX:
            break
    _echo(overdue_)

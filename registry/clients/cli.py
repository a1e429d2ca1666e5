"""`registry client ...`: API clients and their keys."""

from __future__ import annotations

import json

import click

from registry.clients.services import ROLES, create_client, list_clients, revoke_client, rotate_key
from registry.clirun import CLI_ACTOR, in_read_transaction, in_write_transaction
from registry.identity.identifiers import normalise_text
from registry.timeutil import utcnow


@click.group()
def client() -> None:
    """API clients and their keys."""


@client.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--court", "court_code", default=None, help="The court a `court` client is bound to.")
def client_create(name: str, role: str, court_code: str | None) -> None:
    """Create a client. Prints its API key once, alone on the last line."""
    # The service checks the name as given (`create_client`); only a blank one is named here.
    if not normalise_text(name):
        raise click.BadParameter("a client needs a name (it was blank)", param_hint="NAME")
    client_id, api_key = in_write_transaction(
        lambda c: create_client(c, name, role, court_code, actor=CLI_ACTOR, now=utcnow())
    )
    click.echo(f"client {client_id} ({role}); its API key, shown only now:", err=True)
    click.echo(api_key)


@client.command("revoke")
@click.argument("client_id")
def client_revoke(client_id: str) -> None:
    in_write_transaction(lambda c: revoke_client(c, client_id, actor=CLI_ACTOR, now=utcnow()))
    click.echo(f"revoked {client_id}")


@client.command("rotate-key")
@click.argument("client_id")
def client_rotate_key(client_id: str) -> None:
    """A new API key for a client whose key is lost or exposed; the old key stops working at
    once. The client keeps its id, subscriptions, notices and watchlist. Prints the key once,
    alone on the last line."""
    api_key = in_write_transaction(lambda c: rotate_key(c, client_id, actor=CLI_ACTOR, now=utcnow()))
    click.echo(f"client {client_id}: its new API key, shown only now (the old one is refused):", err=True)
    click.echo(api_key)


@client.command("list")
def client_list() -> None:
    click.echo(json.dumps(in_read_transaction(list_clients), ensure_ascii=False, indent=2))

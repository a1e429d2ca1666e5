"""`registry check`: one bank check from the operator's console."""

from __future__ import annotations

import click
from sqlalchemy import Connection

from registry.clirun import CLI_ACTOR, run_with_services
from registry.runtime import Services
from registry.timeutil import utcnow


@click.command("check")
@click.argument("identifier")
@click.option("--name", default=None, help="The name the borrower gave; a mismatch is flagged.")
@click.option(
    "--credit-code", "organization", is_flag=True, help="IDENTIFIER is a unified social credit code."
)
@click.option("--purpose", default="credit_review", show_default=True, help="Why the operator checks.")
@click.option("--reference", default="operator", show_default=True, help="Recorded in the log and receipt.")
def check_command(
    identifier: str, name: str | None, organization: bool, purpose: str, reference: str
) -> None:
    """Check one subject as the bank API would (ID number by default); JSON with a signed receipt.
    Logged in the query log as the operator, outside any bank's quota."""
    import msgspec

    from registry.checks.schemas import CheckRequest, CheckSubject
    from registry.checks.services import CheckOutcome, answer, record, run_check, validate_request
    from registry.checks.stores import CoreStore

    subject = (
        CheckSubject(credit_code=identifier, name=name)
        if organization
        else CheckSubject(id_number=identifier, name=name)
    )
    request = validate_request(CheckRequest(subjects=[subject], purpose=purpose, reference=reference), 1)

    async def work(services: Services) -> bytes:

        def check(sync: Connection) -> CheckOutcome:
            store = CoreStore(sync)
            outcome = run_check(
                store,
                client_id=CLI_ACTOR,
                request=request,
                blind_index=services.secrets.blind_index,
                now=utcnow(),
            )
            record(store, outcome, quota=None)
            return outcome

        outcome = await services.db.write(check)
        return msgspec.json.encode(answer(outcome, services.checks.receipts))

    click.echo(run_with_services(work).decode())

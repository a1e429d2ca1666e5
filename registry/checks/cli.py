"""`registry check`: one bank check from the operator's console."""

from __future__ import annotations

import click
from sqlalchemy import Connection

from registry.clirun import CLI_ACTOR, run_with_services
from registry.runtime import Services
from registry.timeutil import utcnow

# The options whose text the body's decoder checks, by the pointer it names them with.
_OPTIONS = {"/purpose": "--purpose", "/reference": "--reference"}


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

    from registry.checks.schemas import CheckRequest
    from registry.checks.services import CheckOutcome, answer, record, run_check, validate_request
    from registry.checks.stores import CoreStore
    from registry.http.body import decode_body
    from registry.problems import Problem

    subject = {"credit_code" if organization else "id_number": identifier}
    if name is not None:
        subject["name"] = name
    try:
        body = msgspec.json.encode({"subjects": [subject], "purpose": purpose, "reference": reference})
    except UnicodeEncodeError:
        # An argument that was not UTF-8 (the shell passed bytes Python could not decode).
        raise Problem(422, "invalid_field", "the arguments are not UTF-8 text") from None
    # The bank API's body, decoded as it decodes one: its lengths and the one text rule
    # (`registry.text`), then what the struct cannot say.
    try:
        request = decode_body(body, CheckRequest)
    except Problem as problem:
        option = _OPTIONS.get(problem.pointer or "")
        if option is None:
            raise
        raise Problem(problem.status, problem.code, f"{option}: {problem.detail}") from None
    request = validate_request(request, 1)

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

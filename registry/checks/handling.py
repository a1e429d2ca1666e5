"""A bank check from its bank key to its answer, for both ways in: the Litestar route
(`registry.checks.controllers.CheckController.check`) and the raw ASGI front
(`registry.checks.front`). One copy, so that both refuse and answer alike."""

from __future__ import annotations

from registry.checks.schemas import CheckAnswer, CheckRequest
from registry.checks.services import (
    CheckOutcome,
    answer,
    authenticate_bank,
    run_check,
    validate_request,
)
from registry.checks.stores import CheckStore, CoreStore
from registry.runtime import Services
from registry.timeutil import utcnow


async def admit_bank(services: Services, authorization: str) -> str:
    """The bank's client id, from its key, and its rate: 401/403 problems for a key that is
    not a bank's, 429 for a throttled bank. Before a byte of the body is read. On SQLite
    the key is read inline on the check's held connection (the hot path cannot afford a
    thread hop); on PostgreSQL it is one short read."""
    checks = services.checks
    if checks.reader is not None:
        client_id = checks.statement_on_sqlite(lambda store: authenticate_bank(store, authorization))
    else:
        client_id = await services.db.read_statement(
            lambda conn: authenticate_bank(CoreStore(conn), authorization)
        )
    checks.throttle(client_id)
    return client_id


async def check_answer(services: Services, client_id: str, request: CheckRequest) -> CheckAnswer:
    """Validate, read, log (committed before this returns) and sign: the answer to send."""
    settings = services.settings
    check = validate_request(request, settings.checks.batch_max_subjects)
    blind_index = services.secrets.blind_index
    now = utcnow()

    def work(store: CheckStore) -> CheckOutcome:
        return run_check(store, client_id=client_id, request=check, blind_index=blind_index, now=now)

    quota = settings.checks.daily_quota
    checks = services.checks
    if checks.reader is not None:
        # One statement, its own snapshot: on SQLite inline on the driver.
        outcome = checks.statement_on_sqlite(work)
    else:
        outcome = await services.db.read_statement(lambda conn: work(CoreStore(conn)))
    # Then log with the checks of this moment; the answer waits for that commit.
    await checks.group_commit.record(outcome, quota)
    return answer(outcome, checks.receipts)

"""`registry audit verify`."""

from __future__ import annotations

import sys
from typing import Any

import click

from registry.clirun import operator_warning, run_with_services
from registry.runtime import Services


@click.group()
def audit() -> None:
    """The audit trail."""


@audit.command("verify")
def audit_verify() -> None:
    """Re-check the hash chain and every court signature; name the first bad record."""
    from registry.eventlog.audit import audit as run_audit

    async def work(services: Services) -> Any:
        return await services.db.read(run_audit, services.secrets.keyring)

    report = run_with_services(work)
    summary = f"{report.events_checked} events, {report.signatures_checked} signatures checked"
    if report.ok:
        click.echo(f"audit ok: {summary}")
        return
    operator_warning(f"audit FAILED at {report.first_bad} ({summary} before it)")
    sys.exit(1)

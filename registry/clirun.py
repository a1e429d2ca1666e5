"""How a CLI command reaches the service: build `Services` from the environment, run one
piece of work, close everything; a Problem becomes a one-line error instead of a traceback.

Shared by `registry/cli.py` and the command groups other packages add to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click
from sqlalchemy import Connection

from registry.identity.errors import KeyConfigError, KeysUnavailable
from registry.problems import Problem
from registry.runtime import Services
from registry.settings import Settings

T = TypeVar("T")
CLI_ACTOR = "operator:cli"


def run_with_services(work: Callable[[Services], Awaitable[T]]) -> T:
    async def main() -> T:
        services = Services.create(Settings())
        try:
            return await work(services)
        finally:
            await services.close()

    try:
        return asyncio.run(main())
    except Problem as problem:
        raise click.ClickException(f"{problem.code}: {problem.detail}") from problem
    except (KeysUnavailable, KeyConfigError) as exc:
        raise click.ClickException(str(exc)) from exc


def in_write_transaction(fn: Callable[[Connection], T]) -> T:
    async def work(services: Services) -> T:
        return await services.db.write(fn)

    return run_with_services(work)


def in_read_transaction(fn: Callable[[Connection], T]) -> T:
    async def work(services: Services) -> T:
        return await services.db.read(fn)

    return run_with_services(work)

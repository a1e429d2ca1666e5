"""How a CLI command reaches the service: build `Services` from the environment, run one
piece of work, close everything. What an operator can fix or wait out (a bad setting, a refused
request, a missing key, the database out of reach) becomes one line instead of a traceback.

Shared by `registry/cli.py` and the command groups other packages add to it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, TypeVar

import click
from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError, InterfaceError, OperationalError

from registry.identity.errors import KeyConfigError, KeysUnavailable
from registry.logs import JsonFormatter, logging_json
from registry.problems import Problem
from registry.runtime import Services
from registry.settings import DatabaseSettings, Settings, SettingsError, load_settings

T = TypeVar("T")
CLI_ACTOR = "operator:cli"

# How asyncpg (migrations, the async engine) fails to connect: unwrapped, not as a DBAPI error.
# Not every OSError: a broken pipe is click's to handle, a missing file has its own line below.
_UNREACHABLE = (
    ConnectionRefusedError,
    ConnectionResetError,
    ConnectionAbortedError,
    TimeoutError,
    socket.gaierror,
)


class OperatorError(click.ClickException):
    """What stops a command: an `Error:` line for each of `lines` on stderr; with
    REGISTRY_LOG_FORMAT=json, a JSON log line each instead (stderr is a log shipper's then)."""

    def __init__(self, *lines: str) -> None:
        super().__init__("\nError: ".join(lines))
        self.lines = lines

    def show(self, file: IO[Any] | None = None) -> None:
        if not _json_lines():
            super().show(file)
            return
        for line in self.lines:
            record = logging.makeLogRecord(
                {"name": "registry.cli", "levelno": logging.ERROR, "levelname": "ERROR", "msg": line}
            )
            click.echo(JsonFormatter().format(record), file=file, err=file is None)


def operator_warning(line: str) -> None:
    """A line on stderr for the operator that does not stop the command: with
    REGISTRY_LOG_FORMAT=json a JSON log line (WARNING), as `OperatorError` writes its own."""
    if not _json_lines():
        click.echo(line, err=True)
        return
    record = logging.makeLogRecord(
        {"name": "registry.cli", "levelno": logging.WARNING, "levelname": "WARNING", "msg": line}
    )
    click.echo(JsonFormatter().format(record), err=True)


class _OperatorUsageError(OperatorError):
    """A usage error (exit status 2) as `OperatorError` shows it."""

    exit_code = 2


def _json_lines() -> bool:
    # As the logs are written once the settings are read; before (a bad setting stopped the
    # command), as the environment asks.
    return logging_json() or any(
        name.upper() == "REGISTRY_LOG_FORMAT" and value == "json" for name, value in os.environ.items()
    )


def cli_settings() -> Settings:
    """The settings of a command; each bad `REGISTRY_*` variable on a line of its own."""
    try:
        return load_settings()
    except SettingsError as exc:
        raise OperatorError(*exc.lines) from None


@contextmanager
def operator_errors() -> Iterator[None]:
    """Around every command (the root group): its failures an operator can act on, one line
    each, a JSON log line with REGISTRY_LOG_FORMAT=json (click's own usage errors too)."""
    try:
        with _one_line():
            yield
    except click.ClickException as exc:
        if isinstance(exc, OperatorError) or not _json_lines():
            raise
        shown = _OperatorUsageError if exc.exit_code == 2 else OperatorError
        raise shown(exc.format_message()) from exc


@contextmanager
def _one_line() -> Iterator[None]:
    try:
        yield
    except Problem as problem:
        raise click.ClickException(f"{problem.code}: {problem.detail}") from problem
    except (KeysUnavailable, KeyConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
    except (OperationalError, InterfaceError) as exc:
        cause = str(exc.orig or exc).strip().split("\n", 1)[0] or type(exc.orig).__name__
        raise click.ClickException(f"database error at {_database_address()}: {cause}") from exc
    except DatabaseError as exc:
        # SQLite's plain DatabaseError: the file is no database (or a damaged one). Its other
        # errors (IntegrityError, ...) are the registry's bugs: a traceback.
        if type(exc.orig) is not sqlite3.DatabaseError:
            raise
        cause = str(exc.orig).strip().split("\n", 1)[0]
        if cause == "file is not a database":
            raise click.ClickException(
                f"{_database_address()} is not a SQLite database; check REGISTRY_DATABASE_URL"
            ) from exc
        raise click.ClickException(f"database error at {_database_address()}: {cause}") from exc
    except _UNREACHABLE as exc:
        # os.strerror: asyncio's own text names the address again ("Connect call failed (...)").
        cause = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or "timed out"
        raise click.ClickException(
            f"database unreachable at {_database_address()} ({cause.lower()})"
        ) from exc
    except OSError as exc:
        if exc.filename is None or isinstance(exc, BrokenPipeError):
            raise
        raise click.ClickException(f"{exc.filename}: {exc.strerror}") from exc


def _database_address() -> str:
    # Host and port, or the SQLite file: never the password the URL may carry. Read only once
    # a command failed, after the root group checked every setting.
    url = make_url(DatabaseSettings().url)
    if url.get_backend_name() == "sqlite":
        return url.database or "(no file)"
    return f"{url.host or 'local socket'}:{url.port or 5432}"


def run_with_services(work: Callable[[Services], Awaitable[T]]) -> T:
    async def main() -> T:
        services = Services.create(cli_settings())
        try:
            return await work(services)
        finally:
            await services.close()

    return asyncio.run(main())


def in_write_transaction(fn: Callable[[Connection], T]) -> T:
    async def work(services: Services) -> T:
        return await services.db.write(fn)

    return run_with_services(work)


def in_read_transaction(fn: Callable[[Connection], T]) -> T:
    async def work(services: Services) -> T:
        return await services.db.read(fn)

    return run_with_services(work)

"""Alembic environment: runs migrations over the service's own async engine."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from sqlalchemy import Connection

from registry.db import create_engine
from registry.settings import Settings
from registry.timeutil import UtcDateTime
from service.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    return str(config.attributes.get("database_url") or Settings().database.url)


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    # Migrations stand alone: our UTC wrapper is rendered as the plain column type it stores.
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


# Dialect-specific search objects made by migration 0003 (SQLite FTS5 tables and facet index,
# PostgreSQL GIN indexes) that the models cannot describe; see search/models.py.
UNMANAGED_PREFIXES = ("search_fts",)


def _include_name(name: str | None, _type: str, _parent_names: Any) -> bool:
    return not (name or "").startswith(UNMANAGED_PREFIXES)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
        include_name=_include_name,
    )
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode rebuilds a table (copy, DROP TABLE, rename): with foreign keys on, that
        # drop fails on any table other rows point at (courts, listings). SQLite's own
        # procedure for such changes: keys off before the transaction begins (on the driver's
        # connection: SQLAlchemy would begin one first, where the PRAGMA does nothing), then
        # every key checked before the commit. The connection is this command's own.
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.close()
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the migration left rows whose foreign keys point nowhere: {broken[:5]}")


async def _run_async() -> None:
    engine = create_engine(_url(), writer=False)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    existing = config.attributes.get("connection")
    if existing is not None:
        _run(existing)
    else:
        asyncio.run(_run_async())

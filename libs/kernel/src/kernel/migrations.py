"""Alembic glue: one chain and one version table per service, head checks for readiness."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kernel.db import READ_ONLY_SQLITE
from kernel.settings import normalise_database_url


def alembic_config(service_root: Path, database_url: str) -> Config:
    """Build the Alembic config of the service whose folder is ``service_root``."""
    config = Config(str(service_root / "alembic.ini"))
    config.set_main_option("script_location", str(service_root / "alembic"))
    config.attributes["database_url"] = normalise_database_url(database_url)
    return config


def upgrade_to_head(service_root: Path, database_url: str) -> None:
    """Apply every migration of the service to ``database_url``."""
    command.upgrade(alembic_config(service_root, database_url), "head")


def head_revision(service_root: Path) -> str | None:
    """Return the head revision of the service's migration chain."""
    script = ScriptDirectory(str(service_root / "alembic"))
    return script.get_current_head()


async def current_revision(engine: AsyncEngine, version_table: str) -> str | None:
    """Return the revision the database is at, or None before the first migration."""

    def read(connection: Connection) -> str | None:
        context = MigrationContext.configure(connection, opts={"version_table": version_table})
        return context.get_current_revision()

    async with engine.connect() as connection:
        await connection.execution_options(**READ_ONLY_SQLITE)
        return await connection.run_sync(read)


def run_env(
    context: Any,
    target_metadata: MetaData,
    version_table: str,
    *,
    database_maintained: Collection[str] = (),
) -> None:
    """The body of every service's ``alembic/env.py``: online migrations on an async engine.

    ``database_maintained`` names tables that migrations create but no model describes (kept by
    triggers); autogenerate leaves them alone instead of proposing to drop them.
    """
    url = context.config.attributes.get("database_url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database URL: pass it through alembic_config() or sqlalchemy.url")
    url = normalise_database_url(url)

    def include_object(
        _object: Any, name: str | None, type_: str, reflected: bool, _compare_to: Any
    ) -> bool:
        return not (type_ == "table" and reflected and name in database_maintained)

    def do_run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table=version_table,
            include_object=include_object,
            compare_type=True,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(do_run)
                await connection.commit()
        finally:
            await engine.dispose()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(run())
        return
    raise RuntimeError("run migrations outside a running event loop (use a thread)")

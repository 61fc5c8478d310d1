"""Each service's migration chain goes up, all the way down, and up again, on both backends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect

from accounts import SERVICE_ROOT as ACCOUNTS_ROOT
from credits import SERVICE_ROOT as CREDITS_ROOT
from kernel.db import make_engine
from kernel.migrations import alembic_config, head_revision
from kernel.settings import normalise_database_url
from testkit.fixtures import BACKENDS

SERVICES = {
    "accounts": (ACCOUNTS_ROOT, "accounts_alembic_version"),
    "credits": (CREDITS_ROOT, "credits_alembic_version"),
}


def _tables(url: str) -> set[str]:
    async def read() -> set[str]:
        engine = make_engine(normalise_database_url(url))
        try:
            async with engine.connect() as connection:
                return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(read())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_migrations_round_trip(
    request: pytest.FixtureRequest, tmp_path: Path, service: str, backend: str
) -> None:
    root, version_table = SERVICES[service]
    if backend == "postgresql":
        url = request.getfixturevalue("postgres").create_database(f"mig_{service}")
    else:
        url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    config = alembic_config(root, url)
    command.upgrade(config, "head")
    tables = _tables(url)
    assert version_table in tables
    assert len(tables) > 1
    command.downgrade(config, "base")
    assert _tables(url) == {version_table}  # only the (empty) version table is left
    command.upgrade(config, "head")
    assert _tables(url) == tables
    assert head_revision(root) is not None

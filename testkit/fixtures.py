"""Session fixtures every suite can use (registered by the root conftest)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.db import run_in_transaction
from kernel.migrations import upgrade_to_head
from kernel.settings import normalise_database_url
from testkit.postgres import PostgresServer, postgres_server

BACKENDS = ("postgresql", "sqlite")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for this run; fails with what to install when none can be had."""
    try:
        with postgres_server() as server:
            yield server
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


def migrated_database(
    request: pytest.FixtureRequest,
    *,
    backend: str,
    service: str,
    service_root: Path,
    seed: Callable[[AsyncSession], Awaitable[Any]] | None = None,
) -> str:
    """A fresh database for ``service`` on ``backend``, migrated by Alembic and seeded."""
    if backend == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database(service)
    else:
        folder = request.getfixturevalue("tmp_path_factory").mktemp(service)
        url = f"sqlite:///{folder / (service + '.sqlite3')}"
    upgrade_to_head(service_root, url)
    if seed is not None:
        asyncio.run(run_in_transaction(normalise_database_url(url), seed))
    return url

"""Credits service tests: every test runs on PostgreSQL and on SQLite, rolled back after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from credits import SERVICE_ROOT
from credits.catalogue.service import default_categories, load_categories
from credits.config import Settings
from credits.main import create_app
from testkit.apps import rolled_back_client, running
from testkit.fixtures import BACKENDS, migrated_database


async def _seed(session: AsyncSession) -> None:
    await load_categories(session=session, data=default_categories())


@pytest.fixture(scope="session", params=BACKENDS)
def credits_db(request: pytest.FixtureRequest) -> str:
    """A migrated credits database with the shipped reference data."""
    return migrated_database(
        request, backend=request.param, service="credits", service_root=SERVICE_ROOT, seed=_seed
    )


@pytest.fixture(scope="session")
async def credits_app(
    credits_db: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FastAPI]:
    data_dir: Path = tmp_path_factory.mktemp("credits-data")
    settings = Settings(database_url=credits_db, data_dir=data_dir, log_level="WARNING")
    async with running(create_app(settings)) as app:
        yield app


@pytest.fixture
async def client(credits_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with rolled_back_client(credits_app) as (http, _session):
        yield http

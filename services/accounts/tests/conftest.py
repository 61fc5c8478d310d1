"""Accounts service tests: every test runs on PostgreSQL and on SQLite, rolled back after."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import SERVICE_ROOT
from accounts.cli import DEMO_STAFF
from accounts.config import Settings
from accounts.main import create_app
from accounts.network.service import load_network, muye_network
from accounts.staff.service import ensure_staff
from testkit.apps import rolled_back_client, running
from testkit.fixtures import BACKENDS, migrated_database


async def _seed(session: AsyncSession) -> None:
    await load_network(session=session, data=muye_network())
    await ensure_staff(session=session, **DEMO_STAFF)


@pytest.fixture(scope="session", params=BACKENDS)
def accounts_db(request: pytest.FixtureRequest) -> str:
    """A migrated accounts database with the Muye network and the demo staff user."""
    return migrated_database(
        request, backend=request.param, service="accounts", service_root=SERVICE_ROOT, seed=_seed
    )


@pytest.fixture(scope="session")
def accounts_settings(accounts_db: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir: Path = tmp_path_factory.mktemp("accounts-data")
    return Settings(database_url=accounts_db, data_dir=data_dir, log_level="WARNING")


@pytest.fixture(scope="session")
async def accounts_app(accounts_settings: Settings) -> AsyncIterator[FastAPI]:
    async with running(create_app(accounts_settings)) as app:
        yield app


@pytest.fixture
async def staff_token(client: httpx.AsyncClient) -> str:
    response = await client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": DEMO_STAFF["username"],
            "password": DEMO_STAFF["password"],
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture
async def session_client(
    accounts_app: FastAPI,
) -> AsyncIterator[tuple[httpx.AsyncClient, AsyncSession]]:
    """A rolled-back client and the session its requests use (to arrange data directly)."""
    async with rolled_back_client(accounts_app) as pair:
        yield pair


@pytest.fixture
def client(session_client: tuple[httpx.AsyncClient, AsyncSession]) -> httpx.AsyncClient:
    return session_client[0]


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> dict:
    response = await client.post(
        "/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def staff_factory(session_client: tuple[httpx.AsyncClient, AsyncSession]):  # type: ignore[no-untyped-def]
    """Make a staff user with ``role`` at ``unit_key`` and return a token for them."""
    client, session = session_client

    async def make(role: str, unit_key: str) -> str:
        username = f"{role[:10]}-{unit_key}-{uuid.uuid4().hex[:6]}"
        await ensure_staff(
            session=session,
            username=username,
            display_name="测试",
            password="correct horse battery",
            role=role,
            unit_key=unit_key,
        )
        await session.commit()
        return str((await sign_in(client, username, "correct horse battery"))["access_token"])

    return make

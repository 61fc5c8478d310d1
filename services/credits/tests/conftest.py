"""Credits service tests: every test runs on PostgreSQL and on SQLite, rolled back after."""

from __future__ import annotations

import itertools
import json
import uuid
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
from kernel.tokens import StaticKeySource, TokenSigner, TokenVerifier, keys_from_jwks
from testkit.apps import rolled_back_client, running
from testkit.fixtures import BACKENDS, migrated_database
from testkit.tokens import private_jwk, public_jwk


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
async def session_client(
    credits_app: FastAPI,
) -> AsyncIterator[tuple[httpx.AsyncClient, AsyncSession]]:
    """A rolled-back client and the session its requests use (to arrange data directly)."""
    async with rolled_back_client(credits_app) as pair:
        yield pair


@pytest.fixture
def client(session_client: tuple[httpx.AsyncClient, AsyncSession]) -> httpx.AsyncClient:
    return session_client[0]


ISSUER_KEY = private_jwk("test-issuer")
# learning accounts as the accounts service would report them: number -> (id, status)
LEARNERS: dict[str, tuple[uuid.UUID, str]] = {}
_numbers = itertools.count(1)


def new_learner(status: str = "active") -> tuple[str, uuid.UUID]:
    """A learning account the faked accounts service knows: its number and id."""
    number = f"4107118{next(_numbers):07d}"
    LEARNERS[number] = (uuid.uuid4(), status)
    return number, LEARNERS[number][0]


UNIT_PATHS = {
    "410711": "/410711/",
    "410711100": "/410711/410711100/",
    "410711101": "/410711/410711101/",
}


@pytest.fixture(scope="session")
def issue_token(credits_app: FastAPI):  # type: ignore[no-untyped-def]
    """Sign tokens as the accounts service would; the credits app trusts this test issuer.

    The neighbour (accounts) is replaced at this level only: its keys by a test key and its
    public unit API by a fixed table. The end-to-end tests use the real service.
    """
    settings = credits_app.state.settings
    credits_app.state.token_verifier = TokenVerifier(
        StaticKeySource(keys_from_jwks({"keys": [public_jwk(ISSUER_KEY)]})),
        issuer=settings.token_issuer,
        audience=settings.token_audience,
    )

    async def units(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/learning-accounts/lookup":
            numbers = json.loads(request.content)["account_numbers"]
            found = [
                {"account_number": n, "id": str(LEARNERS[n][0]), "status": LEARNERS[n][1]}
                for n in numbers
                if n in LEARNERS
            ]
            return httpx.Response(200, json={"found": found})
        key = request.url.path.rsplit("/", 1)[-1]
        if key not in UNIT_PATHS:
            return httpx.Response(404, json={"type": "not-found"})
        return httpx.Response(200, json={"key": key, "path": UNIT_PATHS[key]})

    credits_app.state.accounts = httpx.AsyncClient(
        transport=httpx.MockTransport(units), base_url="http://accounts"
    )
    signer = TokenSigner(ISSUER_KEY, issuer=settings.token_issuer, audience=settings.token_audience)

    def make(
        kind: str,
        *,
        role: str | None = None,
        unit: str = "410711",
        subject: str | None = None,
        client_id: str | None = None,
    ) -> str:
        roles = [role] if role else ([kind] if kind in ("resident", "partner") else [])
        extra = {"unit_path": UNIT_PATHS.get(unit, "/410711/")}
        if client_id:
            extra["client_id"] = client_id
        return signer.sign(
            subject=subject or str(uuid.uuid4()),
            kind=kind,
            lifetime_seconds=600,
            roles=roles,
            scopes=["records:write"] if kind == "partner" else [],
            unit=unit,
            extra=extra,
        )

    return make

"""A database connection dropped under the service: one 503 the client can retry, then service."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from kernel.app import build_service_app
from kernel.db import make_engine
from testkit.postgres import PostgresServer


@pytest.fixture
def database(postgres: PostgresServer) -> str:
    return postgres.create_database("disconnect")


async def test_a_dropped_connection_answers_503_once_then_the_pool_recovers(
    postgres: PostgresServer, database: str
) -> None:
    url = database
    engine = make_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    async def ready() -> dict[str, dict[str, str]]:
        return {}

    app = build_service_app(
        title="t", version="0", description="", lifespan=lifespan, readiness=ready, routers=[]
    )

    @app.get("/backend")
    async def backend() -> dict[str, int]:
        async with engine.connect() as connection:
            pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        return {"pid": int(pid)}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        first = await client.get("/backend")
        assert first.status_code == 200
        # the server ends the pooled connection, as a restart or failover would
        admin = await asyncpg.connect(postgres.admin_dsn)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", first.json()["pid"])
        finally:
            await admin.close()
        lost = await client.get("/backend")
        assert lost.status_code == 503, lost.text
        assert lost.headers["content-type"] == "application/problem+json"
        assert lost.json()["type"].endswith("/database-unavailable")
        assert lost.headers["retry-after"] == "1"
        again = await client.get("/backend")
        assert again.status_code == 200
        assert again.json()["pid"] != first.json()["pid"]
    await engine.dispose()

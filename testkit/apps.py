"""In-process app clients for service tests, each test inside a transaction rolled back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from kernel.db import get_session


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """Run the app's lifespan around the block."""
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def rolled_back_client(app: FastAPI) -> AsyncIterator[tuple[httpx.AsyncClient, AsyncSession]]:
    """A client whose requests all run in one outer transaction that is rolled back at the end.

    Requests commit into SAVEPOINTs, so the code under test behaves as in production while the
    database is left as it was found.
    """
    engine: AsyncEngine = app.state.engine
    async with engine.connect() as connection:
        outer = await connection.begin()
        session = AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )

        async def override() -> AsyncIterator[AsyncSession]:
            yield session

        app.dependency_overrides[get_session] = override
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield client, session
        finally:
            app.dependency_overrides.pop(get_session, None)
            await session.close()
            await outer.rollback()

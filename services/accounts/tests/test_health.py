"""Health endpoints and migrations of the accounts service."""

from __future__ import annotations

import httpx

from accounts import SERVICE_ROOT
from kernel.migrations import head_revision


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_migrations_at_head(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    database = response.json()["checks"]["database"]
    assert database["status"] == "ready"
    assert database["revision"] == head_revision(SERVICE_ROOT)


async def test_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    generated = await client.get("/healthz", headers={"X-Request-ID": "bad id\n"})
    assert generated.headers["x-request-id"] != "bad id\n"
    assert len(generated.headers["x-request-id"]) == 32

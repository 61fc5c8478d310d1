"""Every error leaves as RFC 9457 problem+json, with the request id."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict

from kernel.app import build_service_app
from kernel.problems import Conflict


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


def _app() -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield

    async def readiness(_request: Request) -> dict:
        return {"self": {"status": "ready"}}

    app = build_service_app(
        title="t", version="0", description="", lifespan=lifespan, readiness=readiness, routers=[]
    )

    @app.post("/things")
    async def create(body: Body) -> dict:
        raise Conflict(f"{body.name} exists", detail_zh="已存在", thing=body.name)

    @app.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("secret internals")

    return app


async def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=_app(), raise_app_exceptions=False), base_url="http://t"
    )


async def test_domain_error_is_a_problem_with_extensions() -> None:
    async with await _client() as client:
        response = await client.post("/things", json={"name": "x"}, headers={"X-Request-ID": "r1"})
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body == {
        "type": "https://muye.example.org/problems/conflict",
        "title": "Conflict",
        "status": 409,
        "detail": "x exists",
        "request_id": "r1",
        "detail_zh": "已存在",
        "thing": "x",
    }


async def test_unknown_field_is_a_422_problem_listing_it() -> None:
    async with await _client() as client:
        response = await client.post("/things", json={"name": "x", "status": "closed"})
    assert response.status_code == 422
    body = response.json()
    assert body["type"].endswith("/validation-error")
    assert body["errors"][0]["location"] == ["body", "status"]


async def test_unexpected_error_is_a_500_problem_without_internals() -> None:
    async with await _client() as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    body = response.json()
    assert body["type"].endswith("/internal-error")
    assert "secret" not in response.text
    assert body["request_id"] == response.headers["x-request-id"]


async def test_unknown_path_is_a_404_problem() -> None:
    async with await _client() as client:
        response = await client.get("/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"

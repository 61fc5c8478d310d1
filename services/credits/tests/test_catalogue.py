"""The category catalogue is data, loaded idempotently and served in order."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from credits.catalogue.service import default_categories, load_categories
from testkit.apps import rolled_back_client


async def test_every_shipped_category_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/categories")
    assert response.status_code == 200
    served = {c["code"]: c for c in response.json()}
    shipped = default_categories()["categories"]
    assert set(served) == {c["code"] for c in shipped}
    assert served["tai_chi"]["parent_code"] == "culture_arts"
    assert served["law"]["name_zh"] == "法治教育"


async def test_loading_twice_changes_nothing(credits_app: FastAPI) -> None:
    async with rolled_back_client(credits_app) as (_client, session):
        again = await load_categories(session=session, data=default_categories())
    assert again == {"created": 0, "updated": 0, "total": len(default_categories()["categories"])}


async def test_readyz_reports_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["database"]["status"] == "ready"

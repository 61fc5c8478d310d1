"""Partner clients: staff manage only partners their unit covers."""

from __future__ import annotations

import httpx

from accounts.cli import DEMO_STAFF

from .conftest import bearer, sign_in
from .test_learners import MUYE_TOWN, WANGCUN


async def _register(client: httpx.AsyncClient, token: str, client_id: str, unit: str):  # type: ignore[no-untyped-def]
    return await client.post(
        "/api/v1/partner-clients",
        json={"client_id": client_id, "name": "平台", "unit": unit, "scopes": ["records:write"]},
        headers=bearer(token),
    )


async def _client_token(client: httpx.AsyncClient, client_id: str, secret: str) -> int:
    response = await client.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
        },
    )
    return response.status_code


async def test_staff_register_partners_only_for_units_they_cover(staff_factory, client) -> None:
    town_staff = await staff_factory("college_staff", MUYE_TOWN)
    other_town = await _register(client, town_staff, "other-town-mooc", WANGCUN)
    assert other_town.status_code == 403
    assert other_town.headers["content-type"].startswith("application/problem+json")
    assert other_town.json()["type"].endswith("/unit-out-of-scope")
    assert other_town.json()["detail_zh"]
    district = await _register(client, town_staff, "district-mooc", "410711")
    assert district.status_code == 403  # a unit above the caller's is outside it too
    own = await _register(client, town_staff, "town-mooc", MUYE_TOWN)
    assert own.status_code == 201, own.text


async def test_partners_outside_the_callers_unit_cannot_be_rotated(staff_factory, client) -> None:
    admin = (await sign_in(client, DEMO_STAFF["username"], DEMO_STAFF["password"]))["access_token"]
    registered = await _register(client, admin, "district-mooc", "410711")
    assert registered.status_code == 201, registered.text
    secret = registered.json()["client_secret"]
    town_staff = await staff_factory("district_admin", MUYE_TOWN)
    rotated = await client.post(
        "/api/v1/partner-clients/district-mooc/secret", headers=bearer(town_staff)
    )
    missing = await client.post(
        "/api/v1/partner-clients/no-such-mooc/secret", headers=bearer(town_staff)
    )
    # answered as if it did not exist, and nothing changed: the owner's secret still works
    assert rotated.status_code == missing.status_code == 404
    assert rotated.json()["type"] == missing.json()["type"]
    assert "client_secret" not in rotated.json()
    assert await _client_token(client, "district-mooc", secret) == 200
    # the district administrator covers a town's partner
    town = await _register(client, town_staff, "town-mooc", MUYE_TOWN)
    assert town.status_code == 201, town.text
    by_admin = await client.post("/api/v1/partner-clients/town-mooc/secret", headers=bearer(admin))
    assert by_admin.status_code == 200
    assert await _client_token(client, "town-mooc", town.json()["client_secret"]) == 401

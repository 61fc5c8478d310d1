"""Registration figures for the statistics reports, on PostgreSQL and SQLite: counts of a unit's
residents' accounts in SQL, by group, for a period of Beijing days; staff see their own unit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from accounts.learners.models import LearningAccount

from .conftest import bearer
from .test_learners import MUYE_TOWN, WANGCUN, new_account, village

PERIOD = {"from": "2026-01-01", "to": "2026-12-31"}


async def _open(client, token: str, residence: str, groups: list[str]) -> str:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/v1/learning-accounts",
        json=new_account(residence, groups=groups),
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_registrations_are_counted_per_unit_group_and_period(
    session_client, staff_factory
) -> None:
    client, session = session_client
    college = await staff_factory("college_staff", "410711")
    first, second = await village(client, WANGCUN, 0), await village(client, WANGCUN, 1)
    await _open(client, college, first, ["elderly", "rural_residents"])
    frozen = await _open(client, college, first, ["youth"])
    earlier = await _open(client, college, second, [])
    later = await _open(client, college, second, ["elderly"])
    await _open(client, college, await village(client, MUYE_TOWN), ["elderly"])
    # 00:30 on 1 January 2027 Beijing time is still 2026 in UTC: not registered by 2026's end
    for account, created in (
        (earlier, datetime(2025, 6, 1, tzinfo=UTC)),
        (later, datetime(2026, 12, 31, 16, 30, tzinfo=UTC)),
    ):
        row = await session.get(LearningAccount, uuid.UUID(account))
        assert row is not None
        row.created_at = created
    row = await session.get(LearningAccount, uuid.UUID(frozen))
    assert row is not None
    row.status = "frozen"
    await session.commit()
    staff = await staff_factory("school_staff", WANGCUN)
    response = await client.get(
        f"/api/v1/units/{WANGCUN}/registrations", params=PERIOD, headers=bearer(staff)
    )
    assert response.status_code == 200, response.text
    town = response.json()
    assert (town["population"], town["population_is_demo"]) == (45000, True)
    assert (town["registered"], town["active"], town["registered_in_period"]) == (3, 2, 2)
    assert town["by_group"] == {
        "elderly": 1, "youth": 1, "disabled": 0, "unemployed": 0, "migrant_workers": 0,
        "rural_residents": 1, "veterans": 0, "left_behind": 0,
    }  # fmt: skip
    auditor = await staff_factory("auditor", "410711")
    district = (
        await client.get(
            "/api/v1/units/410711/registrations", params=PERIOD, headers=bearer(auditor)
        )
    ).json()
    assert (district["registered"], district["by_group"]["elderly"]) == (4, 2)
    next_year = (
        await client.get(
            "/api/v1/units/410711/registrations",
            params={"from": "2027-01-01", "to": "2027-01-01"},
            headers=bearer(auditor),
        )
    ).json()
    assert (next_year["registered"], next_year["registered_in_period"]) == (5, 1)


async def test_staff_of_another_unit_are_refused(session_client, staff_factory) -> None:
    client, _ = session_client
    other = await staff_factory("school_staff", MUYE_TOWN)
    refused = await client.get(
        f"/api/v1/units/{WANGCUN}/registrations", params=PERIOD, headers=bearer(other)
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["detail_zh"]
    missing = await client.get(
        "/api/v1/units/999999/registrations", params=PERIOD, headers=bearer(other)
    )
    assert missing.status_code == 404

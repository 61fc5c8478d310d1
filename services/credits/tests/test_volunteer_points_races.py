"""Volunteer points under concurrency, on committed PostgreSQL transactions: a unit's
assessment total and the service it caps are settled one after the other (advisory lock
7415 per unit and year), and first totals set at once are one upsert each."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from credits.incentives import service as incentives
from testkit.http import bearer

from .conftest import new_learner


@pytest.fixture
async def committed(credits_app, credits_db):  # type: ignore[no-untyped-def]
    if not credits_db.startswith("postgresql"):
        pytest.skip("concurrency is PostgreSQL's: SQLite serialises every writer")
    transport = httpx.ASGITransport(app=credits_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://credits") as client:
        yield client, credits_app.state.sessionmaker


async def _lecture(client, issue_token, start: datetime) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    staff = issue_token("staff", role="college_staff", unit="410711")
    made = await client.post(
        "/api/v1/activities",
        json={
            "title": "志愿讲座",
            "kind": "lecture",
            "category": "law",
            "mode": "offline",
            "host_unit": "410711100",
            "sessions": [
                {
                    "starts_at": start.isoformat(),
                    "ends_at": start.replace(hour=start.hour + 2).isoformat(),
                }
            ],
        },
        headers=bearer(staff),
    )
    assert made.status_code == 201, made.text
    data = made.json()
    return data["id"], data["sessions"][0]["id"]


async def test_a_first_entry_made_while_the_assessment_is_set_gets_its_points(
    committed, issue_token
) -> None:
    client, maker = committed
    year = 2033  # a year no other test assesses
    activity, meeting = await _lecture(client, issue_token, datetime(year, 3, 2, 1, tzinfo=UTC))
    number, learner = new_learner()
    staff = issue_token("staff", role="learning_point_staff", unit="410711100")
    async with maker() as assessing:
        # the college's PUT, up to (not including) its commit: it listed the volunteers
        # before the entry below exists
        await incentives.set_assessment(
            session=assessing, unit="410711100", year=year, total=100_000, actor="college"
        )
        entry = asyncio.create_task(
            client.post(
                "/api/v1/volunteer-service",
                json={
                    "learner": number,
                    "kind": "lecture",
                    "activity": activity,
                    "session": meeting,
                },
                headers=bearer(staff),
            )
        )
        await asyncio.sleep(0.5)
        waited = not entry.done()  # its settlement waits for the total to commit
        await assessing.commit()
        entered = await entry
    assert entered.status_code == 201, entered.text
    assert entered.json()["points"]["points_hundredths"] == 100  # 1 lecture, under the cap
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    held = (await client.get("/api/v1/me/credits", headers=bearer(resident))).json()
    assert held["points_hundredths"] == 100  # what the ledger holds
    assert waited


async def test_first_assessments_set_at_once_are_each_answered(committed, issue_token) -> None:
    client, _ = committed
    college = issue_token("staff", role="college_staff", unit="410711")
    year = 2079  # a (unit, year) no other test assesses
    url = f"/api/v1/unit-assessments/410711101/{year}"
    results = await asyncio.gather(
        *(
            client.put(url, json={"total_hundredths": 1000 + n}, headers=bearer(college))
            for n in range(6)
        )
    )
    assert [r.status_code for r in results] == [200] * 6, [r.text[:200] for r in results]

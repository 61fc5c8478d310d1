"""Volunteer points (seed 001): +1 per lecture, +0.1 per activity, capped at 5% of the unit's
assessment total, in a point account of their own; on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime

from credits.ledger import reconciliation
from testkit.http import bearer

from .conftest import new_learner


async def _service(client, token: str, number: str, activity, kind: str, session=None):  # type: ignore[no-untyped-def]
    body = {"learner": number, "kind": kind, "activity": str(activity), "minutes": 90}
    if session is not None:
        body["session"] = str(session)
    return await client.post("/api/v1/volunteer-service", json=body, headers=bearer(token))


async def test_points_follow_the_scale_and_the_cap(session_client, issue_token, factory) -> None:
    client, db = session_client
    number, learner = new_learner()
    activity, sessions = await factory.activity(
        kind="lecture", sessions=6, start=datetime(2026, 3, 2, 1, tzinfo=UTC)
    )
    staff = issue_token("staff", role="learning_point_staff", unit="410711100")
    for meeting in sessions[:3]:
        response = await _service(client, staff, number, activity, "lecture", meeting)
        assert response.status_code == 201, response.text
    waiting = response.json()["points"]
    assert waiting["points_hundredths"] == 0 and "assessment total" in waiting["note"]
    for meeting in sessions[3:5]:
        assert (
            await _service(client, staff, number, activity, "activity", meeting)
        ).status_code == 201
    college = issue_token("staff", role="college_staff", unit="410711")
    url = "/api/v1/unit-assessments/410711100/2026"
    settled = await client.put(url, json={"total_hundredths": 10_000}, headers=bearer(college))
    assert settled.status_code == 200, settled.text
    (mine,) = settled.json()
    assert (mine["lectures"], mine["activities"]) == (3, 2)
    assert mine["points_hundredths"] == 3 * 100 + 2 * 10  # 3.2 points, under the 5 point cap
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    credits = (await client.get("/api/v1/me/credits", headers=bearer(resident))).json()
    assert credits["points_hundredths"] == 320 and credits["total_hundredths"] == 0
    more = await _service(client, staff, number, activity, "lecture", sessions[5])
    assert more.json()["points"]["points_hundredths"] == 420
    lowered = await client.put(url, json={"total_hundredths": 4_000}, headers=bearer(college))
    assert lowered.json()[0]["points_hundredths"] == 200  # 5% of 40 points
    credits = (await client.get("/api/v1/me/credits", headers=bearer(resident))).json()
    assert credits["points_hundredths"] == 200
    listed = (await client.get("/api/v1/me/volunteer-service", headers=bearer(resident))).json()
    assert len(listed) == 6 and {e["points"]["points_hundredths"] for e in listed} == {200}
    report = await reconciliation.reconcile(db, [learner])
    assert report.healthy, report.discrepancies


async def test_service_is_entered_once_by_staff_covering_the_activity(
    session_client, issue_token, factory
) -> None:
    client, _ = session_client
    number, _ = new_learner()
    activity, sessions = await factory.activity(kind="lecture", sessions=1)
    staff = issue_token("staff", role="learning_point_staff", unit="410711100")
    assert (
        await _service(client, staff, number, activity, "lecture", sessions[0])
    ).status_code == 201
    again = await _service(client, staff, number, activity, "lecture", sessions[0])
    assert again.status_code == 409 and "不能重复" in again.json()["detail_zh"]
    elsewhere = issue_token("staff", role="learning_point_staff", unit="410711101")
    assert (
        await _service(client, elsewhere, number, activity, "activity", sessions[0])
    ).status_code == 404
    resident = issue_token("resident", unit="410711100")
    assert (await _service(client, resident, number, activity, "activity")).status_code == 403
    unknown = await _service(client, staff, "41071100000000", activity, "activity", sessions[0])
    assert unknown.status_code == 422
    school = issue_token("staff", role="school_staff", unit="410711100")
    refused = await client.put(
        "/api/v1/unit-assessments/410711100/2026",
        json={"total_hundredths": 100},
        headers=bearer(school),
    )
    assert refused.status_code == 403


async def test_a_day_served_outside_the_assessment_years_is_refused(
    session_client, issue_token, factory
) -> None:
    client, _ = session_client
    number, _ = new_learner()
    activity, _ = await factory.activity(kind="lecture")
    staff = issue_token("staff", role="learning_point_staff", unit="410711100")
    for day in ("9999-06-01", "0001-01-01", "1999-12-31", "2101-01-01"):
        body = {"learner": number, "kind": "activity", "activity": str(activity)}
        response = await client.post(
            "/api/v1/volunteer-service", json=body | {"served_on": day}, headers=bearer(staff)
        )
        assert response.status_code == 422, (day, response.text)
        assert response.headers["content-type"] == "application/problem+json"

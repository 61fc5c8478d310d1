"""Volunteer points (seed 001): +1 per lecture, +0.1 per activity, capped at 5% of the unit's
assessment total, in a point account of their own; on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import UTC, date, datetime

from credits.incentives.models import VolunteerService
from credits.ledger import reconciliation
from credits.rules.service import published
from testkit.http import bearer

from .conftest import audit_digests, new_learner, state_digest


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
    # the trail: the first total replaced nothing, the second the first; after, each the new
    # total and the points it settled
    (first, second) = await audit_digests(db, "unit_assessment.set", "410711100/2026")
    assert first[0] is None and second[0] == state_digest({"total_hundredths": 10_000})
    assert second[1] == state_digest({"total_hundredths": 4_000, "points": lowered.json()})
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


async def _volunteer_with_two_lectures(client, issue_token, factory):  # type: ignore[no-untyped-def]
    """A volunteer who gave two lectures in 2026 at a unit assessed at 1000 points: 2.00."""
    number, learner = new_learner()
    activity, sessions = await factory.activity(
        kind="lecture", sessions=2, start=datetime(2026, 3, 2, 1, tzinfo=UTC)
    )
    college = issue_token("staff", role="college_staff", unit="410711")
    assessed = await client.put(
        "/api/v1/unit-assessments/410711100/2026",
        json={"total_hundredths": 100_000},
        headers=bearer(college),
    )
    assert assessed.status_code == 200, assessed.text
    staff = issue_token("staff", role="learning_point_staff", unit="410711100")
    for meeting in sessions:
        response = await _service(client, staff, number, activity, "lecture", meeting)
        assert response.status_code == 201, response.text
    return learner, activity


async def _lecture_at_two_points(client, db, college: str, since: str, until: str | None = None):  # type: ignore[no-untyped-def]
    """A draft of the default rules from ``since`` (to ``until``) with 2 points a lecture."""
    (default,) = [v for v in await published(db) if v.code == "muye-default"][:1]
    body = dict(default.body)
    body["volunteer_scale"] = {
        "per_lecture_hundredths": 200,
        "per_activity_hundredths": 10,
        "cap_percent_of_assessment": 5,
    }
    draft = await client.post(
        "/api/v1/rule-versions",
        json={
            "code": "muye-default",
            "title": f"{since} 起修订：讲座 2 分",
            "effective_from": since,
            "effective_to": until,
            "body": body,
        },
        headers=bearer(college),
    )
    assert draft.status_code == 201, draft.text
    return draft.json()["id"]


async def test_publishing_a_volunteer_scale_settles_the_points_it_changes(
    session_client, issue_token, factory
) -> None:
    client, db = session_client
    learner, _ = await _volunteer_with_two_lectures(client, issue_token, factory)
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    held = (await client.get("/api/v1/me/credits", headers=bearer(resident))).json()
    assert held["points_hundredths"] == 200
    college = issue_token("staff", role="college_staff", unit="410711")
    version = await _lecture_at_two_points(client, db, college, "2026-01-01")
    url = f"/api/v1/rule-versions/{version}/publish"
    dry = await client.post(
        url, json={"dry_run": True, "reason": "讲座积分调整"}, headers=bearer(college)
    )
    assert dry.status_code == 200, dry.text
    mine = [c for c in dry.json()["point_changes"] if c["learner_id"] == str(learner)]
    assert [
        (c["unit"], c["year"], c["before_hundredths"], c["after_hundredths"], c["delta_hundredths"])
        for c in mine
    ] == [("410711100", 2026, 200, 400, 200)]
    assert not [c for c in dry.json()["changes"] if c["learner_id"] == str(learner)]  # credits
    held = (await client.get("/api/v1/me/credits", headers=bearer(resident))).json()
    assert held["points_hundredths"] == 200  # a dry run posts nothing

    done = await client.post(
        url, json={"dry_run": False, "reason": "讲座积分调整"}, headers=bearer(college)
    )
    assert done.status_code == 200, done.text
    assert [
        c["delta_hundredths"]
        for c in done.json()["point_changes"]
        if c["learner_id"] == str(learner)
    ] == [200]
    shown = (await client.get("/api/v1/me/volunteer-service", headers=bearer(resident))).json()
    assert {e["points"]["points_hundredths"] for e in shown} == {400}
    held = (await client.get("/api/v1/me/credits", headers=bearer(resident))).json()
    assert held["points_hundredths"] == 400  # the ledger holds what the published rules give
    history = (await client.get("/api/v1/me/credit-history", headers=bearer(resident))).json()
    correction = history["items"][0]
    assert correction["rule_version_id"] == version
    assert [s["rule_version_id"] for s in correction["sources"]] == [version]
    report = await reconciliation.reconcile(db, [learner])
    assert report.healthy, report.discrepancies


async def test_a_version_ending_before_the_years_last_day_leaves_its_points(
    session_client, issue_token, factory
) -> None:
    # points of a year follow the version covering its last day (the assessment's): one
    # ending in June changes no 2026 points, and the publication posts none
    client, db = session_client
    learner, _ = await _volunteer_with_two_lectures(client, issue_token, factory)
    college = issue_token("staff", role="college_staff", unit="410711")
    version = await _lecture_at_two_points(client, db, college, "2026-01-01", "2026-07-01")
    done = await client.post(
        f"/api/v1/rule-versions/{version}/publish",
        json={"dry_run": False, "reason": "上半年讲座积分调整"},
        headers=bearer(college),
    )
    assert done.status_code == 200, done.text
    assert not [c for c in done.json()["point_changes"] if c["learner_id"] == str(learner)]
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    held = (await client.get("/api/v1/me/credits", headers=bearer(resident))).json()
    assert held["points_hundredths"] == 200


async def test_reconciliation_reports_points_the_ledger_does_not_hold(
    session_client, issue_token, factory
) -> None:
    client, db = session_client
    learner, activity = await _volunteer_with_two_lectures(client, issue_token, factory)
    assert (await reconciliation.reconcile(db, [learner])).healthy
    # a third lecture kept without its settlement (as a path that forgot to settle would)
    db.add(
        VolunteerService(
            learner_id=learner,
            kind="lecture",
            unit="410711100",
            unit_path="/410711/410711100/",
            activity_id=activity,
            occasion="activity:unsettled",
            served_on=date(2026, 5, 1),
            recorded_by="test",
        )
    )
    await db.commit()
    report = await reconciliation.reconcile(db, [learner])
    assert not report.healthy
    assert [(d.check, d.subject, d.expected, d.actual) for d in report.discrepancies] == [
        ("points", f"learner:{learner} points:2026:410711100", 300, 200)
    ]

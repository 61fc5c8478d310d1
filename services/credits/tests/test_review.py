"""Record review: staff list their units' records with filters, and verify, reject or void
them with a reason kept in the history. Nothing is deleted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from credits.records import workflow
from credits.records.models import LearningRecord, RecordStatusChange
from kernel.pagination import encode_cursor
from testkit.http import bearer


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        ("pending", "verified", True),
        ("pending", "rejected", True),
        ("pending", "voided", True),
        ("verified", "voided", True),
        ("verified", "rejected", False),
        ("rejected", "verified", False),
        ("voided", "verified", False),
        ("voided", "pending", False),
    ],
)
def test_status_workflow(current: str, target: str, allowed: bool) -> None:
    assert workflow.may_change(current, target) is allowed


async def _records(
    db, host_path: str, learner: uuid.UUID, activity: uuid.UUID, count: int
) -> list[int]:  # type: ignore[no-untyped-def]
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    made = []
    for n in range(count):
        record = LearningRecord(
            learner_id=learner,
            activity_id=activity,
            category_code="law",
            mode="offline",
            host_unit_path=host_path,
            source="staff_entry",
            started_at=start + timedelta(days=n),
            ended_at=start + timedelta(days=n, hours=1),
            minutes=60,
            status="pending",
            status_changed_by="test",
        )
        db.add(record)
        await db.flush()
        made.append(record.id)
    await db.commit()
    return made


async def _activity(client, issue_token, unit: str) -> uuid.UUID:  # type: ignore[no-untyped-def]
    staff = issue_token("staff", role="college_staff", unit="410711")
    response = await client.post(
        "/api/v1/activities",
        json={
            "title": "普法讲座",
            "kind": "lecture",
            "category": "law",
            "mode": "offline",
            "host_unit": unit,
        },
        headers=bearer(staff),
    )
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["id"])


async def test_staff_list_their_units_records_with_filters_and_paging(
    session_client, issue_token
) -> None:
    client, db = session_client
    learner = uuid.uuid4()
    wangcun = await _activity(client, issue_token, "410711100")
    muye = await _activity(client, issue_token, "410711101")
    ours = await _records(db, "/410711/410711100/", learner, wangcun, 5)
    theirs = await _records(db, "/410711/410711101/", learner, muye, 2)
    school = issue_token("staff", role="school_staff", unit="410711100")
    seen, cursor = [], None
    while True:
        params = {"learner": str(learner), "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (
            await client.get("/api/v1/learning-records", params=params, headers=bearer(school))
        ).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ours, reverse=True)  # newest first, none of the other town's
    assert not set(seen) & set(theirs)
    window = await client.get(
        "/api/v1/learning-records",
        params={
            "learner": str(learner),
            "since": "2026-03-02T00:00:00Z",
            "until": "2026-03-04T00:00:00Z",
        },
        headers=bearer(school),
    )
    assert len(window.json()["items"]) == 2
    college = issue_token("staff", role="auditor", unit="410711")
    everything = await client.get(
        "/api/v1/learning-records",
        params={"learner": str(learner), "limit": 100},
        headers=bearer(college),
    )
    assert len(everything.json()["items"]) == 7
    resident = issue_token("resident")
    assert (
        await client.get("/api/v1/learning-records", headers=bearer(resident))
    ).status_code == 403


async def test_verify_reject_void_keep_history_and_refuse_bad_moves(
    session_client, issue_token
) -> None:
    client, db = session_client
    activity = await _activity(client, issue_token, "410711100")
    first, second = await _records(db, "/410711/410711100/", uuid.uuid4(), activity, 2)
    school = issue_token("staff", role="school_staff", unit="410711100")
    url = "/api/v1/learning-records/{}/status"
    verified = await client.post(
        url.format(first),
        json={"status": "verified", "reason": "签到表核对无误"},
        headers=bearer(school),
    )
    assert verified.status_code == 200 and verified.json()["status"] == "verified"
    voided = await client.post(
        url.format(first), json={"status": "voided", "reason": "重复登记"}, headers=bearer(school)
    )
    assert voided.json()["status"] == "voided"
    again = await client.post(
        url.format(first), json={"status": "verified", "reason": "x"}, headers=bearer(school)
    )
    assert again.status_code == 409 and again.json()["current"] == "voided"
    history = (
        (await db.execute(select(RecordStatusChange).where(RecordStatusChange.record_id == first)))
        .scalars()
        .all()
    )
    assert [(h.from_status, h.to_status, h.reason) for h in history] == [
        ("pending", "verified", "签到表核对无误"),
        ("verified", "voided", "重复登记"),
    ]
    assert (await db.get(LearningRecord, first)) is not None  # voiding never deletes
    point = issue_token("staff", role="learning_point_staff", unit="410711100")
    elsewhere = issue_token("staff", role="school_staff", unit="410711101")
    body = {"status": "rejected", "reason": "无签到"}
    assert (
        await client.post(url.format(second), json=body, headers=bearer(point))
    ).status_code == 403
    assert (
        await client.post(url.format(second), json=body, headers=bearer(elsewhere))
    ).status_code == 404
    missing_reason = await client.post(
        url.format(second), json={"status": "rejected"}, headers=bearer(school)
    )
    assert missing_reason.status_code == 422


async def test_a_cursor_that_is_not_ours_is_a_400_not_a_500(client, issue_token) -> None:
    school = issue_token("staff", role="school_staff", unit="410711100")
    resident = issue_token("resident")
    for before in ("abc", [1], None, 1.5, True, 10**20, 0):
        cursor = encode_cursor({"before": before})
        for url, token in (("/api/v1/learning-records", school), ("/api/v1/me/records", resident)):
            response = await client.get(url, params={"cursor": cursor}, headers=bearer(token))
            assert response.status_code == 400, (url, before, response.text)
            assert response.json()["type"].endswith("/invalid-cursor")


async def test_a_period_given_in_beijing_time_is_the_same_period(
    session_client, issue_token
) -> None:
    client, db = session_client
    learner = uuid.uuid4()
    activity = await _activity(client, issue_token, "410711100")
    # one record a day at 09:00 UTC (17:00 in Beijing), from 2026-03-01
    await _records(db, "/410711/410711100/", learner, activity, 3)
    school = issue_token("staff", role="school_staff", unit="410711100")
    for since, until, started in (
        ("2026-03-02T17:00:00+08:00", "2026-03-03T17:00:00+08:00", ["2026-03-02T09:00:00Z"]),
        ("2026-03-02T09:00:00+08:00", "2026-03-02T17:00:00+08:00", []),  # 01:00Z to 09:00Z
        ("2026-03-01T09:00:00", "2026-03-01T09:00:01", ["2026-03-01T09:00:00Z"]),  # UTC
    ):
        window = await client.get(
            "/api/v1/learning-records",
            params={"learner": str(learner), "since": since, "until": until},
            headers=bearer(school),
        )
        assert [r["started_at"] for r in window.json()["items"]] == started, (since, until)


async def test_a_record_id_past_any_stored_is_a_404(client, issue_token) -> None:
    school = issue_token("staff", role="school_staff", unit="410711100")
    for record_id in (10**20, 2**63, -1):
        response = await client.post(
            f"/api/v1/learning-records/{record_id}/status",
            json={"status": "verified", "reason": "核对"},
            headers=bearer(school),
        )
        assert response.status_code in (404, 422), (record_id, response.text)
        assert response.headers["content-type"] == "application/problem+json"

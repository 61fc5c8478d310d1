"""Activities, enrolment with a waitlist, and check-in/out producing learning records."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import httpx
from sqlalchemy import select

from credits.attendance import qrcode
from credits.records.models import Attendance, LearningRecord
from kernel.pagination import encode_cursor
from testkit.http import bearer

from .conftest import FAILING, arrived_earlier


def _activity(**overrides: object) -> dict:
    now = datetime.now(UTC)
    body: dict = {
        "title": "太极拳入门",
        "kind": "training_class",
        "category": "tai_chi",
        "mode": "offline",
        "capacity": 2,
        "sessions": [
            {
                "starts_at": (now - timedelta(minutes=30)).isoformat(),
                "ends_at": (now + timedelta(minutes=60)).isoformat(),
                "place": "王村镇文化站",
            },
            {
                "starts_at": (now + timedelta(days=7)).isoformat(),
                "ends_at": (now + timedelta(days=7, hours=2)).isoformat(),
            },
        ],
    }
    body.update(overrides)
    return body


def _foreign_code(session_id: str) -> str:
    now = datetime.now(UTC)
    return qrcode.issue(
        b"f" * 32, session_id=session_id, not_before=now, expires_at=now + timedelta(hours=1)
    )


async def _create(client: httpx.AsyncClient, token: str, **overrides: object) -> dict:
    response = await client.post(
        "/api/v1/activities", json=_activity(**overrides), headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_staff_create_an_activity_in_their_unit_with_sessions(client, issue_token) -> None:
    staff = issue_token("staff", role="school_staff", unit="410711100")
    activity = await _create(client, staff)
    assert activity["host_unit"] == "410711100"
    assert [s["planned_minutes"] for s in activity["sessions"]] == [90, 120]
    below = await client.post(
        "/api/v1/activities", json=_activity(host_unit="410711101"), headers=bearer(staff)
    )
    assert below.status_code == 422 and below.json()["type"].endswith("/invalid-activity")
    college = issue_token("staff", role="college_staff", unit="410711")
    hosted = await _create(client, college, host_unit="410711101")
    assert hosted["host_unit"] == "410711101"


async def test_session_times_given_in_beijing_time_keep_their_instant(client, issue_token) -> None:
    staff = issue_token("staff", role="school_staff", unit="410711100")
    beijing = timezone(timedelta(hours=8))
    starts = datetime(2026, 12, 1, 9, tzinfo=beijing)
    activity = await _create(
        client,
        staff,
        enrol_closes_at=datetime(2026, 11, 30, 18, tzinfo=beijing).isoformat(),
        sessions=[
            {"starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=2)).isoformat()}
        ],
    )
    session = activity["sessions"][0]
    assert datetime.fromisoformat(session["starts_at"]) == starts  # 01:00 UTC, not 09:00
    assert datetime.fromisoformat(session["ends_at"]) == starts + timedelta(hours=2)
    assert datetime.fromisoformat(activity["enrol_closes_at"]) == datetime(
        2026, 11, 30, 10, tzinfo=UTC
    )


async def test_bad_activities_are_refused_with_reasons(client, issue_token) -> None:
    staff = issue_token("staff", role="school_staff", unit="410711100")
    now = datetime.now(UTC)
    backwards = [{"starts_at": now.isoformat(), "ends_at": (now - timedelta(hours=1)).isoformat()}]
    for body, expected in (
        (_activity(sessions=backwards), 422),
        (_activity(category="astrology"), 422),
        (_activity(status="closed"), 422),
    ):
        response = await client.post("/api/v1/activities", json=body, headers=bearer(staff))
        assert response.status_code == expected, body
        assert response.headers["content-type"] == "application/problem+json"
    resident = issue_token("resident")
    assert (
        await client.post("/api/v1/activities", json=_activity(), headers=bearer(resident))
    ).status_code == 403


async def test_capacity_waitlist_and_moving_up_on_cancellation(client, issue_token) -> None:
    activity = await _create(client, issue_token("staff", role="school_staff", unit="410711100"))
    url = f"/api/v1/activities/{activity['id']}/enrolments"
    residents = [issue_token("resident") for _ in range(3)]
    statuses = [(await client.post(url, headers=bearer(r))).json()["status"] for r in residents]
    assert statuses == ["enrolled", "enrolled", "waitlisted"]
    twice = await client.post(url, headers=bearer(residents[0]))
    assert twice.status_code == 409 and twice.json()["type"].endswith("/already-enrolled")
    assert (await client.delete(f"{url}/me", headers=bearer(residents[0]))).status_code == 204
    mine = await client.get("/api/v1/me/enrolments", headers=bearer(residents[2]))
    assert [e["status"] for e in mine.json()] == ["enrolled"]
    view = (
        await client.get(f"/api/v1/activities/{activity['id']}", headers=bearer(residents[1]))
    ).json()
    assert (view["enrolled"], view["waitlisted"]) == (2, 0)
    again = await client.post(url, headers=bearer(residents[0]))  # back of the queue
    assert again.json()["status"] == "waitlisted"


async def test_enrolment_after_closing_date_is_refused(client, issue_token) -> None:
    closed = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    activity = await _create(
        client, issue_token("staff", role="school_staff", unit="410711100"), enrol_closes_at=closed
    )
    response = await client.post(
        f"/api/v1/activities/{activity['id']}/enrolments", headers=bearer(issue_token("resident"))
    )
    assert response.status_code == 409 and response.json()["detail_zh"] == "该活动报名已截止。"


async def test_check_in_and_out_make_one_bounded_record(session_client, issue_token) -> None:
    client, db = session_client
    staff = issue_token("staff", role="learning_point_staff", unit="410711100")
    activity = await _create(client, staff)
    now_session, later_session = (s["id"] for s in activity["sessions"])
    elsewhere = issue_token("staff", role="school_staff", unit="410711101")
    assert (
        await client.post(
            f"/api/v1/sessions/{now_session}/check-in-code", headers=bearer(elsewhere)
        )
    ).status_code == 404
    code = (
        await client.post(f"/api/v1/sessions/{now_session}/check-in-code", headers=bearer(staff))
    ).json()
    resident_id = str(uuid.uuid4())
    resident = issue_token("resident", subject=resident_id)
    checked = await client.post(
        f"/api/v1/sessions/{now_session}/check-in",
        json={"code": code["code"]},
        headers=bearer(resident),
    )
    assert checked.status_code == 201
    twice = await client.post(
        f"/api/v1/sessions/{now_session}/check-in",
        json={"code": code["code"]},
        headers=bearer(resident),
    )
    assert twice.status_code == 409
    # a second scan at once counts no minute: refused, and the check-in stays open
    at_once = await client.post(
        f"/api/v1/sessions/{now_session}/check-out",
        json={"code": code["code"]},
        headers=bearer(resident),
    )
    assert at_once.status_code == 409, at_once.text
    assert at_once.json()["type"].endswith("/nothing-attended-yet")
    assert at_once.json()["detail_zh"].startswith("尚未计入任何学时")
    assert (await client.get("/api/v1/me/records", headers=bearer(resident))).json()["items"] == []
    await arrived_earlier(db, now_session, uuid.UUID(resident_id), minutes=20)
    record = await client.post(
        f"/api/v1/sessions/{now_session}/check-out",
        json={"code": code["code"]},
        headers=bearer(resident),
    )
    assert record.status_code == 200, record.text
    body = record.json()
    assert body["source"] == "check_in" and body["status"] == "verified"
    assert body["learner_id"] == resident_id and 19 <= body["minutes"] <= 21
    assert body["category"] == "tai_chi" and body["mode"] == "offline"
    again = await client.post(
        f"/api/v1/sessions/{now_session}/check-out",
        json={"code": code["code"]},
        headers=bearer(resident),
    )
    assert again.status_code == 409
    listed = await client.get("/api/v1/me/records", headers=bearer(resident))
    assert [r["id"] for r in listed.json()["items"]] == [body["id"]]
    other = issue_token("resident")
    assert (await client.get("/api/v1/me/records", headers=bearer(other))).json()["items"] == []

    later_code = (
        await client.post(f"/api/v1/sessions/{later_session}/check-in-code", headers=bearer(staff))
    ).json()["code"]
    for session_id, submitted, reason in (
        (later_session, later_code, "not yet valid"),
        (now_session, later_code, "other session"),
        (now_session, _foreign_code(now_session), "forged"),
    ):
        refused = await client.post(
            f"/api/v1/sessions/{session_id}/check-in",
            json={"code": submitted},
            headers=bearer(other),
        )
        assert refused.status_code == 422, reason
        assert refused.json()["reason"] == reason


async def test_attended_minutes_are_bounded_by_the_session(session_client, issue_token) -> None:
    client, db = session_client
    staff = issue_token("staff", role="learning_point_staff", unit="410711100")
    activity = await _create(client, staff)
    session_id = activity["sessions"][0]["id"]
    code = (
        await client.post(f"/api/v1/sessions/{session_id}/check-in-code", headers=bearer(staff))
    ).json()["code"]
    resident = issue_token("resident")
    checked = await client.post(
        f"/api/v1/sessions/{session_id}/check-in", json={"code": code}, headers=bearer(resident)
    )
    assert checked.status_code == 201
    # the resident arrived two hours before the session began: only the session's time counts
    attendance = (
        await db.execute(select(Attendance).where(Attendance.session_id == uuid.UUID(session_id)))
    ).scalar_one()
    attendance.checked_in_at = datetime.now(UTC) - timedelta(hours=2)
    await db.commit()
    out = await client.post(
        f"/api/v1/sessions/{session_id}/check-out", json={"code": code}, headers=bearer(resident)
    )
    assert out.status_code == 200, out.text
    assert 29 <= out.json()["minutes"] <= 31  # from the session start (30 minutes ago) to now


async def test_a_check_out_before_the_session_begins_is_refused_and_the_check_in_kept(
    session_client, issue_token
) -> None:
    client, db = session_client
    staff = issue_token("staff", role="learning_point_staff", unit="410711100")
    now = datetime.now(UTC)
    soon = now + timedelta(minutes=10)  # the code opens 15 minutes before the start
    activity = await _create(
        client,
        staff,
        sessions=[
            {"starts_at": soon.isoformat(), "ends_at": (soon + timedelta(hours=1)).isoformat()}
        ],
    )
    session_id = activity["sessions"][0]["id"]
    code = (
        await client.post(f"/api/v1/sessions/{session_id}/check-in-code", headers=bearer(staff))
    ).json()["code"]
    learner = uuid.uuid4()
    resident = issue_token("resident", subject=str(learner))
    checked = await client.post(
        f"/api/v1/sessions/{session_id}/check-in", json={"code": code}, headers=bearer(resident)
    )
    assert checked.status_code == 201, checked.text
    # arrived half an hour early, scanning again before the start: nothing is attended yet
    await arrived_earlier(db, session_id, learner, minutes=30)
    early = await client.post(
        f"/api/v1/sessions/{session_id}/check-out", json={"code": code}, headers=bearer(resident)
    )
    assert early.status_code == 409, early.text
    assert early.headers["content-type"].startswith("application/problem+json")
    assert early.json()["type"].endswith("/nothing-attended-yet")
    assert "scan the code again when you leave" in early.json()["detail"]
    kept = (
        await db.execute(select(Attendance).where(Attendance.session_id == uuid.UUID(session_id)))
    ).scalar_one()
    await db.refresh(kept)
    assert kept.record_id is None and kept.checked_out_at is None
    records = (
        await db.execute(
            select(LearningRecord).where(LearningRecord.session_id == uuid.UUID(session_id))
        )
    ).all()
    assert records == []


async def test_a_resident_checks_out_just_after_the_end_but_not_in(
    session_client, issue_token
) -> None:
    client, db = session_client
    staff = issue_token("staff", role="learning_point_staff", unit="410711100")
    now = datetime.now(UTC)
    ended = now - timedelta(minutes=10)
    activity = await _create(
        client,
        staff,
        sessions=[
            {"starts_at": (now - timedelta(minutes=70)).isoformat(), "ends_at": ended.isoformat()},
            {
                "starts_at": (now - timedelta(minutes=100)).isoformat(),
                "ends_at": (now - timedelta(minutes=40)).isoformat(),
            },
        ],
    )
    # listed by their start: the one that ended forty minutes ago began first
    long_ended, just_ended = (s["id"] for s in activity["sessions"])
    learner = uuid.uuid4()
    resident = issue_token("resident", subject=str(learner))
    codes = {}
    for meeting in (just_ended, long_ended):
        issued = await client.post(
            f"/api/v1/sessions/{meeting}/check-in-code", headers=bearer(staff)
        )
        codes[meeting] = issued.json()["code"]
        # checking in after the end is refused: the code's window is the session's
        late = await client.post(
            f"/api/v1/sessions/{meeting}/check-in",
            json={"code": codes[meeting]},
            headers=bearer(resident),
        )
        assert late.status_code == 422, late.text
        assert late.json()["reason"] == "expired" and late.json()["detail_zh"] == "签到码已过期"
        # the resident checked in during the session, five minutes after it began
        db.add(
            Attendance(
                session_id=uuid.UUID(meeting),
                learner_id=learner,
                checked_in_at=now - timedelta(minutes=65 if meeting == just_ended else 95),
            )
        )
    await db.commit()
    out = await client.post(
        f"/api/v1/sessions/{just_ended}/check-out",
        json={"code": codes[just_ended]},
        headers=bearer(resident),
    )
    assert out.status_code == 200, out.text
    record = out.json()
    assert record["minutes"] == 55  # from the check-in to the session's end, not to now
    assert abs(datetime.fromisoformat(record["ended_at"]) - ended) < timedelta(seconds=1)
    # forty minutes after the end is past the grace (30 minutes): refused, the check-in open
    too_late = await client.post(
        f"/api/v1/sessions/{long_ended}/check-out",
        json={"code": codes[long_ended]},
        headers=bearer(resident),
    )
    assert too_late.status_code == 422, too_late.text
    assert too_late.json()["reason"] == "expired"
    still_open = (
        await db.execute(select(Attendance).where(Attendance.session_id == uuid.UUID(long_ended)))
    ).scalar_one()
    assert still_open.record_id is None and still_open.checked_out_at is None


async def test_hours_are_summed_by_year_category_and_mode(session_client, issue_token) -> None:
    client, db = session_client
    learner = uuid.uuid4()
    activity = await _create(client, issue_token("staff", role="school_staff", unit="410711100"))
    base = {
        "learner_id": learner,
        "activity_id": uuid.UUID(activity["id"]),
        "host_unit_path": "/410711/410711100/",
        "source": "staff_entry",
        "status_changed_by": "test",
    }
    rows = [
        ("tai_chi", "offline", datetime(2025, 3, 1, 9, tzinfo=UTC), 90, "verified"),
        ("tai_chi", "offline", datetime(2025, 4, 1, 9, tzinfo=UTC), 60, "verified"),
        ("law", "online", datetime(2026, 1, 5, 9, tzinfo=UTC), 45, "verified"),
        ("law", "online", datetime(2026, 1, 6, 9, tzinfo=UTC), 30, "pending"),  # not countable
        ("law", "online", datetime(2026, 1, 7, 9, tzinfo=UTC), 20, "voided"),  # not countable
    ]
    for category, mode, start, minutes, status in rows:
        db.add(
            LearningRecord(
                **base,
                category_code=category,
                mode=mode,
                started_at=start,
                ended_at=start + timedelta(minutes=minutes),
                minutes=minutes,
                status=status,
            )
        )
    await db.commit()
    summary = (
        await client.get(
            "/api/v1/me/hours", headers=bearer(issue_token("resident", subject=str(learner)))
        )
    ).json()
    assert summary["total_minutes"] == 195
    assert (summary["online_minutes"], summary["offline_minutes"]) == (45, 150)
    assert summary["buckets"] == [
        {"year": 2025, "category": "tai_chi", "mode": "offline", "minutes": 150, "records": 2},
        {"year": 2026, "category": "law", "mode": "online", "minutes": 45, "records": 1},
    ]


async def test_the_catalogue_pages_through_every_activity_once_newest_first(
    client, issue_token
) -> None:
    college = issue_token("staff", role="college_staff", unit="410711")
    made = [
        (await _create(client, college, host_unit="410711100201", sessions=[]))["id"]
        for _ in range(3)
    ]
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params = {"limit": 2, "host_unit": "410711100201", **({"cursor": cursor} if cursor else {})}
        page = await client.get("/api/v1/activities", params=params, headers=bearer(college))
        assert page.status_code == 200, page.text
        seen += [a["id"] for a in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))  # no page repeats another
    assert [i for i in seen if i in made] == made[::-1]
    for bad in ({"before": 5}, {"before": "yesterday", "id": made[0]}):  # not ones we issue
        refused = await client.get(
            "/api/v1/activities", params={"cursor": encode_cursor(bad)}, headers=bearer(college)
        )
        assert refused.status_code == 400 and refused.json()["type"].endswith("/invalid-cursor")


async def test_times_no_utc_instant_can_hold_are_refused_with_a_reason(client, issue_token) -> None:
    staff = issue_token("staff", role="school_staff", unit="410711100")
    first, last = "0001-01-01T00:30:00+08:00", "9999-12-31T23:00:00-08:00"  # years 0 and 10000
    for overrides in (
        {"sessions": [{"starts_at": first, "ends_at": "0001-01-01T01:30:00+08:00"}]},
        {"sessions": [{"starts_at": "9999-12-31T22:00:00-08:00", "ends_at": last}]},
        {"enrol_closes_at": first},
    ):
        response = await client.post(
            "/api/v1/activities", json=_activity(**overrides), headers=bearer(staff)
        )
        assert response.status_code == 422, response.text
        assert response.json()["type"].endswith("/validation-error")
        assert "out of range" in str(response.json()["errors"])


async def test_a_failing_school_network_is_a_503_to_retry_not_a_500(client, issue_token) -> None:
    college = issue_token("staff", role="college_staff", unit="410711")
    FAILING["/api/v1/units/410711101"] = 502
    try:
        response = await client.post(
            "/api/v1/activities", json=_activity(host_unit="410711101"), headers=bearer(college)
        )
    finally:
        del FAILING["/api/v1/units/410711101"]
    assert response.status_code == 503, response.text
    assert response.json()["type"].endswith("/service-unavailable")
    assert response.json()["detail_zh"] == "暂时无法读取办学网络，请稍后再试。"


async def test_a_session_shorter_than_a_minute_is_refused_with_a_reason(
    client, issue_token
) -> None:
    staff = issue_token("staff", role="school_staff", unit="410711100")
    now = datetime.now(UTC)
    moment = [{"starts_at": now.isoformat(), "ends_at": (now + timedelta(seconds=30)).isoformat()}]
    response = await client.post(
        "/api/v1/activities", json=_activity(sessions=moment), headers=bearer(staff)
    )
    assert response.status_code == 422, response.text
    assert "at least one minute" in str(response.json()["errors"])

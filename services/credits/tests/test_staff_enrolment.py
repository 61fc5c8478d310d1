"""Staff enrol residents on their behalf and cancel for them: the residents' own rules apply."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, text

from credits.activities.models import Enrolment
from testkit.http import bearer

from .conftest import audit_digests, new_learner, state_digest


async def _activity(client: httpx.AsyncClient, token: str, **fields: object) -> str:
    body = {
        "title": "戏曲兴趣班",
        "kind": "training_class",
        "category": "opera",
        "mode": "offline",
        "capacity": 2,
        **fields,
    }
    response = await client.post("/api/v1/activities", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_staff_enrol_residents_with_capacity_waitlist_and_cancel_for_them(
    session_client, issue_token
) -> None:
    client, db = session_client
    staff_id = str(uuid.uuid4())
    staff = issue_token("staff", role="learning_point_staff", unit="410711100", subject=staff_id)
    activity = await _activity(client, staff)
    url = f"/api/v1/activities/{activity}/enrolments"
    (a, a_id), (b, _), (c, c_id) = new_learner(), new_learner(), new_learner()
    answers = [
        (await client.post(url, json={"learner": n}, headers=bearer(staff))).json()
        for n in (a, b, c)
    ]
    assert [e["status"] for e in answers] == ["enrolled", "enrolled", "waitlisted"]
    assert {e["enrolled_by"] for e in answers} == {staff_id}
    assert answers[0]["learner_id"] == str(a_id)

    twice = await client.post(url, json={"learner": a.lower()}, headers=bearer(staff))
    assert twice.status_code == 409 and twice.json()["type"].endswith("/already-enrolled")
    assert twice.json()["detail_zh"] == "该居民已报名或在候补名单中。"
    herself = await client.post(url, headers=bearer(issue_token("resident", subject=str(a_id))))
    assert herself.status_code == 409  # the same rule whoever asks

    seq = (await db.execute(text("SELECT seq FROM audit_head"))).scalar_one()
    cancelled = await client.delete(f"{url}/{a}", headers=bearer(staff))
    assert cancelled.status_code == 204
    moved_up = await client.get(
        "/api/v1/me/enrolments", headers=bearer(issue_token("resident", subject=str(c_id)))
    )
    assert [e["status"] for e in moved_up.json()] == ["enrolled"]
    # the resident moved up has an entry under their enrolment, not only the cancellation
    trail = (
        await db.execute(
            text(
                "SELECT action, target_type, target_id, actor FROM audit_entry"
                " WHERE seq > :s ORDER BY seq"
            ),
            {"s": seq},
        )
    ).all()
    assert [tuple(r) for r in trail] == [
        ("enrolment.cancel", "activity", activity, staff_id),
        ("enrolment.move_up", "enrolment", moved_up.json()[0]["id"], staff_id),
    ]
    ((was, _),) = await audit_digests(db, "enrolment.move_up", moved_up.json()[0]["id"])
    assert was == state_digest({"status": "waitlisted"})
    row = (
        await db.execute(
            select(Enrolment).where(Enrolment.learner_id == a_id, Enrolment.status == "cancelled")
        )
    ).scalar_one()
    assert row.cancelled_by == staff_id and row.enrolled_by == staff_id
    again = await client.delete(f"{url}/{a}", headers=bearer(staff))
    assert again.status_code == 404 and again.json()["detail_zh"] == "该居民没有报名该活动。"


async def test_a_resident_cancelling_themselves_is_recorded_as_such(
    session_client, issue_token
) -> None:
    client, db = session_client
    activity = await _activity(client, issue_token("staff", role="school_staff", unit="410711100"))
    resident_id = str(uuid.uuid4())
    resident = issue_token("resident", subject=resident_id)
    url = f"/api/v1/activities/{activity}/enrolments"
    assert (await client.post(url, headers=bearer(resident))).json()["enrolled_by"] == resident_id
    assert (await client.delete(f"{url}/me", headers=bearer(resident))).status_code == 204
    row = await db.execute(select(Enrolment).where(Enrolment.activity_id == uuid.UUID(activity)))
    assert row.scalar_one().cancelled_by == resident_id


async def test_staff_enrolment_is_refused_with_reasons(client, issue_token) -> None:
    staff = issue_token("staff", role="school_staff", unit="410711100")
    closed = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    late = await _activity(client, staff, enrol_closes_at=closed)
    activity = await _activity(client, staff)
    url = f"/api/v1/activities/{activity}/enrolments"
    number, learner_id = new_learner()
    frozen, _ = new_learner("frozen")

    after_closing = await client.post(
        f"/api/v1/activities/{late}/enrolments", json={"learner": number}, headers=bearer(staff)
    )
    assert after_closing.status_code == 409
    assert after_closing.json()["type"].endswith("/enrolment-closed")
    unknown = await client.post(url, json={"learner": "41071100000000"}, headers=bearer(staff))
    assert unknown.status_code == 422 and unknown.json()["type"].endswith("/unknown-learner")
    not_active = await client.post(url, json={"learner": frozen}, headers=bearer(staff))
    assert not_active.status_code == 409 and not_active.json()["account_status"] == "frozen"
    assert not_active.json()["detail_zh"] == "该学习账号已冻结。"
    no_body = await client.post(url, headers=bearer(staff))
    assert no_body.status_code == 422 and no_body.json()["type"].endswith("/invalid-enrolment")
    malformed = await client.post(url, json={"learner": "12345"}, headers=bearer(staff))
    assert malformed.status_code == 422
    extra = await client.post(url, json={"learner": number, "status": "x"}, headers=bearer(staff))
    assert extra.status_code == 422

    elsewhere = issue_token("staff", role="school_staff", unit="410711101")
    for response in (
        await client.post(url, json={"learner": number}, headers=bearer(elsewhere)),
        await client.delete(f"{url}/{number}", headers=bearer(elsewhere)),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["type"].endswith("/activity-not-found")
    for token in (
        issue_token("staff", role="auditor", unit="410711"),
        issue_token("partner", client_id="mooc-x"),
    ):
        assert (
            await client.post(url, json={"learner": number}, headers=bearer(token))
        ).status_code == 403
        assert (await client.delete(f"{url}/{number}", headers=bearer(token))).status_code == 403
    resident = issue_token("resident", subject=str(learner_id))
    on_behalf = await client.post(url, json={"learner": number}, headers=bearer(resident))
    assert on_behalf.status_code == 403
    assert (await client.delete(f"{url}/{number}", headers=bearer(resident))).status_code == 403
    never = await client.delete(f"{url}/41071100000000", headers=bearer(staff))
    assert never.status_code == 404

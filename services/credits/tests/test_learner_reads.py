"""A learner's portfolio parts on PostgreSQL and SQLite: the resident reads them under /me, staff
covering the learner and auditors under /learners/{id}, from the same queries; anyone else gets
a 404 that says nothing about the learner."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from credits.ledger import settlement
from credits.portfolio.service import FIRST_PAGE
from credits.records.models import Attendance
from testkit.http import bearer

from .conftest import LEARNER_HOMES, arrived_earlier

PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
HOME = "/410711/410711100/410711100201/"

# every learner-scoped read and the resident's own form of it
PARTS = {
    "records": "/api/v1/me/records",
    "hours": "/api/v1/me/hours",
    "enrolments": "/api/v1/me/enrolments",
    "attendance": "/api/v1/me/attendance",
    "certifications": "/api/v1/me/certifications",
    "conversions": "/api/v1/me/conversions",
    "credits": "/api/v1/me/credits",
    "credit-history": "/api/v1/me/credit-history",
    "portfolio-parts": "/api/v1/me/portfolio-parts",
}


async def _checked_in_and_out(client, db, staff: str, resident: str, learner: uuid.UUID) -> dict:  # type: ignore[no-untyped-def]
    """An activity with a session under way now and two last year; the resident attends the
    current one with the QR code (check-in, then check-out 20 minutes later)."""
    now = datetime.now(UTC)
    sessions = [
        {
            "starts_at": (now - timedelta(minutes=30)).isoformat(),
            "ends_at": (now + timedelta(minutes=60)).isoformat(),
            "place": "王村镇文化站",
        }
    ] + [
        {
            "starts_at": (now - timedelta(days=365 - week * 7)).isoformat(),
            "ends_at": (now - timedelta(days=365 - week * 7, hours=-2)).isoformat(),
        }
        for week in range(2)
    ]
    created = await client.post(
        "/api/v1/activities",
        json={
            "title": "太极拳入门",
            "kind": "training_class",
            "category": "tai_chi",
            "mode": "offline",
            "host_unit": "410711100",
            "sessions": sessions,
        },
        headers=bearer(staff),
    )
    assert created.status_code == 201, created.text
    activity = created.json()
    current = next(s["id"] for s in activity["sessions"] if s["place"] == "王村镇文化站")
    enrolled = await client.post(
        f"/api/v1/activities/{activity['id']}/enrolments", headers=bearer(resident)
    )
    assert enrolled.status_code == 201, enrolled.text
    code = (
        await client.post(f"/api/v1/sessions/{current}/check-in-code", headers=bearer(staff))
    ).json()["code"]
    checked = await client.post(
        f"/api/v1/sessions/{current}/check-in", json={"code": code}, headers=bearer(resident)
    )
    assert checked.status_code == 201, checked.text
    await arrived_earlier(db, current, learner, minutes=20)
    out = await client.post(
        f"/api/v1/sessions/{current}/check-out", json={"code": code}, headers=bearer(resident)
    )
    assert out.status_code == 200, out.text
    return {"activity": activity, "current": current, "record": out.json()}


async def test_attendance_lists_check_ins_with_session_activity_and_record(
    session_client, issue_token
) -> None:
    client, db = session_client
    learner = uuid.uuid4()
    resident = issue_token("resident", subject=str(learner))
    staff = issue_token("staff", role="learning_point_staff", unit="410711100")
    made = await _checked_in_and_out(client, db, staff, resident, learner)
    activity, record = made["activity"], made["record"]
    current = next(s for s in activity["sessions"] if s["id"] == made["current"])
    # last year's two sessions, checked in but not out (staff lists are typed in later),
    # arranged straight in the database
    old = sorted(
        (s for s in activity["sessions"] if s["id"] != made["current"]),
        key=lambda s: s["starts_at"],
    )
    for meeting in old:
        db.add(
            Attendance(
                session_id=uuid.UUID(meeting["id"]),
                learner_id=learner,
                checked_in_at=datetime.fromisoformat(meeting["starts_at"]),
            )
        )
    await db.commit()

    first = await client.get("/api/v1/me/attendance?limit=2", headers=bearer(resident))
    assert first.status_code == 200, first.text
    page = first.json()
    assert [a["session_id"] for a in page["items"]] == [current["id"], old[1]["id"]]
    latest = page["items"][0]
    assert latest["activity_id"] == activity["id"]
    assert latest["activity_title"] == "太极拳入门"
    assert (latest["category"], latest["mode"], latest["place"]) == (
        "tai_chi",
        "offline",
        "王村镇文化站",
    )
    assert latest["record_id"] == record["id"]
    assert latest["record_status"] == "verified" and latest["minutes"] == record["minutes"]
    assert latest["checked_out_at"] is not None
    assert datetime.fromisoformat(latest["session_starts_at"]) == datetime.fromisoformat(
        current["starts_at"]
    )
    assert page["items"][1]["record_id"] is None and page["items"][1]["checked_out_at"] is None
    assert page["next_cursor"]
    rest = await client.get(
        "/api/v1/me/attendance",
        params={"limit": 2, "cursor": page["next_cursor"]},
        headers=bearer(resident),
    )
    assert [a["session_id"] for a in rest.json()["items"]] == [old[0]["id"]]
    assert rest.json()["next_cursor"] is None
    # nobody else's check-ins show up in a resident's list
    stranger = issue_token("resident")
    assert (await client.get("/api/v1/me/attendance", headers=bearer(stranger))).json() == {
        "items": [],
        "next_cursor": None,
    }
    assert (await client.get("/api/v1/me/attendance", headers=bearer(staff))).status_code == 403


@pytest.fixture
async def learner_with_history(session_client, issue_token, factory):  # type: ignore[no-untyped-def]
    """A learner living in a village of town 410711100 with something in every part."""
    client, db = session_client
    learner = uuid.uuid4()
    LEARNER_HOMES[str(learner)] = HOME
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    staff = issue_token("staff", role="learning_point_staff", unit="410711100")
    await _checked_in_and_out(client, db, staff, resident, learner)
    law, _ = await factory.activity(category="law")
    await factory.records(learner, law, count=3, minutes=600, status="verified")
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    for title in ("中式烹调师（四级）", "育婴员（五级）"):
        submitted = await client.post(
            "/api/v1/certifications",
            json={
                "outcome_type": "vocational_qualification",
                "level": "4",
                "title": title,
                "issuer": "新乡市人力资源和社会保障局",
                "issued_on": "2026-06-30",
            },
            headers=bearer(resident),
        )
        assert submitted.status_code == 201, submitted.text
    uploaded = await client.post(
        f"/api/v1/certifications/{submitted.json()['id']}/evidence",
        files={"file": ("证书.pdf", PDF, "application/pdf")},
        headers=bearer(resident),
    )
    assert uploaded.status_code == 201, uploaded.text
    applied = await client.post(
        "/api/v1/conversions",
        json={"target": "ou_course_credit", "units": 1},
        headers=bearer(resident),
    )
    assert applied.status_code == 201, applied.text
    return {"learner": learner, "resident": resident, "evidence": uploaded.json()["id"]}


@pytest.mark.parametrize("part", sorted(PARTS))
async def test_staff_covering_the_learner_and_auditors_read_what_the_resident_reads(
    client, issue_token, learner_with_history, part: str
) -> None:
    learner, resident = learner_with_history["learner"], learner_with_history["resident"]
    own = await client.get(PARTS[part], headers=bearer(resident))
    assert own.status_code == 200, own.text
    assert own.json() not in ([], {"items": [], "next_cursor": None})
    url = f"/api/v1/learners/{learner}/{part}"
    for reader in (
        issue_token("staff", role="learning_point_staff", unit="410711100"),
        issue_token("staff", role="school_staff", unit="410711100"),
        issue_token("staff", role="auditor", unit="410711"),
        resident,  # a resident may read their own under the learner's address too
    ):
        seen = await client.get(url, headers=bearer(reader))
        assert seen.status_code == 200, (part, seen.text)
        assert seen.json() == own.json(), part


@pytest.mark.parametrize("part", sorted(PARTS))
async def test_someone_elses_learner_is_a_404_that_says_nothing(
    client, issue_token, learner_with_history, part: str
) -> None:
    url = f"/api/v1/learners/{learner_with_history['learner']}/{part}"
    nobody = f"/api/v1/learners/{uuid.uuid4()}/{part}"
    for caller in (
        issue_token("staff", role="school_staff", unit="410711101"),  # another town
        issue_token("resident"),  # another resident
        issue_token("partner", client_id="mooc-curious"),
    ):
        refused = await client.get(url, headers=bearer(caller))
        assert refused.status_code == 404, (part, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert str(learner_with_history["learner"]) in refused.json()["detail"]
        assert "找不到" in refused.json()["detail_zh"]
        # the same answer as for a learner who does not exist at all
        unknown = await client.get(nobody, headers=bearer(caller))
        assert unknown.status_code == 404
        assert unknown.json()["type"] == refused.json()["type"]


async def test_the_learners_lists_are_complete_and_in_order(
    client, issue_token, learner_with_history
) -> None:
    learner = learner_with_history["learner"]
    auditor = issue_token("staff", role="auditor", unit="410711")

    async def read(part: str):  # type: ignore[no-untyped-def]
        response = await client.get(f"/api/v1/learners/{learner}/{part}", headers=bearer(auditor))
        assert response.status_code == 200, response.text
        return response.json()

    certifications = await read("certifications")
    # newest first; the evidence list belongs to the certification it was uploaded to
    assert [c["title"] for c in certifications] == ["育婴员（五级）", "中式烹调师（四级）"]
    assert [[e["id"] for e in c["evidence"]] for c in certifications] == [
        [learner_with_history["evidence"]],
        [],
    ]
    conversions = await read("conversions")
    assert [(c["target"], c["status"]) for c in conversions] == [("ou_course_credit", "applied")]
    records = await read("records?limit=2")
    assert len(records["items"]) == 2 and records["next_cursor"]
    ids = [r["id"] for r in records["items"]]
    assert ids == sorted(ids, reverse=True)
    rest = await client.get(
        f"/api/v1/learners/{learner}/records",
        params={"limit": 2, "cursor": records["next_cursor"]},
        headers=bearer(auditor),
    )
    assert len(rest.json()["items"]) == 2 and rest.json()["next_cursor"] is None
    hours = await read("hours")
    assert hours["total_minutes"] == 3 * 600 + (await read("attendance"))["items"][0]["minutes"]
    enrolments = await read("enrolments")
    assert [e["status"] for e in enrolments] == ["enrolled"]
    credits = await read("credits")
    assert {"category": "law", "balance_hundredths": 300} in credits["categories"]
    assert credits["settlement_pending"] is False


async def test_hours_count_what_the_credit_rules_count(
    session_client, issue_token, factory
) -> None:
    client, _ = session_client
    learner = uuid.uuid4()
    online, _ = await factory.activity(category="digital_skills", mode="online")
    offline, _ = await factory.activity(category="law")
    # partner hours count on arrival, as the default rules credit them
    await factory.records(
        learner,
        online,
        count=2,
        minutes=120,
        source="partner",
        mode="online",
        category="digital_skills",
    )
    # staff entries wait for a school's check; rejected and voided records never count
    await factory.records(learner, offline, minutes=600, source="staff_entry")
    await factory.records(learner, offline, minutes=60, source="staff_entry", status="verified")
    await factory.records(
        learner, online, minutes=30, source="partner", status="rejected", mode="online"
    )
    await factory.records(learner, offline, minutes=45, source="import", status="voided")
    hours = (
        await client.get(
            "/api/v1/me/hours", headers=bearer(issue_token("resident", subject=str(learner)))
        )
    ).json()
    assert (hours["total_minutes"], hours["online_minutes"], hours["offline_minutes"]) == (
        300,
        240,
        60,
    )
    assert [(b["category"], b["mode"], b["minutes"], b["records"]) for b in hours["buckets"]] == [
        ("digital_skills", "online", 240, 2),
        ("law", "offline", 60, 1),
    ]


async def test_hours_fall_in_the_beijing_year_they_were_learned_in(
    session_client, issue_token, factory
) -> None:
    client, _ = session_client
    learner = uuid.uuid4()
    activity, _ = await factory.activity(category="law")
    # 17:30 UTC on New Year's Eve is 01:30 on New Year's Day in Muye
    await factory.records(
        learner,
        activity,
        minutes=60,
        status="verified",
        start=datetime(2025, 12, 31, 17, 30, tzinfo=UTC),
    )
    await factory.records(
        learner,
        activity,
        minutes=30,
        status="verified",
        start=datetime(2025, 12, 31, 15, 0, tzinfo=UTC),
    )
    hours = (
        await client.get(
            "/api/v1/me/hours", headers=bearer(issue_token("resident", subject=str(learner)))
        )
    ).json()
    assert [(b["year"], b["minutes"]) for b in hours["buckets"]] == [(2025, 30), (2026, 60)]


async def test_portfolio_parts_are_each_parts_own_first_answer_and_awards_are_approved_awards(
    client, issue_token, factory, learner_with_history
) -> None:
    learner, resident = learner_with_history["learner"], learner_with_history["resident"]
    more, _ = await factory.activity(category="health")
    await factory.records(learner, more, count=FIRST_PAGE, minutes=60, category="health")
    college = issue_token("staff", role="college_staff", unit="410711")
    awards = []
    for title, approve in (("牧野区百姓学习之星", True), ("新乡市优秀志愿者", False)):
        submitted = await client.post(
            "/api/v1/certifications",
            json={
                "outcome_type": "award",
                "level": "district",
                "title": title,
                "issuer": "牧野区人民政府",
                "issued_on": "2026-09-01",
            },
            headers=bearer(resident),
        )
        assert submitted.status_code == 201, submitted.text
        awards.append(submitted.json()["id"])
        if approve:
            await client.post(
                f"/api/v1/certifications/{awards[-1]}/evidence",
                files={"file": ("奖状.pdf", PDF, "application/pdf")},
                headers=bearer(resident),
            )
            reviewed = await client.post(
                f"/api/v1/certifications/{awards[-1]}/review",
                json={"decision": "approve", "reason": "属实", "category": "civic_morals"},
                headers=bearer(college),
            )
            assert reviewed.status_code == 200, reviewed.text
    parts = (await client.get("/api/v1/me/portfolio-parts", headers=bearer(resident))).json()
    singles = {
        "enrolments": "/api/v1/me/enrolments",
        "attendance": f"/api/v1/me/attendance?limit={FIRST_PAGE}",
        "hours": "/api/v1/me/hours",
        "recent_records": f"/api/v1/me/records?limit={FIRST_PAGE}",
        "credit_balance": "/api/v1/me/credits",
        "credit_history": f"/api/v1/me/credit-history?limit={FIRST_PAGE}",
        "certifications": "/api/v1/me/certifications",
        "conversions": "/api/v1/me/conversions",
    }
    assert set(parts) == {*singles, "awards"}
    for name, path in singles.items():
        alone = await client.get(path, headers=bearer(resident))
        assert parts[name] == alone.json(), name
    # a growing list comes as its first page; the part's own route pages on from its cursor
    assert len(parts["recent_records"]["items"]) == FIRST_PAGE
    rest = await client.get(
        "/api/v1/me/records",
        params={"cursor": parts["recent_records"]["next_cursor"]},
        headers=bearer(resident),
    )
    assert len(rest.json()["items"]) == 4  # three law records and the check-out's
    assert [a["id"] for a in parts["awards"]] == [awards[0]]  # approved awards only
    assert parts["awards"][0]["status"] == "approved"
    assert awards[1] in [c["id"] for c in parts["certifications"]]
    auditor = issue_token("staff", role="auditor", unit="410711")
    theirs = await client.get(
        f"/api/v1/learners/{learner}/portfolio-parts", headers=bearer(auditor)
    )
    assert theirs.json() == parts

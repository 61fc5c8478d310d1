"""The e-portfolio (终身学习电子档案) end to end through the gateway, on real processes and
PostgreSQL: a resident's own with settled partner hours, a check-in, an award and a conversion;
and a learner's for staff covering them and auditors, a 404 for everyone else."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from accounts.cli import DEMO_STAFF
from testkit.http import bearer, new_partner, new_resident, password_token
from testkit.postgres import checked_in_earlier

PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _portfolio_once_settled(gateway: httpx.Client, token: str, timeout: float = 20.0) -> Any:
    """The resident's portfolio once the credits worker has settled every record."""
    deadline = time.monotonic() + timeout
    while True:
        response = gateway.get("/api/v1/me/portfolio", headers=bearer(token))
        assert response.status_code == 200, response.text
        body = response.json()
        if not body["credit_balance"]["settlement_pending"] or time.monotonic() > deadline:
            return body
        time.sleep(0.3)


def _staff(gateway: httpx.Client, admin: str, role: str, unit: str) -> str:
    username = f"p-{role[:10]}-{uuid.uuid4().hex[:6]}"
    created = gateway.post(
        "/api/v1/staff",
        json={
            "username": username,
            "display_name": role,
            "password": "portfolio-staff-pass",
            "role": role,
            "unit": unit,
        },
        headers=bearer(admin),
    )
    assert created.status_code == 201, created.text
    return password_token(gateway, username, "portfolio-staff-pass")


def test_resident_portfolio_has_settled_credits_check_ins_certifications_and_awards(
    gateway: httpx.Client,
    stack,  # type: ignore[no-untyped-def]
) -> None:
    admin = password_token(gateway, DEMO_STAFF["username"], DEMO_STAFF["password"])
    account = new_resident(gateway, admin, town="410711100", password="wang-shu-fen-pass")
    resident = password_token(gateway, account["account_number"], "wang-shu-fen-pass")

    # a lecture under way now: enrolment, QR check-in and check-out
    now = datetime.now(UTC)
    lecture = gateway.post(
        "/api/v1/activities",
        json={
            "title": "老年人防诈骗讲座",
            "kind": "lecture",
            "category": "safety_anti_fraud",
            "mode": "offline",
            "host_unit": "410711100",
            "sessions": [
                {
                    "starts_at": (now - timedelta(minutes=10)).isoformat(),
                    "ends_at": (now + timedelta(minutes=50)).isoformat(),
                    "place": "新乡市牧野区社区学院",
                }
            ],
        },
        headers=bearer(admin),
    ).json()
    session_id = lecture["sessions"][0]["id"]
    enrolled = gateway.post(
        f"/api/v1/activities/{lecture['id']}/enrolments", headers=bearer(resident)
    )
    assert enrolled.status_code == 201, enrolled.text
    code = gateway.post(
        f"/api/v1/sessions/{session_id}/check-in-code", headers=bearer(admin)
    ).json()["code"]
    for step in ("check-in", "check-out"):
        done = gateway.post(
            f"/api/v1/sessions/{session_id}/{step}", json={"code": code}, headers=bearer(resident)
        )
        assert done.status_code in (200, 201), done.text
        if step == "check-in":  # the resident stays twenty minutes (a check-out counts minutes)
            checked_in_earlier(stack.config.credits_database_url, session_id, 20)
    check_out_record, attended_minutes = done.json()["id"], done.json()["minutes"]
    assert attended_minutes >= 10  # from the session's start, ten minutes before it was made

    # online hours from a partner platform, settled by the credits service's own worker
    client_id = f"portfolio-{uuid.uuid4().hex[:6]}"
    partner = new_partner(gateway, admin, client_id)
    course = gateway.post(
        "/api/v1/activities",
        json={
            "title": "智能手机使用",
            "kind": "online_course",
            "category": "digital_skills",
            "mode": "online",
            "partner": client_id,
        },
        headers=bearer(admin),
    ).json()["id"]
    start = now.replace(microsecond=0) - timedelta(days=10)
    posted = gateway.post(
        "/api/v1/learning-records:batch",
        json={
            "records": [
                {
                    "id": f"{client_id}-{day}",
                    "learner": account["account_number"],
                    "activity": course,
                    "start": (start + timedelta(days=day)).isoformat(),
                    "end": (start + timedelta(days=day, hours=4)).isoformat(),
                    "minutes": 240,
                }
                for day in range(3)
            ]
        },
        headers=bearer(partner),
    )
    assert posted.json()["created"] == 3, posted.text

    # an award (市级表彰) with its evidence, approved by the college; a conversion applied for
    award = gateway.post(
        "/api/v1/certifications",
        json={
            "outcome_type": "award",
            "level": "city",
            "title": "新乡市百姓学习之星",
            "issuer": "新乡市教育局",
            "issued_on": "2026-09-10",
        },
        headers=bearer(resident),
    ).json()
    uploaded = gateway.post(
        f"/api/v1/certifications/{award['id']}/evidence",
        files={"file": ("奖状.pdf", PDF, "application/pdf")},
        headers=bearer(resident),
    )
    assert uploaded.status_code == 201, uploaded.text
    approved = gateway.post(
        f"/api/v1/certifications/{award['id']}/review",
        json={"decision": "approve", "reason": "表彰文件属实", "category": "civic_morals"},
        headers=bearer(admin),
    )
    assert approved.status_code == 200, approved.text
    applied = gateway.post(
        "/api/v1/conversions",
        json={"target": "ou_course_credit", "units": 1},
        headers=bearer(resident),
    )
    assert applied.status_code == 201, applied.text

    body = _portfolio_once_settled(gateway, resident)
    assert body["complete"] is True and body["missing"] == {}
    assert "not_yet_offered" not in body
    assert body["profile"]["id"] == account["id"]
    assert body["profile"]["id_number_masked"].count("*") == 10
    assert [(e["activity_id"], e["status"]) for e in body["enrolments"]] == [
        (lecture["id"], "enrolled")
    ]
    (attended,) = body["attendance"]["items"]
    assert (attended["session_id"], attended["activity_title"]) == (session_id, "老年人防诈骗讲座")
    assert attended["record_id"] == check_out_record and attended["checked_out_at"]
    assert body["hours"]["online_minutes"] == 3 * 240
    assert {r["source"] for r in body["recent_records"]["items"]} == {"partner", "check_in"}
    assert len(body["recent_records"]["items"]) == 4
    # 3 x 240 online minutes and the lecture's minutes at 900 minutes a credit, and the city
    # award's 2 credits
    balance = body["credit_balance"]
    assert balance["settlement_pending"] is False
    lecture_hundredths = attended_minutes * 100 // 900
    assert {c["category"]: c["balance_hundredths"] for c in balance["categories"]} == {
        "digital_skills": 3 * 240 * 100 // 900,
        "safety_anti_fraud": lecture_hundredths,
        "civic_morals": 200,
    }
    assert balance["total_hundredths"] == 80 + lecture_hundredths + 200
    history = body["credit_history"]
    # the check-out's record and the partner's batch are settled by the worker as they come:
    # in one accrual, or in one each when the worker ran between them
    kinds = sorted(t["kind"] for t in history["items"])
    assert kinds in (["accrual", "certification"], ["accrual", "accrual", "certification"]), kinds
    assert history["next_cursor"] is None
    assert sum(t["net_hundredths"] for t in history["items"]) == balance["total_hundredths"]
    assert [(c["id"], c["status"]) for c in body["certifications"]] == [(award["id"], "approved")]
    assert body["awards"] == body["certifications"]
    assert [(c["id"], c["status"]) for c in body["conversions"]] == [
        (applied.json()["id"], "applied")
    ]


@pytest.fixture(scope="module")
def learner_and_readers(stack) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A learner in a village of town 410711101 with a certification under review, and a token
    for each kind of reader."""
    with httpx.Client(base_url=stack.config.url(stack.config.gateway_port), timeout=10) as gateway:
        admin = password_token(gateway, DEMO_STAFF["username"], DEMO_STAFF["password"])
        account = new_resident(gateway, admin, town="410711101", password="zhao-xiao-li-pass")
        resident = password_token(gateway, account["account_number"], "zhao-xiao-li-pass")
        other = new_resident(gateway, admin, town="410711101", password="zhao-da-gang-pass")
        submitted = gateway.post(
            "/api/v1/certifications",
            json={
                "outcome_type": "mooc_certificate",
                "level": "standard",
                "title": "Python 入门",
                "issuer": "中国大学MOOC",
                "issued_on": "2026-05-20",
            },
            headers=bearer(resident),
        )
        assert submitted.status_code == 201, submitted.text
        return {
            "learner": account["id"],
            "resident": resident,
            "other_resident": password_token(gateway, other["account_number"], "zhao-da-gang-pass"),
            "town_staff": _staff(gateway, admin, "school_staff", "410711101"),
            "other_town_staff": _staff(gateway, admin, "school_staff", "410711100"),
            "auditor": _staff(gateway, admin, "auditor", "410711"),
        }


@pytest.mark.parametrize("reader", ["town_staff", "auditor", "resident"])
def test_staff_of_the_learners_town_and_auditors_read_the_learners_portfolio(
    gateway: httpx.Client, learner_and_readers: dict[str, Any], reader: str
) -> None:
    learner = learner_and_readers["learner"]
    own = gateway.get("/api/v1/me/portfolio", headers=bearer(learner_and_readers["resident"]))
    seen = gateway.get(
        f"/api/v1/learners/{learner}/portfolio", headers=bearer(learner_and_readers[reader])
    )
    assert seen.status_code == 200, seen.text
    body = seen.json()
    assert body["complete"] is True and body["missing"] == {}
    assert body["profile"]["id"] == learner
    assert [c["title"] for c in body["certifications"]] == ["Python 入门"]
    assert body == own.json()  # the same parts the resident sees of themself


@pytest.mark.parametrize("reader", ["other_town_staff", "other_resident"])
def test_everyone_else_gets_a_404_that_says_nothing_about_the_learner(
    gateway: httpx.Client, learner_and_readers: dict[str, Any], reader: str
) -> None:
    token = learner_and_readers[reader]
    refused = gateway.get(
        f"/api/v1/learners/{learner_and_readers['learner']}/portfolio", headers=bearer(token)
    )
    assert refused.status_code == 404
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["detail_zh"] == "找不到该学习者或无权查看。"
    assert not {"profile", "certifications", "complete"} & set(refused.json())
    # exactly what a learner who does not exist gets
    nobody = uuid.uuid4()
    unknown = gateway.get(f"/api/v1/learners/{nobody}/portfolio", headers=bearer(token))
    assert unknown.status_code == 404
    strip = {"detail", "request_id", "instance"}
    assert {k: v for k, v in unknown.json().items() if k not in strip} == {
        k: v for k, v in refused.json().items() if k not in strip
    }


def test_the_kept_portfolio_shows_the_residents_own_write_at_once(gateway: httpx.Client) -> None:
    """The gateway keeps a resident's composed portfolio for a few seconds (Age says how old),
    and drops it when the resident writes: the enrolment is in the very next read."""
    admin = password_token(gateway, DEMO_STAFF["username"], DEMO_STAFF["password"])
    account = new_resident(gateway, admin, town="410711100", password="li-xiu-ying-pass")
    resident = bearer(password_token(gateway, account["account_number"], "li-xiu-ying-pass"))
    soon = datetime.now(UTC) + timedelta(days=3)
    course = gateway.post(
        "/api/v1/activities",
        json={
            "title": "太极拳入门",
            "kind": "training_class",
            "category": "tai_chi",
            "mode": "offline",
            "host_unit": "410711100",
            "sessions": [
                {
                    "starts_at": soon.isoformat(),
                    "ends_at": (soon + timedelta(hours=1)).isoformat(),
                    "place": "牧野区文化广场",
                }
            ],
        },
        headers=bearer(admin),
    ).json()

    first = gateway.get("/api/v1/me/portfolio", headers=resident)
    again = gateway.get("/api/v1/me/portfolio", headers=resident)
    assert first.status_code == again.status_code == 200
    assert "age" not in first.headers and int(again.headers["age"]) <= 5
    assert again.json() == first.json() and first.json()["enrolments"] == []

    enrolled = gateway.post(f"/api/v1/activities/{course['id']}/enrolments", headers=resident)
    assert enrolled.status_code == 201, enrolled.text
    after = gateway.get("/api/v1/me/portfolio", headers=resident)
    assert "age" not in after.headers
    assert [e["activity_id"] for e in after.json()["enrolments"]] == [course["id"]]

"""Learning gets into the bank end to end: an activity, enrolment, a QR check-in and check-out,
and the resident's learning record, all through the gateway on PostgreSQL."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta, timezone

import httpx
from openpyxl import Workbook

from accounts.cli import DEMO_STAFF
from testkit.http import bearer, new_partner, new_resident, password_token
from testkit.postgres import checked_in_earlier

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def test_activity_to_learning_record_through_the_gateway(gateway: httpx.Client, stack) -> None:  # type: ignore[no-untyped-def]
    admin = password_token(gateway, DEMO_STAFF["username"], DEMO_STAFF["password"])
    account = new_resident(
        gateway,
        admin,
        town="410711100",
        password="sun-da-ye-pass",
        name="孙大爷",
        groups=["elderly"],
    )
    resident = password_token(gateway, account["account_number"], "sun-da-ye-pass")

    now = datetime.now(UTC)
    created = gateway.post(
        "/api/v1/activities",
        json={
            "title": "防诈骗讲座",
            "kind": "lecture",
            "category": "safety_anti_fraud",
            "mode": "offline",
            "host_unit": "410711100",  # checked against the real school network
            "capacity": 50,
            "sessions": [
                {
                    "starts_at": (now - timedelta(minutes=10)).isoformat(),
                    "ends_at": (now + timedelta(minutes=50)).isoformat(),
                }
            ],
        },
        headers=bearer(admin),
    )
    assert created.status_code == 201, created.text
    activity = created.json()
    assert activity["host_unit"] == "410711100"
    session_id = activity["sessions"][0]["id"]

    enrolled = gateway.post(
        f"/api/v1/activities/{activity['id']}/enrolments", headers=bearer(resident)
    )
    assert enrolled.json()["status"] == "enrolled"
    code = gateway.post(
        f"/api/v1/sessions/{session_id}/check-in-code", headers=bearer(admin)
    ).json()
    checked = gateway.post(
        f"/api/v1/sessions/{session_id}/check-in",
        json={"code": code["code"]},
        headers=bearer(resident),
    )
    assert checked.status_code == 201, checked.text
    # scanning again at once counts no minute: refused, and the check-in stays open
    at_once = gateway.post(
        f"/api/v1/sessions/{session_id}/check-out",
        json={"code": code["code"]},
        headers=bearer(resident),
    )
    assert at_once.status_code == 409, at_once.text
    assert at_once.headers["content-type"].startswith("application/problem+json")
    assert at_once.json()["type"].endswith("/nothing-attended-yet") and at_once.json()["detail_zh"]
    # twenty minutes pass (the check-in is moved back in the credits database)
    checked_in_earlier(stack.config.credits_database_url, session_id, 20)
    record = gateway.post(
        f"/api/v1/sessions/{session_id}/check-out",
        json={"code": code["code"]},
        headers=bearer(resident),
    )
    assert record.status_code == 200, record.text
    # counted from the session's start ten minutes ago, not from the arrival before it
    assert 9 <= record.json()["minutes"] <= 11
    assert record.json()["learner_id"] == account["id"]
    records = gateway.get("/api/v1/me/records", headers=bearer(resident)).json()["items"]
    assert [r["id"] for r in records] == [record.json()["id"]]
    # staff cannot check in as a resident; a resident cannot open a session's code
    assert (
        gateway.post(
            f"/api/v1/sessions/{session_id}/check-in",
            json={"code": code["code"]},
            headers=bearer(admin),
        ).status_code
        == 403
    )
    assert (
        gateway.post(
            f"/api/v1/sessions/{session_id}/check-in-code", headers=bearer(resident)
        ).status_code
        == 403
    )


def test_resident_portfolio_is_composed_and_says_what_is_missing(
    gateway: httpx.Client, stack
) -> None:  # type: ignore[no-untyped-def]
    admin = password_token(gateway, DEMO_STAFF["username"], DEMO_STAFF["password"])
    account = new_resident(
        gateway, admin, town="410711101", password="zhou-a-yi-pass", name="周阿姨"
    )
    resident = password_token(gateway, account["account_number"], "zhou-a-yi-pass")
    whole = gateway.get("/api/v1/me/portfolio", headers=bearer(resident))
    assert whole.status_code == 200
    body = whole.json()
    assert body["complete"] is True and body["missing"] == {}
    assert body["profile"]["id"] == account["id"]
    assert body["profile"]["id_number_masked"].count("*") == 10
    assert body["hours"]["total_minutes"] == 0 and body["enrolments"] == []
    assert body["credit_balance"]["total_hundredths"] == 0 and body["awards"] == []
    assert "not_yet_offered" not in body  # every part of the issue is offered now
    assert gateway.get("/api/v1/me/portfolio", headers=bearer(admin)).status_code == 403
    learners = f"/api/v1/learners/{account['id']}/portfolio"
    assert gateway.get(learners, headers=bearer(admin)).json() == body

    other = new_resident(gateway, admin, town="410711101", password="zhou-da-ye-pass")
    unread = password_token(gateway, other["account_number"], "zhou-da-ye-pass")

    stack.stop(only=("credits",))
    try:
        # what the gateway composed for the resident a moment ago is still kept (complete, for
        # GATEWAY_PORTFOLIO_CACHE_SECONDS), and says how old it is; a portfolio composed now
        # says what is missing
        kept = gateway.get("/api/v1/me/portfolio", headers=bearer(resident))
        partial = gateway.get("/api/v1/me/portfolio", headers=bearer(unread)).json()
        staff_partial = gateway.get(learners, headers=bearer(admin)).json()
    finally:
        stack.start(only=("credits",), log_dir=stack.config.data_dir)
        stack.wait_ready()
    credits_parts = {
        "enrolments",
        "attendance",
        "hours",
        "recent_records",
        "credit_balance",
        "credit_history",
        "certifications",
        "conversions",
        "awards",
    }
    assert kept.json() == body and int(kept.headers["age"]) <= 5
    for answer, owner in ((partial, other), (staff_partial, account)):
        assert answer["complete"] is False
        assert set(answer["missing"]) == credits_parts
        assert all(answer[part] is None for part in credits_parts)
        assert answer["profile"]["id"] == owner["id"]
    assert partial["missing"]["hours"].startswith("unreachable")


def test_partner_batch_through_the_gateway_with_retry_and_per_item_results(
    gateway: httpx.Client,
) -> None:
    admin = password_token(gateway, DEMO_STAFF["username"], DEMO_STAFF["password"])
    client_id = f"mooc-{uuid.uuid4().hex[:6]}"
    partner = new_partner(gateway, admin, client_id)
    course = gateway.post(
        "/api/v1/activities",
        json={
            "title": "老年人智能手机课",
            "kind": "online_course",
            "category": "digital_skills",
            "mode": "online",
            "partner": client_id,
        },
        headers=bearer(admin),
    ).json()["id"]
    account = new_resident(
        gateway, admin, town="410711100", password="qian-nai-nai-pass", name="钱奶奶"
    )
    start = datetime.now(UTC) - timedelta(days=1)
    records = [
        {
            "id": f"{client_id}-{n}",
            "learner": account["account_number"],
            "activity": course,
            "start": (start + timedelta(hours=n)).isoformat(),
            "end": (start + timedelta(hours=n, minutes=40)).isoformat(),
            "minutes": 40,
        }
        for n in range(3)
    ] + [
        {
            "id": "bad",
            "learner": "41071100000000",
            "activity": course,
            "start": start.isoformat(),
            "end": start.isoformat(),
            "minutes": 0,
        }
    ]
    headers = bearer(partner) | {"Idempotency-Key": f"{client_id}-batch-1"}
    first = gateway.post(
        "/api/v1/learning-records:batch", json={"records": records}, headers=headers
    )
    assert first.status_code == 200, first.text
    assert (first.json()["created"], first.json()["rejected"]) == (3, 1)
    replay = gateway.post(
        "/api/v1/learning-records:batch", json={"records": records}, headers=headers
    )
    assert replay.json() == first.json()
    retried = gateway.post(
        "/api/v1/learning-records:batch", json={"records": records[:3]}, headers=bearer(partner)
    )
    assert [r["status"] for r in retried.json()["results"]] == ["duplicate"] * 3
    resident = password_token(gateway, account["account_number"], "qian-nai-nai-pass")
    mine = gateway.get("/api/v1/me/records", headers=bearer(resident)).json()["items"]
    assert sorted(r["minutes"] for r in mine) == [40, 40, 40]
    assert {r["source"] for r in mine} == {"partner"}
    # staff cannot post a partner batch; partners cannot see residents' records
    assert (
        gateway.post(
            "/api/v1/learning-records:batch", json={"records": records}, headers=bearer(admin)
        ).status_code
        == 403
    )
    assert gateway.get("/api/v1/me/records", headers=bearer(partner)).status_code == 403


def _xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _new_staff(gateway: httpx.Client, admin: str, role: str, unit: str) -> str:
    username = f"e2e-{role[:10]}-{uuid.uuid4().hex[:6]}"
    created = gateway.post(
        "/api/v1/staff",
        json={
            "username": username,
            "display_name": role,
            "password": "e2e-staff-password",
            "role": role,
            "unit": unit,
        },
        headers=bearer(admin),
    )
    assert created.status_code == 201, created.text
    return password_token(gateway, username, "e2e-staff-password")


def test_staff_enrol_enter_a_sheet_of_attendance_and_the_school_verifies_it(
    gateway: httpx.Client,
) -> None:
    admin = password_token(gateway, DEMO_STAFF["username"], DEMO_STAFF["password"])
    village = gateway.get(
        "/api/v1/units", params={"under": "410711100", "level": "learning_point"}
    ).json()["items"][0]["key"]
    point = _new_staff(gateway, admin, "learning_point_staff", village)
    school = _new_staff(gateway, admin, "school_staff", "410711100")
    elsewhere = _new_staff(gateway, admin, "school_staff", "410711101")
    residents = [
        new_resident(gateway, admin, town="410711100", password=f"li-{n}-pass", name=f"李{n}")
        for n in range(2)
    ]
    beijing = timezone(timedelta(hours=8))
    day = datetime.now(beijing).date() - timedelta(days=1)
    starts = datetime.combine(day, datetime.min.time(), beijing).replace(hour=14)
    created = gateway.post(
        "/api/v1/activities",
        json={
            "title": "书法练习",
            "kind": "activity",
            "category": "calligraphy_painting",
            "mode": "offline",
            "host_unit": village,
            "sessions": [
                {
                    "starts_at": starts.isoformat(),
                    "ends_at": (starts + timedelta(hours=2)).isoformat(),
                    "planned_minutes": 100,
                }
            ],
        },
        headers=bearer(admin),
    )
    assert created.status_code == 201, created.text
    activity = created.json()
    session_id = activity["sessions"][0]["id"]

    enrolled = gateway.post(
        f"/api/v1/activities/{activity['id']}/enrolments",
        json={"learner": residents[0]["account_number"]},
        headers=bearer(point),
    )
    assert enrolled.status_code == 201, enrolled.text
    assert enrolled.json()["learner_id"] == residents[0]["id"]

    sheet = _xlsx(
        [
            ["学习账号", "姓名", "签到时间", "签退时间", "学时(分钟)"],
            [residents[0]["account_number"], "李0", "14:05", "15:55", None],
            [residents[1]["account_number"], "李1", None, None, 60],
            ["41071100000000", "无名", None, None, None],
        ]
    )
    url = f"/api/v1/sessions/{session_id}/attendance/imports"
    files = {"file": ("书法签到表.xlsx", sheet, XLSX)}
    dry = gateway.post(url, files=files, headers=bearer(point))
    assert dry.status_code == 200, dry.text
    assert (dry.json()["dry_run"], dry.json()["created"]) == (True, 2)
    written = gateway.post(url, files=files, params={"dry_run": "false"}, headers=bearer(point))
    assert written.status_code == 200, written.text
    results = written.json()["results"]
    assert [(r["row"], r["status"], r["minutes"]) for r in results] == [
        (2, "created", 100),
        (3, "created", 60),
        (4, "rejected", None),
    ]
    assert results[2]["errors"][0]["reason_zh"] == "找不到该学习账号"
    again = gateway.post(url, files=files, params={"dry_run": "false"}, headers=bearer(point))
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "duplicate", "rejected"]
    assert gateway.post(url, files=files, headers=bearer(elsewhere)).status_code == 404
    resident = password_token(gateway, residents[0]["account_number"], "li-0-pass")
    assert (
        gateway.post(
            f"/api/v1/sessions/{session_id}/attendance",
            json={"entries": [{"learner": residents[0]["account_number"]}]},
            headers=bearer(resident),
        ).status_code
        == 403
    )
    too_big = gateway.post(
        url, files={"file": ("big.csv", b"x" * 6_100_000, "text/csv")}, headers=bearer(point)
    )
    assert too_big.status_code == 413 and too_big.json()["type"].endswith("/payload-too-large")

    pending = gateway.get(
        "/api/v1/learning-records",
        params={"activity": activity["id"], "status": "pending"},
        headers=bearer(school),
    ).json()["items"]
    assert {r["source"] for r in pending} == {"staff_entry"} and len(pending) == 2
    mine = next(r for r in pending if r["learner_id"] == residents[0]["id"])
    assert mine["evidence"]["file"] == "书法签到表.xlsx" and mine["evidence"]["row"] == 2
    assert gateway.get("/api/v1/me/hours", headers=bearer(resident)).json()["total_minutes"] == 0
    verified = gateway.post(
        f"/api/v1/learning-records/{mine['id']}/status",
        json={"status": "verified", "reason": "签到表核对无误"},
        headers=bearer(school),
    )
    assert verified.status_code == 200, verified.text
    assert gateway.get("/api/v1/me/hours", headers=bearer(resident)).json()["total_minutes"] == 100
    records = gateway.get("/api/v1/me/records", headers=bearer(resident)).json()["items"]
    assert [(r["source"], r["status"]) for r in records] == [("staff_entry", "verified")]


def test_an_xapi_statement_posted_twice_through_the_gateway_is_stored_once(
    gateway: httpx.Client,
) -> None:
    admin = password_token(gateway, DEMO_STAFF["username"], DEMO_STAFF["password"])
    client_id = f"xapi-{uuid.uuid4().hex[:6]}"
    partner = new_partner(gateway, admin, client_id)
    course = gateway.post(
        "/api/v1/activities",
        json={
            "title": "家庭教育微课",
            "kind": "online_course",
            "category": "family_education",
            "mode": "online",
            "partner": client_id,
        },
        headers=bearer(admin),
    ).json()["id"]
    account = new_resident(
        gateway, admin, town="410711101", password="wu-ma-ma-pass", name="吴妈妈"
    )
    ended = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    statement = {
        "id": str(uuid.uuid4()),
        "actor": {
            "objectType": "Agent",
            "account": {
                "homePage": "https://muye.example.org/learners",
                "name": account["account_number"],
            },
        },
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"zh-CN": "完成"}},
        "object": {"objectType": "Activity", "id": f"https://muye.example.org/activities/{course}"},
        "result": {"completion": True, "duration": "PT35M"},
        "timestamp": ended.isoformat(),
    }
    headers = bearer(partner) | {"X-Experience-API-Version": "1.0.3"}
    first = gateway.post("/api/v1/xapi/statements", json=statement, headers=headers)
    assert first.status_code == 200, first.text
    again = gateway.post("/api/v1/xapi/statements", json=[statement], headers=headers)
    assert again.status_code == 200, again.text
    assert (first.json()["created"], again.json()["duplicates"]) == (1, 1)
    assert again.json()["results"][0]["record_id"] == first.json()["results"][0]["record_id"]
    resident = password_token(gateway, account["account_number"], "wu-ma-ma-pass")
    mine = gateway.get("/api/v1/me/records", headers=bearer(resident)).json()["items"]
    assert [(r["source"], r["minutes"], r["status"]) for r in mine] == [("xapi", 35, "pending")]
    assert mine[0]["evidence"]["xapi_statement"]["id"] == statement["id"]
    assert (
        gateway.post("/api/v1/xapi/statements", json=statement, headers=bearer(admin)).status_code
        == 403
    )


def test_a_batch_over_the_item_limit_is_a_clear_problem_through_the_gateway(
    gateway: httpx.Client,
) -> None:
    admin = password_token(gateway, DEMO_STAFF["username"], DEMO_STAFF["password"])
    client_id = f"limit-{uuid.uuid4().hex[:6]}"
    partner = new_partner(gateway, admin, client_id)
    course = gateway.post(
        "/api/v1/activities",
        json={
            "title": "批量上限",
            "kind": "online_course",
            "category": "digital_skills",
            "mode": "online",
            "partner": client_id,
        },
        headers=bearer(admin),
    ).json()["id"]
    account = new_resident(gateway, admin, town="410711100", password="batch-limit-pass")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    records = [
        {
            "id": f"{client_id}-{n}",
            "learner": account["account_number"],
            "activity": course,
            "start": (start + timedelta(hours=n)).isoformat(),
            "end": (start + timedelta(hours=n, minutes=30)).isoformat(),
            "minutes": 30,
        }
        for n in range(1001)
    ]
    # 1,001 records are well under the gateway's byte cap: the service counts them
    refused = gateway.post(
        "/api/v1/learning-records:batch", json={"records": records}, headers=bearer(partner)
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["type"].endswith("/batch-too-large")
    assert (problem["max_items"], problem["items"]) == (1000, 1001)
    assert "smaller batches" in problem["detail"] and "分批" in problem["detail_zh"]
    resident = password_token(gateway, account["account_number"], "batch-limit-pass")
    assert gateway.get("/api/v1/me/records", headers=bearer(resident)).json()["items"] == []
    # the same 1,000 go through
    taken = gateway.post(
        "/api/v1/learning-records:batch", json={"records": records[:1000]}, headers=bearer(partner)
    )
    assert taken.status_code == 200 and taken.json()["created"] == 1000, taken.text
    # a body over the route's byte cap never reaches the service: 413 from the gateway
    padded = [{**records[0], "evidence": {"note": "x" * 4000}}] * 1000
    too_big = gateway.post(
        "/api/v1/learning-records:batch", json={"records": padded}, headers=bearer(partner)
    )
    assert too_big.status_code == 413
    assert too_big.json()["type"].endswith("/payload-too-large")
    assert too_big.json()["limit_bytes"] == 4_000_000

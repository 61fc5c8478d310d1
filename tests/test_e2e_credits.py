"""Learning gets into the bank end to end: an activity, enrolment, a QR check-in and check-out,
and the resident's learning record, all through the gateway on PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from accounts.cli import DEMO_STAFF
from testkit.http import bearer, new_partner, new_resident, password_token


def test_activity_to_learning_record_through_the_gateway(gateway: httpx.Client) -> None:
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
    record = gateway.post(
        f"/api/v1/sessions/{session_id}/check-out",
        json={"code": code["code"]},
        headers=bearer(resident),
    )
    assert record.status_code == 200, record.text
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

    stack.stop(only=("credits",))
    try:
        partial = gateway.get("/api/v1/me/portfolio", headers=bearer(resident)).json()
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
    for answer in (partial, staff_partial):
        assert answer["complete"] is False
        assert set(answer["missing"]) == credits_parts
        assert all(answer[part] is None for part in credits_parts)
        assert answer["profile"]["id"] == account["id"]
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

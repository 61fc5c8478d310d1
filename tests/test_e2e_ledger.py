"""From learning to credits to a conversion, end to end through the gateway on real processes
and PostgreSQL: partner hours are settled by the credits service's own outbox worker, a staff
review settles at once, the college approves a conversion once, and the whole ledger reconciles."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from accounts.cli import DEMO_STAFF
from testkit.http import bearer, new_resident, online_hours, password_token, settled_credits


def test_verified_learning_becomes_credits_and_an_approved_conversion(
    gateway: httpx.Client,
) -> None:
    admin = password_token(gateway, DEMO_STAFF["username"], DEMO_STAFF["password"])
    account = new_resident(gateway, admin, town="410711101", password="li-xiao-mei-pass")
    resident = password_token(gateway, account["account_number"], "li-xiao-mei-pass")
    posted = online_hours(gateway, admin, str(account["account_number"]))
    # partner hours count on arrival (the default rules ask no verification of them): the
    # worker settles them; 8 x 240 online minutes at 900 minutes a credit = 2.13 credits
    credits = settled_credits(gateway, resident)
    assert credits["settlement_pending"] is False
    assert credits["total_hundredths"] == 8 * 240 * 100 // 900
    # a staff review settles in the same transaction: voiding one takes back what it earned
    results: Any = posted["results"]
    first_record = results[0]["record_id"]
    voided = gateway.post(
        f"/api/v1/learning-records/{first_record}/status",
        json={"status": "voided", "reason": "平台回报重复"},
        headers=bearer(admin),
    )
    assert voided.status_code == 200, voided.text
    after_void = gateway.get("/api/v1/me/credits", headers=bearer(resident)).json()
    assert after_void["total_hundredths"] == 7 * 240 * 100 // 900  # 186
    history = gateway.get("/api/v1/me/credit-history", headers=bearer(resident)).json()["items"]
    # the voided record's credits go back; rounding on the running total may move a
    # hundredth between the others, so this is an adjustment netting to the difference
    assert history[0]["net_hundredths"] == 186 - 213
    taken = [s for s in history[0]["sources"] if s["key"] == f"hours:{first_record}"]
    assert [s["amount_hundredths"] for s in taken] == [-26]
    assert taken[0]["record_ids"] == [first_record]
    accrual = history[-1]
    assert accrual["kind"] == "accrual"
    assert sorted(s["record_ids"][0] for s in accrual["sources"]) == sorted(
        r["record_id"] for r in results
    )
    assert {s["rule_version_id"] for s in accrual["sources"]} == {
        gateway.get("/api/v1/rule-versions").json()[0]["id"]
    }

    # the resident applies; the college approves once, whatever the retries
    applied = gateway.post(
        "/api/v1/conversions",
        json={"target": "vocational_training_hours", "units": 1},
        headers=bearer(resident),
    )
    assert applied.status_code == 201, applied.text
    decision = f"/api/v1/conversions/{applied.json()['id']}/decision"
    body = {"decision": "approve", "reason": "学分满足要求"}
    key = {"Idempotency-Key": f"approve-{uuid.uuid4().hex}"}
    approved = gateway.post(decision, json=body, headers=bearer(admin) | key)
    assert approved.status_code == 200, approved.text
    assert approved.json()["debits"] == {"employment": 100}
    again = gateway.post(decision, json=body, headers=bearer(admin) | key)
    assert again.headers["Idempotent-Replay"] == "true"
    assert again.json()["transaction_id"] == approved.json()["transaction_id"]
    final = gateway.get("/api/v1/me/credits", headers=bearer(resident)).json()
    assert final["total_hundredths"] == 186 - 100
    # and the resident cannot approve their own conversion
    assert gateway.post(decision, json=body, headers=bearer(resident) | key).status_code == 403

    # the auditors' reconciliation of the whole database is empty
    report = gateway.get("/api/v1/ledger/reconciliation", headers=bearer(admin))
    assert report.status_code == 200, report.text
    assert report.json()["discrepancies"] == []
    assert report.json()["healthy"] is True

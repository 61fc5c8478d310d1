"""The audit trails end to end through the gateway on real processes and PostgreSQL: changes in
both services are chained, an auditor verifies and lists each trail, a resident is refused,
and the auditor's own queries are in the trail."""

from __future__ import annotations

import uuid

import httpx

from accounts.cli import DEMO_STAFF
from testkit.http import bearer, new_resident, password_token


def _auditor(gateway: httpx.Client, admin: str) -> str:
    username = f"auditor-{uuid.uuid4().hex[:6]}"
    created = gateway.post(
        "/api/v1/staff",
        json={
            "username": username,
            "display_name": "县学院审计",
            "password": "audit-trail-pass",
            "role": "auditor",
            "unit": "410711",
        },
        headers=bearer(admin),
    )
    assert created.status_code == 201, created.text
    return password_token(gateway, username, "audit-trail-pass")


def test_an_auditor_verifies_and_lists_both_trails_and_a_resident_cannot(
    gateway: httpx.Client,
) -> None:
    admin = password_token(gateway, DEMO_STAFF["username"], DEMO_STAFF["password"])
    auditor = _auditor(gateway, admin)
    account = new_resident(gateway, admin, town="410711101", password="zhao-audit-pass")
    resident = password_token(gateway, account["account_number"], "zhao-audit-pass")
    refused = gateway.post(
        "/auth/token",
        data={"grant_type": "password", "username": "admin", "password": "not-the-password"},
    )
    assert refused.status_code == 400
    applied = gateway.post(
        "/api/v1/conversions",
        json={"target": "vocational_training_hours", "units": 1},
        headers=bearer(resident),
    )
    assert applied.status_code in (201, 409, 422), applied.text  # audited only when it happens

    for service in ("accounts", "credits"):
        base = f"/api/v1/audit/{service}"
        for path in (f"{base}/entries", f"{base}/verify"):
            denied = gateway.get(path, headers=bearer(resident))
            assert denied.status_code == 403, denied.text
            assert denied.headers["content-type"].startswith("application/problem+json")
        assert gateway.get(f"{base}/verify").status_code == 401

        verified = gateway.get(f"{base}/verify", headers=bearer(auditor))
        assert verified.status_code == 200, verified.text
        result = verified.json()
        assert result["ok"] is True and result["first_break"] is None, result
        assert result["head"]["seq"] >= result["entries_checked"] >= 1

        listed = gateway.get(f"{base}/entries", params={"limit": 100}, headers=bearer(auditor))
        assert listed.status_code == 200, listed.text
        entries = listed.json()["items"]
        # the verification just made is in the trail, by this auditor, after what it checked
        # (other work, such as the settlement worker's, may have been chained in between)
        mine = [e for e in entries if e["action"] == "audit.verify"]
        assert mine and mine[0]["actor_role"] == "auditor"
        assert mine[0]["seq"] > result["head"]["seq"]
        seqs = [e["seq"] for e in entries]
        assert seqs == sorted(seqs, reverse=True)
        assert all(e["prev_hash"] == n["hash"] for e, n in zip(entries, entries[1:], strict=False))

    accounts_trail = gateway.get(
        "/api/v1/audit/accounts/entries",
        params={"action": "sign_in.failed", "limit": 10},
        headers=bearer(auditor),
    ).json()["items"]
    assert any(e["target_type"] == "staff_user" for e in accounts_trail)
    created = gateway.get(
        "/api/v1/audit/accounts/entries",
        params={"target_id": account["id"]},
        headers=bearer(auditor),
    ).json()["items"]
    assert "learning_account.create" in {e["action"] for e in created}
    listings = gateway.get(
        "/api/v1/audit/credits/entries",
        params={"action": "audit.list", "limit": 5},
        headers=bearer(auditor),
    ).json()["items"]
    assert listings and listings[0]["actor_role"] == "auditor"

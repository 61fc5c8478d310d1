"""The credit audit (学分审计) end to end through the gateway on real processes and PostgreSQL:
an auditor follows a credit to its rule version, the partner's records and their ids, draws a
seeded sample of the town as a workbook, reconciles the town; residents and town staff are
refused with a problem."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from openpyxl import load_workbook

from accounts.cli import DEMO_STAFF
from testkit.http import bearer, new_partner, new_resident, password_token, settled_credits

TOWN = "410711101"
CHINA_OFFSET = timedelta(hours=8)


def _staff(gateway: httpx.Client, admin: str, role: str, unit: str) -> str:
    username = f"a-{role[:10]}-{uuid.uuid4().hex[:6]}"
    created = gateway.post(
        "/api/v1/staff",
        json={
            "username": username,
            "display_name": role,
            "password": "credit-audit-pass",
            "role": role,
            "unit": unit,
        },
        headers=bearer(admin),
    )
    assert created.status_code == 201, created.text
    return password_token(gateway, username, "credit-audit-pass")


def _town_hours(gateway: httpx.Client, admin: str, account_number: str) -> tuple[str, list[Any]]:
    """A partner's online course hosted by the town; two stretches of 240 minutes posted."""
    client_id = f"audit-{uuid.uuid4().hex[:6]}"
    partner = new_partner(gateway, admin, client_id)
    course = gateway.post(
        "/api/v1/activities",
        json={
            "title": "农村电商实务（线上）",
            "kind": "online_course",
            "category": "employment",
            "mode": "online",
            "host_unit": TOWN,
            "partner": client_id,
        },
        headers=bearer(admin),
    )
    assert course.status_code == 201, course.text
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=6)
    posted = gateway.post(
        "/api/v1/learning-records:batch",
        json={
            "records": [
                {
                    "id": f"{client_id}-{day}",
                    "learner": account_number,
                    "activity": course.json()["id"],
                    "start": (start + timedelta(days=day)).isoformat(),
                    "end": (start + timedelta(days=day, minutes=240)).isoformat(),
                    "minutes": 240,
                }
                for day in range(2)
            ]
        },
        headers=bearer(partner),
    )
    assert posted.status_code == 200 and posted.json()["created"] == 2, posted.text
    return client_id, list(posted.json()["results"])


def test_an_auditor_follows_a_credit_to_its_evidence_and_others_are_refused(
    gateway: httpx.Client,
) -> None:
    admin = password_token(gateway, DEMO_STAFF["username"], DEMO_STAFF["password"])
    account = new_resident(gateway, admin, town=TOWN, password="sun-gui-lan-pass")
    resident = password_token(gateway, account["account_number"], "sun-gui-lan-pass")
    client_id, results = _town_hours(gateway, admin, str(account["account_number"]))
    credits = settled_credits(gateway, resident)
    assert credits["total_hundredths"] == 2 * 240 * 100 // 900  # 0.53, rounded down
    (accrual,) = gateway.get("/api/v1/me/credit-history", headers=bearer(resident)).json()["items"]
    auditor = _staff(gateway, admin, "auditor", "410711")
    town_staff = _staff(gateway, admin, "school_staff", TOWN)

    chain = gateway.get(f"/api/v1/credit-audits/entries/{accrual['id']}", headers=bearer(auditor))
    assert chain.status_code == 200, chain.text
    entry = chain.json()
    assert entry["learner_id"] == account["id"] and entry["net_hundredths"] == 53
    rules = gateway.get("/api/v1/rule-versions").json()[0]
    records = {r["record_id"]: r["id"] for r in results}
    assert sorted(line["record_ids"][0] for line in entry["lines"]) == sorted(records)
    for line in entry["lines"]:
        assert line["clause"] == "hours.online"
        assert line["rule_version"]["id"] == rules["id"]
        assert line["rule_version"]["digest"] == rules["digest"]
        (record,) = line["records"]
        assert record["minutes"] == 240 and record["host_unit_path"].endswith(f"/{TOWN}/")
        source = record["source"]
        assert (source["kind"], source["partner_client"]) == ("partner", client_id)
        assert source["partner_record_id"] == records[record["id"]]

    # a seeded sample of the town, as a workbook: the same seed, the same learners
    today = (datetime.now(UTC) + CHINA_OFFSET).date()
    params = {
        "unit": TOWN,
        "from": str(today - timedelta(days=1)),
        "to": str(today + timedelta(days=1)),
        "size": 200,
        "seed": 20261125,
    }
    sample = gateway.get("/api/v1/credit-audits/sample", params=params, headers=bearer(auditor))
    assert sample.status_code == 200, sample.text
    assert account["id"] in {s["learner_id"] for s in sample.json()["learners"]}
    again = gateway.get("/api/v1/credit-audits/sample", params=params, headers=bearer(auditor))
    assert again.json() == sample.json()
    book = gateway.get(
        "/api/v1/credit-audits/sample", params=params | {"format": "xlsx"}, headers=bearer(auditor)
    )
    assert book.status_code == 200, book.text
    assert "filename*=UTF-8''" in book.headers["content-disposition"]
    workbook = load_workbook(io.BytesIO(book.content), read_only=True)
    assert workbook.sheetnames == ["样本", "账目", "规则", "学习记录", "来源"]
    entries = list(workbook["账目"].iter_rows(values_only=True))
    assert entries[0][0] == "账目编号"
    assert accrual["id"] in {row[0] for row in entries[1:]}
    sources = list(workbook["来源"].iter_rows(values_only=True))
    ours = {row[2]: row for row in sources[1:] if row[0] == accrual["id"]}
    assert set(ours) == set(records)
    assert {row[sources[0].index("平台记录号")] for row in ours.values()} == set(records.values())

    # the town's reconciliation: this learner's credits add up
    report = gateway.get(f"/api/v1/credit-audits/reconciliation/{TOWN}", headers=bearer(auditor))
    assert report.status_code == 200, report.text
    assert report.json()["learners_checked"] >= 1
    assert not [d for d in report.json()["discrepancies"] if account["id"] in d["subject"]]

    # every one of these queries is in the credits service's audit trail, with its auditor
    trail = gateway.get(
        "/api/v1/audit/credits/entries",
        params={"target_id": TOWN, "limit": 100},
        headers=bearer(auditor),
    ).json()["items"]
    actions = [e["action"] for e in trail if e["actor_role"] == "auditor"]
    assert actions.count("credit_audit.sample") == 2
    assert actions.count("credit_audit.export") == 1
    assert actions.count("credit_audit.reconciliation") == 1
    followed = gateway.get(
        "/api/v1/audit/credits/entries",
        params={"action": "credit_audit.entry", "target_id": str(accrual["id"])},
        headers=bearer(auditor),
    ).json()["items"]
    assert len(followed) == 1 and followed[0]["outcome"] == "ok"
    assert gateway.get("/api/v1/audit/credits/verify", headers=bearer(auditor)).json()["ok"]

    # residents and town staff are refused, with a problem
    for token in (resident, town_staff):
        for path in (
            f"/api/v1/credit-audits/entries/{accrual['id']}",
            f"/api/v1/credit-audits/reconciliation/{TOWN}",
            "/api/v1/credit-audits/sample",
        ):
            refused = gateway.get(path, params=params, headers=bearer(token))
            assert refused.status_code == 403, (path, refused.text)
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["type"].endswith("/forbidden")
    # (the gateway refuses those by role); an auditor of another town passes the gateway and is
    # refused by credits, and that refusal is audited as the answered queries are
    elsewhere = _staff(gateway, admin, "auditor", "410711100")
    for path in (f"/api/v1/credit-audits/reconciliation/{TOWN}", "/api/v1/credit-audits/sample"):
        out_of_scope = gateway.get(path, params=params, headers=bearer(elsewhere))
        assert out_of_scope.status_code == 403, (path, out_of_scope.text)
        assert out_of_scope.json()["type"].endswith("/unit-out-of-scope")
    refusals = gateway.get(
        "/api/v1/audit/credits/entries",
        params={"target_id": TOWN, "limit": 100},
        headers=bearer(auditor),
    ).json()["items"]
    assert sorted(
        (e["action"], e["outcome"], bool(e["reason"]))
        for e in refusals
        if e["actor_unit"] == "410711100" and e["action"].startswith("credit_audit.")
    ) == [
        ("credit_audit.reconciliation", "refused", True),
        ("credit_audit.sample", "refused", True),
    ]
    assert gateway.get("/api/v1/audit/credits/verify", headers=bearer(auditor)).json()["ok"]

"""The credit audit (学分审计) on PostgreSQL and SQLite: a hand-checked evidence chain for every
kind of source, reproducible samples scoped to a unit, the workbook read back, and the ledger's
reconciliation for a unit, clean and then tampered with."""

from __future__ import annotations

import csv
import hashlib
import io
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import event, select, text
from sqlmodel import col

from credits.audit.models import AuditEntry
from credits.credit_audit import export, service
from credits.ledger import settlement
from credits.ledger.models import CreditPosting, LedgerAccount
from credits.records.models import Attendance, LearningRecord
from credits.rules.engine import CHINA
from credits.rules.service import published
from testkit.http import bearer

from .conftest import LEARNER_HOMES, new_learner

TOWN = "410711102"  # only these tests use it (conftest)
TOWN_PATH = "/410711/410711102/"
OTHER_TOWN = "410711101"
PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _period() -> dict[str, str]:
    """Yesterday to tomorrow in Beijing days: today's entries, whenever the test runs."""
    today = datetime.now(CHINA).date()
    return {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1))}


def _beijing_morning(days_ago: int) -> datetime:
    day = datetime.now(CHINA).date() - timedelta(days=days_ago)
    return datetime.combine(day, datetime.min.time(), CHINA).replace(hour=9)


async def _post(client, url: str, token: str, **kwargs: Any) -> Any:  # type: ignore[no-untyped-def]
    response = await client.post(url, headers=bearer(token) | kwargs.pop("headers", {}), **kwargs)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def _arrange_every_source(client, db, issue_token) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """One learner of the town with a credit from each kind of source, a certification with
    its evidence file, and a conversion; returns what the chain must show."""
    college = issue_token("staff", role="college_staff", unit="410711")
    entering_staff = str(uuid.uuid4())
    point_staff = issue_token(
        "staff", role="learning_point_staff", unit=TOWN, subject=entering_staff
    )
    verifying_staff = str(uuid.uuid4())
    school = issue_token("staff", role="school_staff", unit=TOWN, subject=verifying_staff)
    number, learner = new_learner()
    resident = issue_token("resident", subject=str(learner), unit=TOWN)

    # an offline lecture in the town: two mornings, 09:00-11:00 Beijing time
    lecture = await _post(
        client,
        "/api/v1/activities",
        college,
        json={
            "title": "防诈骗讲座",
            "kind": "lecture",
            "category": "safety_anti_fraud",
            "mode": "offline",
            "host_unit": TOWN,
            "sessions": [
                {
                    "starts_at": _beijing_morning(d).isoformat(),
                    "ends_at": (_beijing_morning(d) + timedelta(hours=2)).isoformat(),
                    "planned_minutes": 90,
                    "place": "村委会会议室",
                }
                for d in (2, 1)
            ],
        },
    )
    scanned_session, entered_session = (uuid.UUID(s["id"]) for s in lecture["sessions"])
    # a QR check-in and check-out two days ago, as check_out writes it (a code is only valid
    # during the session): 120 minutes
    attendance = Attendance(
        session_id=scanned_session,
        learner_id=learner,
        checked_in_at=_beijing_morning(2).astimezone(UTC),
        checked_out_at=(_beijing_morning(2) + timedelta(hours=2)).astimezone(UTC),
    )
    db.add(attendance)
    await db.flush()
    check_in = LearningRecord(
        learner_id=learner,
        activity_id=uuid.UUID(lecture["id"]),
        session_id=scanned_session,
        category_code="safety_anti_fraud",
        mode="offline",
        host_unit_path=TOWN_PATH,
        source="check_in",
        started_at=_beijing_morning(2).astimezone(UTC),
        ended_at=(_beijing_morning(2) + timedelta(hours=2)).astimezone(UTC),
        minutes=120,
        evidence={
            "attendance_id": str(attendance.id),
            "checked_in_at": _beijing_morning(2).isoformat(),
        },
        status="verified",
        status_changed_by="system:check-in",
    )
    db.add(check_in)
    await db.flush()
    attendance.record_id = check_in.id
    await db.commit()
    # staff enter yesterday's session: the planned 90 minutes, pending until verified
    entered = await _post(
        client,
        f"/api/v1/sessions/{entered_session}/attendance",
        point_staff,
        json={"entries": [{"learner": number}]},
    )
    staff_record = entered["results"][0]["record_id"]

    # a partner platform's online course in the town: 60 minutes by batch, 45 by xAPI
    partner_client = f"mooc-{uuid.uuid4().hex[:6]}"
    partner = issue_token("partner", client_id=partner_client)
    course = await _post(
        client,
        "/api/v1/activities",
        college,
        json={
            "title": "智能手机课（线上）",
            "kind": "online_course",
            "category": "digital_skills",
            "mode": "online",
            "host_unit": TOWN,
            "partner": partner_client,
        },
    )
    started = _beijing_morning(4)
    posted = await _post(
        client,
        "/api/v1/learning-records:batch",
        partner,
        json={
            "records": [
                {
                    "id": "lesson-7",
                    "learner": number,
                    "activity": course["id"],
                    "start": started.isoformat(),
                    "end": (started + timedelta(minutes=60)).isoformat(),
                    "minutes": 60,
                }
            ]
        },
    )
    partner_record = posted["results"][0]["record_id"]
    statement_id = str(uuid.uuid4())
    xapi = await _post(
        client,
        "/api/v1/xapi/statements",
        partner,
        json={
            "id": statement_id,
            "actor": {
                "objectType": "Agent",
                "account": {"homePage": "https://muye.example.org/learners", "name": number},
            },
            "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
            "object": {
                "objectType": "Activity",
                "id": f"https://muye.example.org/activities/{course['id']}",
            },
            "result": {"duration": "PT45M"},
            "timestamp": _beijing_morning(3).isoformat(),
        },
    )
    xapi_record = xapi["results"][0]["record_id"]
    # the ledger's worker would do this: one accrual for the check-in and the platform's hours
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    # the school verifies the staff entry: its own accrual, in the same transaction
    await _post(
        client,
        f"/api/v1/learning-records/{staff_record}/status",
        school,
        json={"status": "verified", "reason": "核对签到表"},
    )

    # a vocational certificate with its evidence file, approved by the college
    cert = await _post(
        client,
        "/api/v1/certifications",
        resident,
        json={
            "outcome_type": "vocational_qualification",
            "level": "4",
            "title": "中式烹调师（四级）",
            "issuer": "新乡市人力资源和社会保障局",
            "issued_on": "2026-06-30",
        },
    )
    await _post(
        client,
        f"/api/v1/certifications/{cert['id']}/evidence",
        resident,
        files={"file": ("证书.pdf", PDF, "application/pdf")},
    )
    approved = await _post(
        client,
        f"/api/v1/certifications/{cert['id']}/review",
        college,
        json={"decision": "approve", "reason": "证书真实有效"},
    )
    # and a conversion of one credit of it into vocational training hours
    applied = await _post(
        client,
        "/api/v1/conversions",
        resident,
        json={"target": "vocational_training_hours", "units": 1},
    )
    college_id = str(uuid.uuid4())
    decider = issue_token("staff", role="college_staff", unit="410711", subject=college_id)
    converted = await _post(
        client,
        f"/api/v1/conversions/{applied['id']}/decision",
        decider,
        json={"decision": "approve", "reason": "符合转换条件"},
        headers={"Idempotency-Key": f"k-{uuid.uuid4().hex}"},
    )
    return {
        "learner": learner,
        "entering_staff": entering_staff,
        "verifying_staff": verifying_staff,
        "college_id": college_id,
        "attendance": attendance.id,
        "sessions": (scanned_session, entered_session),
        "records": {
            "check_in": check_in.id,
            "staff_entry": staff_record,
            "partner": partner_record,
            "xapi": xapi_record,
        },
        "partner_client": partner_client,
        "statement_id": statement_id,
        "certification": cert["id"],
        "certification_entry": approved["transaction_id"],
        "conversion": applied["id"],
        "conversion_entry": converted["transaction_id"],
    }


def _auditor(issue_token, unit: str = "410711") -> str:  # type: ignore[no-untyped-def]
    return str(issue_token("staff", role="auditor", unit=unit))


async def _sample(client, token: str, **params: Any):  # type: ignore[no-untyped-def]
    return await client.get(
        "/api/v1/credit-audits/sample",
        params={"unit": TOWN, **_period(), **params},
        headers=bearer(token),
    )


async def test_every_credit_traces_to_its_rule_version_records_and_sources(
    session_client, issue_token
) -> None:
    client, db = session_client
    known = await _arrange_every_source(client, db, issue_token)
    (rules,) = await published(db)
    auditor = _auditor(issue_token)
    response = await _sample(client, auditor, size=5, seed=1)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["population"] == 1 and body["seed"] == 1
    (sampled,) = body["learners"]
    assert sampled["learner_id"] == str(known["learner"])
    # check-in 120 min -> 0.20; platform 60 + 45 online min -> 0.06 + 0.05 (rounded down on the
    # running total, 900 min a credit); staff entry 90 min -> 0.15; certificate 4.00; spent 1.00
    assert sampled["net_hundredths"] == 20 + 6 + 5 + 15 + 400 - 100
    by_kind = {(e["kind"], tuple(s["key"] for s in e["lines"])): e for e in sampled["entries"]}
    records = known["records"]
    accrual = by_kind[
        (
            "accrual",
            tuple(f"hours:{records[k]}" for k in ("partner", "xapi", "check_in")),
        )
    ]
    verified = by_kind[("accrual", (f"hours:{records['staff_entry']}",))]
    lines = {line["key"]: line for line in accrual["lines"] + verified["lines"]}
    amounts = {k: lines[f"hours:{records[k]}"]["amount_hundredths"] for k in records}
    assert amounts == {"check_in": 20, "staff_entry": 15, "partner": 6, "xapi": 5}
    for line in lines.values():
        assert line["rule_version"]["id"] == rules.id
        assert line["rule_version"]["digest"] == rules.digest
        assert line["rule_version"]["code"] == "muye-default"
        (record,) = line["records"]
        assert [record["id"]] == line["record_ids"]
        assert record["host_unit_path"] == TOWN_PATH
    scanned, entered = known["sessions"]
    source = lines[f"hours:{records['check_in']}"]["records"][0]["source"]
    assert source["kind"] == "check_in" and source["attendance_id"] == str(known["attendance"])
    assert source["session_id"] == str(scanned) and source["session_place"] == "村委会会议室"
    assert source["verified_by"] == "system:check-in"
    staff_line = lines[f"hours:{records['staff_entry']}"]
    assert staff_line["clause"] == "hours.offline" and staff_line["records"][0]["minutes"] == 90
    source = staff_line["records"][0]["source"]
    assert (source["kind"], source["session_id"]) == ("staff_entry", str(entered))
    assert source["entered_by"] == known["entering_staff"] and source["entered_via"] == "json"
    assert source["verified_by"] == known["verifying_staff"]
    source = lines[f"hours:{records['partner']}"]["records"][0]["source"]
    assert (source["kind"], source["partner_client"], source["partner_record_id"]) == (
        "partner",
        known["partner_client"],
        "lesson-7",
    )
    source = lines[f"hours:{records['xapi']}"]["records"][0]["source"]
    assert (source["kind"], source["xapi_statement_id"]) == ("xapi", known["statement_id"])
    assert source["partner_client"] == known["partner_client"]

    certified = next(e for e in sampled["entries"] if e["kind"] == "certification")
    assert certified["id"] == known["certification_entry"]
    (line,) = certified["lines"]
    assert line["amount_hundredths"] == 400 and line["records"] == []
    certification = line["certification"]
    assert certification["id"] == known["certification"]
    assert certification["status"] == "approved" and certification["hundredths"] == 400
    (document,) = certification["documents"]
    assert document["original_name"] == "证书.pdf"
    assert document["sha256"] == hashlib.sha256(PDF).hexdigest()
    converted = next(e for e in sampled["entries"] if e["kind"] == "conversion")
    assert converted["id"] == known["conversion_entry"] and converted["net_hundredths"] == -100
    conversion = converted["conversion"]
    assert conversion["id"] == known["conversion"] and conversion["status"] == "approved"
    assert conversion["decided_by"] == known["college_id"]
    assert conversion["decision_reason"] == "符合转换条件"
    assert conversion["debits"] == {"vocational_skills": 100}

    # one entry's chain alone is the same chain
    one = await client.get(
        f"/api/v1/credit-audits/entries/{verified['id']}", headers=bearer(auditor)
    )
    assert one.status_code == 200, one.text
    assert one.json() == verified


async def test_only_auditors_of_the_unit_may_audit_it(session_client, issue_token) -> None:
    client, db = session_client
    known = await _arrange_every_source(client, db, issue_token)
    entry = f"/api/v1/credit-audits/entries/{known['certification_entry']}"
    town_auditor = _auditor(issue_token, TOWN)
    assert (await _sample(client, town_auditor)).status_code == 200
    assert (await client.get(entry, headers=bearer(town_auditor))).status_code == 200
    elsewhere = _auditor(issue_token, OTHER_TOWN)
    refused = await _sample(client, elsewhere)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"].endswith("/unit-out-of-scope")
    assert refused.json()["detail_zh"] == "该单位不在您的审计范围内。"
    missing = await client.get(entry, headers=bearer(elsewhere))
    assert missing.status_code == 404 and missing.json()["type"].endswith("/not-found")
    # an auditor covering where the learner lives may follow the learner's entries (accounts says)
    LEARNER_HOMES[str(known["learner"])] = "/410711/410711101/410711101201/"
    assert (await client.get(entry, headers=bearer(elsewhere))).status_code == 200
    for token in (
        issue_token("resident", subject=str(known["learner"]), unit=TOWN),
        issue_token("staff", role="school_staff", unit=TOWN),
        issue_token("staff", role="college_staff", unit="410711"),
    ):
        for url in (entry, "/api/v1/credit-audits/reconciliation/410711102"):
            denied = await client.get(url, headers=bearer(token))
            assert denied.status_code == 403, url
            assert denied.json()["type"].endswith("/forbidden") and denied.json()["detail_zh"]
        assert (await _sample(client, token)).status_code == 403
    auditor = _auditor(issue_token)
    backwards = await _sample(client, auditor, **{"from": "2026-02-01", "to": "2026-01-31"})
    assert backwards.status_code == 422
    assert backwards.json()["type"].endswith("/invalid-audit-period")
    assert "结束日期" in backwards.json()["detail_zh"]
    unknown = await client.get(
        "/api/v1/credit-audits/reconciliation/999999", headers=bearer(auditor)
    )
    assert unknown.status_code == 404 and unknown.json()["type"].endswith("/unknown-unit")
    assert (await _sample(client, auditor, size=0)).status_code == 422
    assert (
        await client.get("/api/v1/credit-audits/entries/987654321", headers=bearer(auditor))
    ).status_code == 404
    # each refused or unanswered query is in the trail too, with who asked and why it failed
    refusals = (
        await db.execute(
            select(
                AuditEntry.action,
                AuditEntry.target_id,
                AuditEntry.actor_role,
                AuditEntry.actor_unit,
                AuditEntry.outcome,
                AuditEntry.reason,
            ).where(col(AuditEntry.outcome).in_(("refused", "not_found")))
        )
    ).all()
    found = {(a, t, role, unit, outcome) for a, t, role, unit, outcome, _ in refusals}
    number = str(known["certification_entry"])
    assert ("credit_audit.sample", TOWN, "auditor", OTHER_TOWN, "refused") in found
    assert ("credit_audit.entry", number, "auditor", OTHER_TOWN, "not_found") in found
    assert ("credit_audit.entry", number, "school_staff", TOWN, "refused") in found
    assert ("credit_audit.reconciliation", "410711102", "resident", TOWN, "refused") in found
    assert ("credit_audit.reconciliation", "999999", "auditor", "410711", "not_found") in found
    assert ("credit_audit.entry", "987654321", "auditor", "410711", "not_found") in found
    assert all(reason for *_, reason in refusals)
    # a malformed request (422) is not a query and leaves no entry
    assert not [
        r
        for r in refusals
        if r[0] == "credit_audit.sample" and r[2] == "auditor" and r[3] == "410711"
    ]


async def _settled_learners(db, factory, count: int, *, unit: str) -> list[uuid.UUID]:  # type: ignore[no-untyped-def]
    activity, _ = await factory.activity(unit=unit)
    learners = [uuid.uuid4() for _ in range(count)]
    for learner in learners:
        await factory.records(
            learner, activity, minutes=600, status="verified", host_path=f"/410711/{unit}/"
        )
    await settlement.settle(db, learners, actor="test")
    await db.commit()
    return learners


async def test_a_seed_draws_the_same_learners_of_the_unit_every_time(
    session_client, issue_token, factory
) -> None:
    _, db = session_client
    client = session_client[0]
    first_day = datetime.now(CHINA).date()
    town = await _settled_learners(db, factory, 7, unit=TOWN)
    elsewhere = await _settled_learners(db, factory, 2, unit=OTHER_TOWN)
    auditor = _auditor(issue_token)
    first = (await _sample(client, auditor, size=3, seed=11)).json()
    again = (await _sample(client, auditor, size=3, seed=11)).json()
    assert first == again
    assert first["population"] == 7 and first["seed"] == 11
    # ranks drawn by the seed over the population in learner order, nothing else
    ranks = sorted(random.Random(11).sample(range(7), 3))
    ordered = sorted(town, key=str)
    assert [s["learner_id"] for s in first["learners"]] == [str(ordered[r]) for r in ranks]
    for sampled in first["learners"]:
        (entry,) = sampled["entries"]
        assert entry["kind"] == "accrual" and entry["net_hundredths"] == 100
    drawn = (await _sample(client, auditor, size=3)).json()  # no seed: one is chosen, and said
    replay = (await _sample(client, auditor, size=3, seed=drawn["seed"])).json()
    assert replay["learners"] == drawn["learners"]
    everyone = (await _sample(client, auditor, size=50, seed=3)).json()
    assert sorted(s["learner_id"] for s in everyone["learners"]) == sorted(str(t) for t in town)
    district = (
        await client.get(
            "/api/v1/credit-audits/sample",
            params={"unit": "410711", **_period(), "size": 200, "seed": 3},
            headers=bearer(auditor),
        )
    ).json()
    seen = {s["learner_id"] for s in district["learners"]}
    assert {str(t) for t in town + elsewhere} <= seen
    past = (await _sample(client, auditor, **{"from": "2024-01-01", "to": "2024-12-31"})).json()
    assert past["population"] == 0 and past["learners"] == []
    # today alone, in Beijing days (unless midnight passed in Beijing during the test)
    today = datetime.now(CHINA).date()
    tomorrow = str(today + timedelta(days=1))
    alone = (await _sample(client, auditor, **{"from": str(today), "to": str(today)})).json()
    later = (await _sample(client, auditor, **{"from": tomorrow, "to": tomorrow})).json()
    if datetime.now(CHINA).date() == today == first_day:
        assert (alone["population"], later["population"]) == (7, 0)


async def test_a_sample_reads_the_same_number_of_statements_for_one_learner_or_many(
    session_client, issue_token, factory, credits_app
) -> None:
    client, db = session_client
    await _settled_learners(db, factory, 6, unit=TOWN)
    auditor = _auditor(issue_token)
    counted: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):  # not the test's savepoints
            counted.append(statement)

    engine = credits_app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        one = await _sample(client, auditor, size=1, seed=5)
        one_count = len(counted)
        counted.clear()
        six = await _sample(client, auditor, size=6, seed=5)
        six_count = len(counted)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(one.json()["learners"]) == 1 and len(six.json()["learners"]) == 6
    assert one_count == six_count <= 12


async def test_the_workbook_and_csv_read_back_with_every_link_of_the_chain(
    session_client, issue_token
) -> None:
    client, db = session_client
    known = await _arrange_every_source(client, db, issue_token)
    auditor = _auditor(issue_token)
    response = await _sample(client, auditor, size=5, seed=2, format="xlsx")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX
    period = _period()
    name = f"学分审计_{TOWN}_{period['from']}_{period['to']}.xlsx"
    assert name.encode("utf-8") in _unquoted(response.headers["content-disposition"])
    book = load_workbook(io.BytesIO(response.content), read_only=True)
    assert book.sheetnames == ["样本", "账目", "规则", "学习记录", "来源"]
    tables = {
        title: [list(row) for row in book[title].iter_rows(values_only=True)]
        for title in book.sheetnames
    }
    assert tuple(tables["样本"][0]) == export.SAMPLE_HEADERS
    assert tuple(tables["账目"][0]) == export.ENTRY_HEADERS
    assert tuple(tables["规则"][0]) == export.RULE_HEADERS
    assert tuple(tables["学习记录"][0]) == export.RECORD_HEADERS
    assert tuple(tables["来源"][0]) == export.SOURCE_HEADERS
    (learner,) = tables["样本"][1:]
    assert learner[1] == str(known["learner"]) and learner[2] == 4
    assert learner[3] == pytest.approx(3.46) and learner[7] == 2
    kinds = sorted(row[2] for row in tables["账目"][1:])
    assert kinds == ["学分积累", "学分积累", "学分转换", "认证学分"]
    conversion_row = next(r for r in tables["账目"][1:] if r[0] == known["conversion_entry"])
    assert conversion_row[4] == -1
    rules = {row[1]: row for row in tables["规则"][1:]}
    assert len(rules) == 5  # four records' hours and the certificate
    staff_rule = rules[f"hours:{known['records']['staff_entry']}"]
    assert (staff_rule[2], staff_rule[5], staff_rule[7]) == ("hours.offline", 0.15, "muye-default")
    assert rules[f"certification:{known['certification']}"][16] == known["certification"]
    records = {row[2]: row for row in tables["学习记录"][1:]}
    assert set(records) == set(known["records"].values())
    staff_record = records[known["records"]["staff_entry"]]
    assert (staff_record[12], staff_record[13], staff_record[14]) == (90, 1.5, "verified")
    column = {h: i for i, h in enumerate(export.SOURCE_HEADERS)}
    sources = {(row[1], row[2]): row for row in tables["来源"][1:]}
    entered = sources[("工作人员录入", known["records"]["staff_entry"])]
    assert entered[column["录入人"]] == known["entering_staff"]
    assert entered[column["核验人"]] == known["verifying_staff"]
    # entered just now, shown as every other time of the workbook: Beijing wall clock
    entered_at = entered[column["录入时间"]]
    assert isinstance(entered_at, datetime), entered_at
    assert abs(entered_at - datetime.now(CHINA).replace(tzinfo=None)) < timedelta(minutes=5)
    scanned = sources[("扫码签到", known["records"]["check_in"])]
    assert scanned[column["考勤ID"]] == str(known["attendance"])
    assert scanned[column["签到时间"]] == _beijing_morning(2).replace(tzinfo=None)
    partner = sources[("合作平台", known["records"]["partner"])]
    assert partner[column["平台记录号"]] == "lesson-7"
    assert (
        sources[("xAPI", known["records"]["xapi"])][column["xAPI语句ID"]] == known["statement_id"]
    )
    certified = sources[("学习成果认证", known["certification"])]
    assert certified[column["证据文件"]] == "证书.pdf"
    assert certified[column["证据SHA-256"]] == hashlib.sha256(PDF).hexdigest()
    converted = sources[("学分转换", known["conversion"])]
    assert converted[column["审核人"]] == known["college_id"]

    as_csv = await _sample(client, auditor, size=5, seed=2, format="csv")
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert tuple(rows[0]) == export.SOURCE_HEADERS
    assert len(rows) == len(tables["来源"])
    assert {(r[1], r[2]) for r in rows[1:]} == {(k, str(v)) for k, v in sources}


def _unquoted(disposition: str) -> bytes:
    from urllib.parse import unquote_to_bytes

    return unquote_to_bytes(disposition.split("filename*=UTF-8''", 1)[1])


async def test_a_units_reconciliation_is_clean_then_finds_a_tampered_posting(
    session_client, issue_token, factory
) -> None:
    client, db = session_client
    town = await _settled_learners(db, factory, 2, unit=TOWN)
    await _settled_learners(db, factory, 1, unit=OTHER_TOWN)
    auditor = _auditor(issue_token)
    url = f"/api/v1/credit-audits/reconciliation/{TOWN}"
    clean = await client.get(url, headers=bearer(auditor))
    assert clean.status_code == 200, clean.text
    assert clean.json()["healthy"] is True and clean.json()["discrepancies"] == []
    assert clean.json()["learners_checked"] == 2 and clean.json()["transactions_checked"] == 2
    posting = (
        await db.execute(
            select(CreditPosting)
            .join(LedgerAccount, LedgerAccount.id == CreditPosting.account_id)
            .where(LedgerAccount.learner_id == town[0])
        )
    ).scalar_one()
    # tamper as someone with direct database access would: around the append-only triggers
    postgresql = db.get_bind().dialect.name == "postgresql"
    if postgresql:
        await db.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        await db.execute(text("DROP TRIGGER credit_posting_no_update"))
    await db.execute(
        text("UPDATE credit_posting SET amount_hundredths = 70 WHERE id = :id"), {"id": posting.id}
    )
    if postgresql:
        await db.execute(text("SET LOCAL session_replication_role = origin"))
    await db.commit()
    found = (await client.get(url, headers=bearer(auditor))).json()
    assert found["healthy"] is False
    checks = {(d["check"], d["expected"], d["actual"]) for d in found["discrepancies"]}
    # the learner's leg credits 70 against the issuer's debit of 100, and the kept balance
    # (100) is not the sum of the account's postings (70)
    assert checks == {("unbalanced", 0, -30), ("balance", 70, 100)}
    assert f"learner:{town[0]}" in next(
        d["subject"] for d in found["discrepancies"] if d["check"] == "balance"
    )
    # the other town's reconciliation is not about this learner
    other = (
        await client.get(
            f"/api/v1/credit-audits/reconciliation/{OTHER_TOWN}", headers=bearer(auditor)
        )
    ).json()
    assert not [d for d in other["discrepancies"] if str(town[0]) in d["subject"]]
    assert other["learners_checked"] >= 1


def test_a_period_is_whole_beijing_days() -> None:
    since, until = service.period_bounds(date(2026, 1, 1), date(2026, 1, 31))
    assert since.astimezone(UTC) == datetime(2025, 12, 31, 16, tzinfo=UTC)
    assert until.astimezone(UTC) == datetime(2026, 1, 31, 16, tzinfo=UTC)


def test_credits_are_written_exactly() -> None:
    assert str(export.credits(346)) == "3.46" and str(export.credits(-100)) == "-1"
    assert export.credits(15) == export.credits(150) / 10


async def test_bad_periods_units_and_entry_ids_are_problems_not_500s(
    session_client, issue_token
) -> None:
    client, _ = session_client
    auditor = _auditor(issue_token)
    for first, last in (("0001-01-01", "2026-01-01"), ("2026-01-01", "9999-12-31")):
        response = await _sample(client, auditor, **{"from": first, "to": last})
        assert response.status_code == 422, (first, last, response.text)
        assert response.json()["type"].endswith("/invalid-audit-period")
    for unit in ("410711102/registrations", "410711102?x=1", "410711#"):
        response = await _sample(client, auditor, unit=unit)
        assert response.status_code == 422, (unit, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    for entry in (str(2**63), "99999999999999999999999", "0", "-1"):
        response = await client.get(
            f"/api/v1/credit-audits/entries/{entry}", headers=bearer(auditor)
        )
        assert response.status_code in (404, 422), (entry, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")

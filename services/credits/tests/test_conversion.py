"""Conversion on PostgreSQL and SQLite: apply, approve once (Idempotency-Key), refuse what
the balance or the limits do not allow, cancel with a reversal, write off what was spent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import update
from sqlmodel import col

from credits.conversion import service as conversions
from credits.conversion.models import Conversion, ConversionTarget
from credits.ledger import reconciliation, settlement
from credits.transcript import figures as transcript_figures
from testkit.http import bearer

from .conftest import UNIT_PATHS, audit_digests, state_digest


async def _with_credits(factory, db, learner: uuid.UUID, **by_category: int) -> None:  # type: ignore[no-untyped-def]
    """Give the learner verified learning worth ``hundredths`` per category (10 h = 100)."""
    for category, hundredths in by_category.items():
        activity, _ = await factory.activity(category=category)
        await factory.records(
            learner,
            activity,
            count=hundredths // 100,
            minutes=600,
            status="verified",
            category=category,
        )
    await settlement.settle(db, [learner], actor="test")
    await db.commit()


async def _apply(client, token: str, target: str, units: int = 1) -> dict:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/v1/conversions", json={"target": target, "units": units}, headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _decide(client, token: str, conversion: str, key: str | None, decision="approve"):  # type: ignore[no-untyped-def]
    headers = bearer(token) | ({"Idempotency-Key": key} if key else {})
    return await client.post(
        f"/api/v1/conversions/{conversion}/decision",
        json={"decision": decision, "reason": "符合转换条件"},
        headers=headers,
    )


async def _total(client, token: str) -> int:  # type: ignore[no-untyped-def]
    return int(
        (await client.get("/api/v1/me/credits", headers=bearer(token))).json()["total_hundredths"]
    )


async def _void(client, token: str, records: list[int]) -> None:  # type: ignore[no-untyped-def]
    """Void the records as their school would (settled in the same request)."""
    for record in records:
        voided = await client.post(
            f"/api/v1/learning-records/{record}/status",
            json={"status": "voided", "reason": "冒名签到"},
            headers=bearer(token),
        )
        assert voided.status_code == 200, voided.text


async def _verified(factory, db, learner: uuid.UUID, count: int) -> list[int]:  # type: ignore[no-untyped-def]
    """``count`` verified 10-hour law records of the learner (100 each), settled."""
    activity, _ = await factory.activity()
    records = await factory.records(learner, activity, count=count, minutes=600, status="verified")
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    return list(records)


async def test_approval_debits_once_and_a_replayed_key_changes_nothing(
    session_client, issue_token, factory
) -> None:
    client, db = session_client
    learner = uuid.uuid4()
    await _with_credits(factory, db, learner, law=300, health=200)
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    college = issue_token("staff", role="college_staff", unit="410711")
    applied = await _apply(client, resident, "ou_course_credit", units=2)
    assert applied["status"] == "applied" and await _total(client, resident) == 500
    missing_key = await _decide(client, college, applied["id"], None)
    assert missing_key.status_code == 428
    assert missing_key.json()["type"].endswith("/idempotency-key-required")
    first = await _decide(client, college, applied["id"], "approve-1")
    assert first.status_code == 200, first.text
    # 400 from any category, the largest balance first
    assert first.json()["debits"] == {"law": 300, "health": 100}
    assert await _total(client, resident) == 100
    replay = await _decide(client, college, applied["id"], "approve-1")
    assert replay.status_code == 200 and replay.headers["Idempotent-Replay"] == "true"
    assert replay.json()["transaction_id"] == first.json()["transaction_id"]
    assert await _total(client, resident) == 100
    other_key = await _decide(client, college, applied["id"], "approve-2")
    assert other_key.status_code == 409 and other_key.json()["reason"] == "not-pending"
    report = await reconciliation.reconcile(db, [learner])
    assert report.healthy, report.discrepancies


async def test_an_idempotency_key_of_the_longest_allowed_length_approves(
    session_client, issue_token, factory
) -> None:
    client, db = session_client
    learner = uuid.uuid4()
    await _with_credits(factory, db, learner, law=300)
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    college = issue_token("staff", role="college_staff", unit="410711")
    applied = await _apply(client, resident, "ou_course_credit")
    key = "k" * 200
    first = await _decide(client, college, applied["id"], key)
    assert first.status_code == 200, first.text
    replay = await _decide(client, college, applied["id"], key)
    assert replay.status_code == 200 and replay.headers["Idempotent-Replay"] == "true"
    assert await _total(client, resident) == 100
    too_long = await _decide(client, college, applied["id"], key + "k")
    assert too_long.status_code == 422
    assert too_long.headers["content-type"].startswith("application/problem+json")


async def test_a_short_balance_is_refused_and_the_application_stays_open(
    session_client, issue_token, factory
) -> None:
    client, db = session_client
    learner = uuid.uuid4()
    await _with_credits(factory, db, learner, law=100, health=300)
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    college = issue_token("staff", role="college_staff", unit="410711")
    # the certificate needs 3 credits from anything and 1 from civic morals, law or safety
    certificate = await _apply(client, resident, "completion_certificate")
    approved = await _decide(client, college, certificate["id"], "k-cert")
    assert approved.status_code == 200, approved.text
    assert approved.json()["debits"] == {"law": 100, "health": 300}
    second = await _apply(client, resident, "ou_course_credit")
    short = await _decide(client, college, second["id"], "k-ou")
    assert short.status_code == 409
    assert short.json()["type"].endswith("/insufficient-credits")
    assert short.json()["short_hundredths"] == 200
    assert "学分不足" in short.json()["detail_zh"]
    mine = (await client.get("/api/v1/me/conversions", headers=bearer(resident))).json()
    assert {c["id"]: c["status"] for c in mine}[second["id"]] == "applied"
    rejected = await _decide(client, college, second["id"], None, decision="reject")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"


async def test_yearly_limit_and_units_per_request(session_client, issue_token, factory) -> None:
    client, db = session_client
    learner = uuid.uuid4()
    await _with_credits(factory, db, learner, law=1000, health=1000)
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    college = issue_token("staff", role="college_staff", unit="410711")
    first = await _apply(client, resident, "completion_certificate")
    assert (await _decide(client, college, first["id"], "y-1")).status_code == 200
    second = await _apply(client, resident, "completion_certificate")
    limited = await _decide(client, college, second["id"], "y-2")
    assert limited.status_code == 409 and limited.json()["reason"] == "yearly-limit"
    too_many = await client.post(
        "/api/v1/conversions",
        json={"target": "ou_course_credit", "units": 6},
        headers=bearer(resident),
    )
    assert too_many.status_code == 409 and too_many.json()["reason"] == "too-many-units"
    unknown = await client.post(
        "/api/v1/conversions", json={"target": "moon_credit"}, headers=bearer(resident)
    )
    assert unknown.status_code == 409 and unknown.json()["reason"] == "unknown-target"
    sneaky = await client.post(
        "/api/v1/conversions",
        json={"target": "ou_course_credit", "status": "approved"},
        headers=bearer(resident),
    )
    assert sneaky.status_code == 422  # no mass assignment


async def test_the_yearly_limit_counts_the_first_hours_of_the_beijing_year(
    session_client, issue_token, factory
) -> None:
    # approved at 03:30 on New Year's Day in Beijing (19:30 UTC the day before): it is that
    # year's, on SQLite too, where a +08:00 bound's digits would be compared as UTC
    client, db = session_client
    learner = uuid.uuid4()
    await _with_credits(factory, db, learner, law=1000, health=1000)
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    college = issue_token("staff", role="college_staff", unit="410711")
    first = await _apply(client, resident, "completion_certificate")
    assert (await _decide(client, college, first["id"], "ny-1")).status_code == 200
    new_year = datetime(2026, 12, 31, 19, 30, tzinfo=UTC)
    await db.execute(
        update(Conversion)
        .where(col(Conversion.id) == uuid.UUID(first["id"]))
        .values(decided_at=new_year)
    )
    second = await _apply(client, resident, "completion_certificate")
    pending = await db.get(Conversion, uuid.UUID(second["id"]))
    assert pending is not None
    target = await db.get(ConversionTarget, "completion_certificate")
    assert target is not None and target.max_units_per_year == 1
    with pytest.raises(conversions.ConversionRefused) as refused:
        await conversions._check_limits(db, pending, target, datetime(2027, 3, 1, tzinfo=UTC))
    assert "1 units a year; 1 already" in str(refused.value)
    # and the year before does not count it
    await conversions._check_limits(db, pending, target, datetime(2026, 12, 31, 15, tzinfo=UTC))


async def test_cancelling_within_the_window_restores_the_credits(
    session_client, issue_token, factory
) -> None:
    client, db = session_client
    learner = uuid.uuid4()
    await _with_credits(factory, db, learner, law=300)
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    college = issue_token("staff", role="college_staff", unit="410711")
    applied = await _apply(client, resident, "ou_course_credit")
    approved = (await _decide(client, college, applied["id"], "c-1")).json()
    assert await _total(client, resident) == 100
    stranger = issue_token("resident", unit="410711100")
    url = f"/api/v1/conversions/{applied['id']}/cancel"
    assert (
        await client.post(url, json={"reason": "不要了"}, headers=bearer(stranger))
    ).status_code == 404
    cancelled = await client.post(url, json={"reason": "选错了课程"}, headers=bearer(resident))
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert await _total(client, resident) == 300
    reversal = await client.get(
        f"/api/v1/credit-transactions/{cancelled.json()['cancel_transaction_id']}",
        headers=bearer(resident),
    )
    assert reversal.json()["reverses_id"] == approved["transaction_id"]
    assert (
        reversal.json()["kind"] == "conversion_cancel" and reversal.json()["net_hundredths"] == 200
    )
    again = await client.post(url, json={"reason": "再撤一次"}, headers=bearer(resident))
    assert again.status_code == 409 and again.json()["reason"] == "not-approved"
    report = await reconciliation.reconcile(db, [learner])
    assert report.healthy, report.discrepancies
    # the trail has what the conversion was before each change, and what it became
    (decided,) = await audit_digests(db, "conversion.decide", applied["id"])
    assert decided[0] == state_digest({"status": "applied"})
    assert decided[1] is not None and decided[1] != decided[0]
    (undone,) = await audit_digests(db, "conversion.cancel", applied["id"])
    assert undone == (
        state_digest({"status": "approved"}),
        state_digest({"status": "cancelled", "reason": "选错了课程"}),
    )


async def test_voiding_spent_credits_writes_off_the_rest_and_never_overdraws(
    session_client, issue_token, factory
) -> None:
    client, db = session_client
    learner = uuid.uuid4()
    records = await _verified(factory, db, learner, 2)
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    college = issue_token("staff", role="college_staff", unit="410711")
    applied = await _apply(client, resident, "ou_course_credit")
    assert (await _decide(client, college, applied["id"], "w-1")).status_code == 200
    assert await _total(client, resident) == 0
    await _void(client, issue_token("staff", role="school_staff", unit="410711100"), records[:1])
    assert await _total(client, resident) == 0  # never below zero
    history = (await client.get("/api/v1/me/credit-history", headers=bearer(resident))).json()
    reversal = history["items"][0]
    legs = {(p["account_kind"], p["side"], p["amount_hundredths"]) for p in reversal["postings"]}
    assert legs == {("writeoff", "debit", 100), ("issuing", "credit", 100)}
    report = await reconciliation.reconcile(db, [learner])
    assert report.healthy, report.discrepancies


async def test_cancelling_after_its_records_were_voided_gives_back_only_what_stands(
    session_client, issue_token, factory
) -> None:
    # 300 earned, 200 converted, then two of the three records voided: 100 taken back from
    # the balance, 100 written off. Undoing the conversion gives back what the last record
    # still backs (100), and the 100 written off goes back to the write-off account: a
    # cancellation must not turn voided learning into credits to spend again.
    client, db = session_client
    learner = uuid.uuid4()
    records = await _verified(factory, db, learner, 3)
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    college = issue_token("staff", role="college_staff", unit="410711")
    school = issue_token("staff", role="school_staff", unit="410711100")
    applied = await _apply(client, resident, "ou_course_credit")
    assert (await _decide(client, college, applied["id"], "v-1")).status_code == 200
    assert await _total(client, resident) == 100
    await _void(client, school, records[:2])
    assert await _total(client, resident) == 0
    cancelled = await client.post(
        f"/api/v1/conversions/{applied['id']}/cancel",
        json={"reason": "选错了课程"},
        headers=bearer(resident),
    )
    assert cancelled.status_code == 200, cancelled.text
    assert await _total(client, resident) == 100
    reversal = await client.get(
        f"/api/v1/credit-transactions/{cancelled.json()['cancel_transaction_id']}",
        headers=bearer(resident),
    )
    legs = {
        (p["account_kind"], p["side"], p["amount_hundredths"]) for p in reversal.json()["postings"]
    }
    assert legs == {
        ("learner", "credit", 100),
        ("writeoff", "credit", 100),
        ("conversion", "debit", 200),
    }
    # the e-portfolio's figures still add up: nothing converted, nothing written off
    figures = await transcript_figures.gather(db, learner)
    assert (figures.earned, figures.converted, figures.written_off, figures.held) == (
        100,
        0,
        0,
        100,
    )
    report = await reconciliation.reconcile(db, [learner])
    assert report.healthy, report.discrepancies
    # and the 200 the voided records were worth cannot be converted again
    again = await _apply(client, resident, "ou_course_credit")
    short = await _decide(client, college, again["id"], "v-2")
    assert short.status_code == 409 and short.json()["short_hundredths"] == 100


async def test_a_cancellation_first_makes_good_an_earlier_write_off(
    session_client, issue_token, factory
) -> None:
    # X spends 200, its records are voided (200 written off); new learning earns 200 and Y
    # spends it. Undoing Y leaves 200 earned and X's 200 converted: the learner may hold
    # nothing, so the 200 goes to the write-off account, not to the learner a second time.
    client, db = session_client
    learner = uuid.uuid4()
    early = await _verified(factory, db, learner, 2)
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    college = issue_token("staff", role="college_staff", unit="410711")
    school = issue_token("staff", role="school_staff", unit="410711100")
    x = await _apply(client, resident, "ou_course_credit")
    assert (await _decide(client, college, x["id"], "x-1")).status_code == 200
    await _void(client, school, early)
    await _with_credits(factory, db, learner, law=200)
    assert await _total(client, resident) == 200
    y = await _apply(client, resident, "ou_course_credit")
    assert (await _decide(client, college, y["id"], "y-1")).status_code == 200
    cancelled = await client.post(
        f"/api/v1/conversions/{y['id']}/cancel",
        json={"reason": "选错了课程"},
        headers=bearer(resident),
    )
    assert cancelled.status_code == 200, cancelled.text
    assert await _total(client, resident) == 0
    figures = await transcript_figures.gather(db, learner)
    assert (figures.earned, figures.converted, figures.written_off, figures.held) == (
        200,
        200,
        0,
        0,
    )
    report = await reconciliation.reconcile(db, [learner])
    assert report.healthy, report.discrepancies


async def test_only_the_college_decides(session_client, issue_token, factory) -> None:
    client, db = session_client
    learner = uuid.uuid4()
    await _with_credits(factory, db, learner, law=300)
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    applied = await _apply(client, resident, "ou_course_credit")
    for token in (
        resident,
        issue_token("staff", role="school_staff", unit="410711100"),
        issue_token("staff", role="auditor", unit="410711"),
    ):
        response = await _decide(client, token, applied["id"], "nope")
        assert response.status_code == 403, response.text
    other_district = issue_token("staff", role="college_staff", unit="410711101")
    assert UNIT_PATHS["410711101"] != UNIT_PATHS["410711100"]
    assert (await _decide(client, other_district, applied["id"], "nope")).status_code == 404
    listed = await client.get(
        "/api/v1/conversions",
        params={"status": "applied", "learner": str(learner)},
        headers=bearer(issue_token("staff", role="auditor", unit="410711")),
    )
    assert [c["id"] for c in listed.json()["items"]] == [applied["id"]]

"""Expiry against take-backs and write-offs, on PostgreSQL and SQLite.

- A record voided after its credits expired takes them back from what expired, not from the
  learner's credits still good (the excess expiry is reversed).
- Credits held after a write-off expire like any other (first earned, first spent on the
  balance, not on the conversions that stand).
- An expiry run that posts may not be dated after today (Beijing time).
- An expiry reversal cites the run that expired what it gives back, one reversal per run, and
  never gives back more than that run expired (reconciliation checks it).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, text

from credits.ledger import expiry, holdings, reconciliation, settlement
from credits.ledger.models import CreditPosting, LedgerAccount, LedgerTransaction
from credits.records.models import LearningRecord
from credits.transcript import figures
from testkit.http import bearer

OLD = datetime(2023, 5, 1, 1, tzinfo=UTC)  # expires on 2029-01-01 (five full years)
NEW = datetime(2026, 3, 2, 1, tzinfo=UTC)  # good through 2031


@pytest.fixture
def today(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Set the day expiry runs take for today (they may not be dated after it)."""

    def on(day: date) -> None:
        monkeypatch.setattr(expiry, "beijing_today", lambda: day)

    return on


async def _total(client, token: str) -> int:  # type: ignore[no-untyped-def]
    response = await client.get("/api/v1/me/credits", headers=bearer(token))
    assert response.status_code == 200, response.text
    return int(response.json()["total_hundredths"])


async def _expire(  # type: ignore[no-untyped-def]
    client, college: str, learner: uuid.UUID, day: str, *, dry_run: bool = False
) -> int:
    """What an expiry run of ``day`` expires of the learner's credits (tests that commit
    leave other learners' credits behind)."""
    response = await client.post(
        "/api/v1/ledger/expiry-runs",
        json={"as_of": day, "dry_run": dry_run},
        headers=bearer(college),
    )
    assert response.status_code == 200, response.text
    return sum(
        line["hundredths"]
        for line in response.json()["lines"]
        if line["learner_id"] == str(learner)
    )


async def _void(client, school: str, record: int) -> None:  # type: ignore[no-untyped-def]
    voided = await client.post(
        f"/api/v1/learning-records/{record}/status",
        json={"status": "voided", "reason": "冒名签到"},
        headers=bearer(school),
    )
    assert voided.status_code == 200, voided.text


async def _sinks(db, learner: uuid.UUID) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Credits minus debits of the learner's transactions on each system account."""
    rows = await db.execute(
        select(LedgerAccount.kind, CreditPosting.side, CreditPosting.amount_hundredths)
        .join(LedgerAccount, LedgerAccount.id == CreditPosting.account_id)
        .join(LedgerTransaction, LedgerTransaction.id == CreditPosting.transaction_id)
        .where(LedgerTransaction.learner_id == learner, LedgerAccount.learner_id.is_(None))  # type: ignore[union-attr]
    )
    sums: dict[str, int] = {}
    for kind, side, amount in rows.all():
        sums[kind] = sums.get(kind, 0) + (amount if side == "credit" else -amount)
    return sums


async def _healthy(db, learner: uuid.UUID) -> None:  # type: ignore[no-untyped-def]
    report = await reconciliation.reconcile(db, [learner])
    assert report.healthy, report.discrepancies
    # the transcript's identity: held = earned + written off - converted - expired
    shown = await figures.gather(db, learner)
    assert shown.held == shown.earned + shown.written_off - shown.converted - shown.expired


async def test_voiding_an_expired_record_keeps_the_credits_still_good(
    session_client, issue_token, factory, today
) -> None:
    client, db = session_client
    learner = uuid.uuid4()
    activity, _ = await factory.activity()
    (old,) = await factory.records(learner, activity, minutes=600, status="verified", start=OLD)
    await factory.records(learner, activity, minutes=600, status="verified", start=NEW)
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    resident = issue_token("resident", subject=str(learner))
    college = issue_token("staff", role="college_staff", unit="410711")
    school = issue_token("staff", role="school_staff", unit="410711100")
    today(date(2029, 1, 1))
    assert await _expire(client, college, learner, "2029-01-01") == 100  # the 2023 credit
    assert await _total(client, resident) == 100
    # the 2023 record was false: its credit is gone already, to the expiry account
    await _void(client, school, old)
    # had it never existed nothing would have expired, and the 2026 credit is still held
    assert await _total(client, resident) == 100
    assert await holdings.expired(db, [learner]) == {(learner, "law"): 0}
    assert await _sinks(db, learner) == {"issuing": -100, "expiry": 0}  # nothing written off
    reversed_expiry = (
        await db.execute(
            select(LedgerTransaction).where(
                LedgerTransaction.learner_id == learner,
                LedgerTransaction.kind == "expiry",
                LedgerTransaction.reverses_id.is_not(None),  # type: ignore[union-attr]
            )
        )
    ).scalar_one()
    first_expiry = await db.get(LedgerTransaction, reversed_expiry.reverses_id)
    assert first_expiry is not None and first_expiry.reference == "expiry:2029-01-01"
    await _healthy(db, learner)
    # settled again: nothing more moves; the 2026 credit expires when its time comes
    assert (await settlement.settle(db, [learner], actor="test")).transactions == 0
    today(date(2032, 1, 1))
    assert await _expire(client, college, learner, "2031-12-31") == 0
    assert await _expire(client, college, learner, "2032-01-01") == 100
    assert await _total(client, resident) == 0
    await _healthy(db, learner)


async def test_voiding_a_record_still_good_takes_from_the_balance_not_from_expiry(
    session_client, issue_token, factory, today
) -> None:
    client, db = session_client
    learner = uuid.uuid4()
    activity, _ = await factory.activity()
    await factory.records(learner, activity, minutes=600, status="verified", start=OLD)
    (new,) = await factory.records(learner, activity, minutes=600, status="verified", start=NEW)
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    resident = issue_token("resident", subject=str(learner))
    college = issue_token("staff", role="college_staff", unit="410711")
    today(date(2029, 1, 1))
    assert await _expire(client, college, learner, "2029-01-01") == 100
    # the 2026 record was false: the 2023 credit expired rightly and stays expired
    await _void(client, issue_token("staff", role="school_staff", unit="410711100"), new)
    assert await _total(client, resident) == 0
    assert await holdings.expired(db, [learner]) == {(learner, "law"): 100}
    await _healthy(db, learner)


async def test_an_expired_record_replaced_in_one_settlement_gives_the_new_credits(
    session_client, issue_token, factory, today
) -> None:
    client, db = session_client
    learner = uuid.uuid4()
    activity, _ = await factory.activity()
    (old,) = await factory.records(learner, activity, minutes=600, status="verified", start=OLD)
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    resident = issue_token("resident", subject=str(learner))
    college = issue_token("staff", role="college_staff", unit="410711")
    today(date(2029, 1, 1))
    assert await _expire(client, college, learner, "2029-01-01") == 100
    assert await _total(client, resident) == 0
    # the 2023 record is voided and a 2026 one comes in, settled together: the law
    # category's net is nil, yet the learner holds the 2026 credit
    record = await db.get(LearningRecord, old)
    assert record is not None
    record.status = "voided"
    await db.flush()
    await factory.records(learner, activity, minutes=600, status="verified", start=NEW)
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    assert await _total(client, resident) == 100
    await _healthy(db, learner)


async def test_a_take_back_comes_out_of_expiry_before_a_write_off(
    session_client, issue_token, factory, today
) -> None:
    """Three 2023 credits, two converted, one expired; one 2023 record was false. Without it
    the conversion would stand and nothing would have expired: the expiry is reversed, and
    nothing is written off."""
    client, db = session_client
    learner = uuid.uuid4()
    activity, _ = await factory.activity()
    false, *_ = await factory.records(
        learner, activity, count=3, minutes=600, status="verified", start=OLD
    )
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    college = issue_token("staff", role="college_staff", unit="410711")
    applied = await client.post(
        "/api/v1/conversions",
        json={"target": "ou_course_credit", "units": 1},  # 200
        headers=bearer(resident),
    )
    assert applied.status_code == 201, applied.text
    approved = await client.post(
        f"/api/v1/conversions/{applied.json()['id']}/decision",
        json={"decision": "approve", "reason": "符合转换条件"},
        headers=bearer(college) | {"Idempotency-Key": f"ev-{learner}"},
    )
    assert approved.status_code == 200, approved.text
    assert await _total(client, resident) == 100
    today(date(2029, 1, 1))
    assert await _expire(client, college, learner, "2029-01-01") == 100
    await _void(client, issue_token("staff", role="school_staff", unit="410711100"), false)
    assert await _total(client, resident) == 0
    assert await holdings.expired(db, [learner]) == {(learner, "law"): 0}
    assert (await _sinks(db, learner)).get("writeoff", 0) == 0
    await _healthy(db, learner)


async def test_an_old_credit_recorded_after_the_run_is_taken_from_the_balance(
    session_client, issue_token, factory, today
) -> None:
    """A 2023 credit expired; another 2023 record, entered after the run, is found false
    before the next run: its credit is still held, so it is taken from the balance and the
    first expiry stands."""
    client, db = session_client
    learner = uuid.uuid4()
    activity, _ = await factory.activity()
    await factory.records(learner, activity, minutes=600, status="verified", start=OLD)
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    resident = issue_token("resident", subject=str(learner))
    college = issue_token("staff", role="college_staff", unit="410711")
    today(date(2029, 1, 1))
    assert await _expire(client, college, learner, "2029-01-01") == 100
    (late,) = await factory.records(
        learner, activity, minutes=600, status="verified", start=OLD + timedelta(days=1)
    )
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    assert await _total(client, resident) == 100
    await _void(client, issue_token("staff", role="school_staff", unit="410711100"), late)
    assert await _total(client, resident) == 0
    assert await holdings.expired(db, [learner]) == {(learner, "law"): 100}
    await _healthy(db, learner)


async def test_credits_held_after_a_write_off_expire_like_any_other(
    session_client, issue_token, factory, today
) -> None:
    client, db = session_client
    learner = uuid.uuid4()
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    college = issue_token("staff", role="college_staff", unit="410711")
    school = issue_token("staff", role="school_staff", unit="410711100")
    activity, _ = await factory.activity()
    false = await factory.records(
        learner, activity, count=2, minutes=600, status="verified", start=OLD
    )
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    applied = await client.post(
        "/api/v1/conversions",
        json={"target": "ou_course_credit", "units": 1},
        headers=bearer(resident),
    )
    assert applied.status_code == 201, applied.text
    approved = await client.post(
        f"/api/v1/conversions/{applied.json()['id']}/decision",
        json={"decision": "approve", "reason": "符合转换条件"},
        headers=bearer(college) | {"Idempotency-Key": f"wo-{learner}"},
    )
    assert approved.status_code == 200, approved.text
    for record in false:  # the 2023 records were false: what the conversion spent is written off
        await _void(client, school, record)
    assert await _total(client, resident) == 0
    assert (await _sinks(db, learner)).get("writeoff", 0) < 0
    # real learning of 2024, recorded late, never spent
    await factory.records(
        learner,
        activity,
        count=2,
        minutes=600,
        status="verified",
        start=datetime(2024, 5, 1, 1, tzinfo=UTC),
    )
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    assert await _total(client, resident) == 200
    # 2024 credits are spendable through 2029: on 2030-01-01 all 200 are due
    assert await _expire(client, college, learner, "2029-12-31", dry_run=True) == 0
    assert await _expire(client, college, learner, "2030-01-01", dry_run=True) == 200
    today(date(2030, 1, 1))
    assert await _expire(client, college, learner, "2030-01-01") == 200
    assert await _total(client, resident) == 0
    await _healthy(db, learner)


Y2024 = datetime(2024, 5, 1, 1, tzinfo=UTC)  # expires on 2030-01-01


async def _reversals(db, learner: uuid.UUID) -> list[tuple[str, int, int]]:  # type: ignore[no-untyped-def]
    """The learner's expiry reversals, in order: the run each cites (its reference), what the
    reversal gave back and what that run expired."""

    async def debited(tid: int) -> int:
        return int(
            (
                await db.execute(
                    select(CreditPosting.amount_hundredths).where(
                        CreditPosting.transaction_id == tid, CreditPosting.side == "debit"
                    )
                )
            ).scalar_one()
        )

    found = []
    for reversal in (
        await db.execute(
            select(LedgerTransaction)
            .where(
                LedgerTransaction.learner_id == learner,
                LedgerTransaction.kind == "expiry",
                LedgerTransaction.reverses_id.is_not(None),  # type: ignore[union-attr]
            )
            .order_by(LedgerTransaction.id)  # type: ignore[arg-type]
        )
    ).scalars():
        run = await db.get(LedgerTransaction, reversal.reverses_id)
        assert run is not None and run.id is not None and reversal.id is not None
        found.append((str(run.reference), await debited(reversal.id), await debited(run.id)))
    return found


async def _two_runs(client, issue_token, factory, today, db, learner):  # type: ignore[no-untyped-def]
    """Two 2023 credits, expired on 2029-01-01, and a 2024 credit, expired on 2030-01-01."""
    activity, _ = await factory.activity()
    old = await factory.records(
        learner, activity, count=2, minutes=600, status="verified", start=OLD
    )
    (new,) = await factory.records(learner, activity, minutes=600, status="verified", start=Y2024)
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    college = issue_token("staff", role="college_staff", unit="410711")
    today(date(2029, 1, 1))
    assert await _expire(client, college, learner, "2029-01-01") == 200
    today(date(2030, 1, 1))
    assert await _expire(client, college, learner, "2030-01-01") == 100
    return old, new


async def _void_together(db, learner: uuid.UUID, records: list[int]) -> None:  # type: ignore[no-untyped-def]
    """Void ``records`` and settle them in one settlement."""
    for record in records:
        found = await db.get(LearningRecord, record)
        assert found is not None
        found.status = "voided"
    await db.flush()
    await settlement.settle(db, [learner], actor="test")
    await db.commit()


async def test_an_expiry_reversal_cites_the_run_that_expired_what_it_gives_back(
    session_client, issue_token, factory, today
) -> None:
    """Both 2023 records are false: the 2 credits given back were expired by the 2029 run,
    not by the learner's last run (2030), which expired 1."""
    client, db = session_client
    learner = uuid.uuid4()
    old, _ = await _two_runs(client, issue_token, factory, today, db, learner)
    await _void_together(db, learner, old)
    assert await _reversals(db, learner) == [("expiry:2029-01-01", 200, 200)]
    assert await holdings.expired(db, [learner]) == {(learner, "law"): 100}
    assert await _sinks(db, learner) == {"issuing": -100, "expiry": 100}  # nothing written off
    await _healthy(db, learner)


async def test_a_take_back_of_years_two_runs_expired_reverses_each_run(
    session_client, issue_token, factory, today
) -> None:
    """A 2023 and the 2024 record are false, settled together: one reversal per run, each
    citing its own; the other 2023 record found false later reverses what the 2029 run has
    left to give back."""
    client, db = session_client
    learner = uuid.uuid4()
    (first, second), new = await _two_runs(client, issue_token, factory, today, db, learner)
    await _void_together(db, learner, [first, new])
    assert await _reversals(db, learner) == [
        ("expiry:2029-01-01", 100, 200),
        ("expiry:2030-01-01", 100, 100),
    ]
    assert await holdings.expired(db, [learner]) == {(learner, "law"): 100}
    await _healthy(db, learner)
    await _void(client, issue_token("staff", role="school_staff", unit="410711100"), second)
    assert await _reversals(db, learner) == [
        ("expiry:2029-01-01", 100, 200),
        ("expiry:2030-01-01", 100, 100),
        ("expiry:2029-01-01", 100, 200),
    ]
    assert await holdings.expired(db, [learner]) == {(learner, "law"): 0}
    assert (await _sinks(db, learner)).get("writeoff", 0) == 0
    await _healthy(db, learner)


async def test_reconciliation_finds_a_reversal_beyond_what_its_run_expired(
    session_client, issue_token, factory, today
) -> None:
    """The reversal of the 2029 run's 2 credits, altered in the database to cite the 2030 run
    (which expired 1): every posting still balances, and the new check says so."""
    client, db = session_client
    learner = uuid.uuid4()
    old, _ = await _two_runs(client, issue_token, factory, today, db, learner)
    await _void_together(db, learner, old)
    reversals = (
        (
            await db.execute(
                select(LedgerTransaction).where(
                    LedgerTransaction.learner_id == learner,
                    LedgerTransaction.kind == "expiry",
                )
            )
        )
        .scalars()
        .all()
    )
    (reversal,) = [t for t in reversals if t.reverses_id is not None]
    (later,) = [t for t in reversals if t.reference == "expiry:2030-01-01"]
    await _healthy(db, learner)
    # tamper as someone with direct database access would: around the append-only triggers
    postgresql = db.get_bind().dialect.name == "postgresql"
    if postgresql:
        await db.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        await db.execute(text("DROP TRIGGER ledger_transaction_no_update"))
    await db.execute(
        text("UPDATE ledger_transaction SET reverses_id = :run WHERE id = :id"),
        {"run": later.id, "id": reversal.id},
    )
    if postgresql:
        await db.execute(text("SET LOCAL session_replication_role = origin"))
    await db.commit()
    report = await reconciliation.reconcile(db, [learner])
    assert not report.healthy
    assert [(d.check, d.expected, d.actual) for d in report.discrepancies] == [
        ("expiry_reversal", 100, 200)
    ]
    assert report.discrepancies[0].subject.startswith(f"transaction:{later.id} ")


async def test_an_expiry_run_after_today_is_refused(session_client, issue_token, factory) -> None:
    client, db = session_client
    learner = uuid.uuid4()
    activity, _ = await factory.activity()
    await factory.records(learner, activity, minutes=600, status="verified", start=OLD)
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    college = issue_token("staff", role="college_staff", unit="410711")
    resident = issue_token("resident", subject=str(learner))
    tomorrow = expiry.beijing_today() + timedelta(days=1)
    for day in (tomorrow, tomorrow.replace(year=tomorrow.year + 20)):
        refused = await client.post(
            "/api/v1/ledger/expiry-runs",
            json={"as_of": day.isoformat(), "dry_run": False},
            headers=bearer(college),
        )
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["type"].endswith("/expiry-in-the-future")
        assert "today" in problem["detail"] and "今天" in problem["detail_zh"]
        assert await _total(client, resident) == 100  # nothing expired
    # a dry run may look ahead: it lists what will expire and posts nothing
    ahead = tomorrow.replace(year=max(tomorrow.year, 2029) + 1, month=1, day=1)
    assert await _expire(client, college, learner, ahead.isoformat(), dry_run=True) == 100
    assert await _total(client, resident) == 100
    # today itself is allowed (nothing of 2023 is due yet under the default rules)
    assert await _expire(client, college, learner, expiry.beijing_today().isoformat()) == 0


def test_today_is_the_beijing_day() -> None:
    # 2026-12-31 16:00 UTC is midnight in Beijing: already 2027 there
    assert expiry.beijing_today(datetime(2026, 12, 31, 15, 59, tzinfo=UTC)) == date(2026, 12, 31)
    assert expiry.beijing_today(datetime(2026, 12, 31, 16, tzinfo=UTC)) == date(2027, 1, 1)

"""Reliability of the ledger under concurrency, on committed PostgreSQL transactions (the race
is the database's, so these tests do not run inside a rolled-back transaction)."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from credits.conversion.models import ConversionTarget
from credits.ledger import reconciliation, settlement
from credits.ledger import service as ledger
from credits.ledger.models import LedgerTransaction
from credits.records.models import LearningRecord
from testkit.http import bearer

PRICE = 10  # hundredths per unit of the test target


@pytest.fixture
async def committed(credits_app, credits_db):  # type: ignore[no-untyped-def]
    if not credits_db.startswith("postgresql"):
        pytest.skip("concurrency is PostgreSQL's: SQLite serialises every writer")
    transport = httpx.ASGITransport(app=credits_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://credits") as client:
        yield client, credits_app.state.sessionmaker


async def _target(maker) -> str:  # type: ignore[no-untyped-def]
    code = f"test-{uuid.uuid4().hex[:8]}"
    async with maker() as db, db.begin():
        db.add(
            ConversionTarget(
                code=code,
                name_zh="测试转换",
                name_en="Test target",
                unit_zh="单位",
                requirements=[{"hundredths": PRICE, "categories": None}],
                max_units_per_request=1,
                max_units_per_year=None,
            )
        )
    return code


async def _learner_with_balance(client, maker, issue_token, hundredths: int) -> uuid.UUID:  # type: ignore[no-untyped-def]
    """A learner whose verified offline law hours are worth exactly ``hundredths``."""
    staff = issue_token("staff", role="college_staff", unit="410711")
    activity = (
        await client.post(
            "/api/v1/activities",
            json={
                "title": "法律讲堂",
                "kind": "course",
                "category": "law",
                "mode": "offline",
                "host_unit": "410711100",
            },
            headers=bearer(staff),
        )
    ).json()["id"]
    learner = uuid.uuid4()
    minutes_left = hundredths * 6  # 600 minutes a credit: 6 minutes a hundredth
    day = datetime(2026, 2, 1, 1, tzinfo=UTC)
    async with maker() as db, db.begin():
        while minutes_left:
            minutes = min(600, minutes_left)
            db.add(
                LearningRecord(
                    learner_id=learner,
                    activity_id=uuid.UUID(activity),
                    category_code="law",
                    mode="offline",
                    host_unit_path="/410711/410711100/",
                    source="check_in",
                    started_at=day,
                    ended_at=day + timedelta(minutes=minutes),
                    minutes=minutes,
                    status="verified",
                    status_changed_by="test",
                )
            )
            minutes_left -= minutes
            day += timedelta(days=1)
    async with maker() as db, db.begin():
        await settlement.settle(db, [learner], actor="test")
    return learner


async def _balance(client, issue_token, learner: uuid.UUID) -> int:  # type: ignore[no-untyped-def]
    token = issue_token("resident", subject=str(learner), unit="410711100")
    return int(
        (await client.get("/api/v1/me/credits", headers=bearer(token))).json()["total_hundredths"]
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_concurrent_approvals_spend_exactly_what_the_balance_covers(
    committed, issue_token, seed: int
) -> None:
    client, maker = committed
    rnd = random.Random(seed)
    covered = rnd.randint(5, 60)
    leftover = rnd.randint(0, PRICE - 1)
    learner = await _learner_with_balance(client, maker, issue_token, covered * PRICE + leftover)
    target = await _target(maker)
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    applications = []
    for _ in range(200):
        response = await client.post(
            "/api/v1/conversions", json={"target": target}, headers=bearer(resident)
        )
        assert response.status_code == 201, response.text
        applications.append(response.json()["id"])
    college = issue_token("staff", role="college_staff", unit="410711")

    async def approve(conversion: str) -> httpx.Response:
        return await client.post(
            f"/api/v1/conversions/{conversion}/decision",
            json={"decision": "approve", "reason": "并发审批"},
            headers=bearer(college) | {"Idempotency-Key": f"k-{conversion}"},
        )

    answers = await asyncio.gather(*(approve(c) for c in applications))
    codes = sorted(a.status_code for a in answers)
    assert codes.count(200) == covered, [a.text for a in answers if a.status_code not in (200, 409)]
    assert codes.count(409) == 200 - covered
    assert all(
        a.json()["type"].endswith("/insufficient-credits") for a in answers if a.status_code == 409
    )
    assert await _balance(client, issue_token, learner) == leftover  # exact, never below zero
    async with maker() as db:
        report = await reconciliation.reconcile(db, [learner])
    assert report.healthy, report.discrepancies


async def test_one_idempotency_key_sent_fifty_times_at_once_posts_one_transaction(
    committed, issue_token
) -> None:
    client, maker = committed
    learner = await _learner_with_balance(client, maker, issue_token, 100)
    target = await _target(maker)
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    conversion = (
        await client.post("/api/v1/conversions", json={"target": target}, headers=bearer(resident))
    ).json()["id"]
    college = issue_token("staff", role="college_staff", unit="410711")
    key = {"Idempotency-Key": f"same-{uuid.uuid4().hex}"}
    answers = await asyncio.gather(
        *(
            client.post(
                f"/api/v1/conversions/{conversion}/decision",
                json={"decision": "approve", "reason": "重复提交"},
                headers=bearer(college) | key,
            )
            for _ in range(50)
        )
    )
    assert {a.status_code for a in answers} == {200}
    assert sum(a.headers.get("Idempotent-Replay") == "true" for a in answers) == 49
    assert len({a.json()["transaction_id"] for a in answers}) == 1
    async with maker() as db:
        posted = (
            await db.execute(
                select(func.count())
                .select_from(LedgerTransaction)
                .where(
                    LedgerTransaction.learner_id == learner,
                    LedgerTransaction.kind == "conversion",
                )
            )
        ).scalar_one()
    assert posted == 1
    assert await _balance(client, issue_token, learner) == 100 - PRICE


async def test_concurrent_settlements_of_one_learner_post_once(committed, issue_token) -> None:
    client, maker = committed
    learner = await _learner_with_balance(client, maker, issue_token, 0)
    staff = issue_token("staff", role="college_staff", unit="410711")
    activity = (
        await client.post(
            "/api/v1/activities",
            json={
                "title": "健康讲座",
                "kind": "lecture",
                "category": "health",
                "mode": "offline",
                "host_unit": "410711100",
            },
            headers=bearer(staff),
        )
    ).json()["id"]
    async with maker() as db, db.begin():
        for n in range(5):
            start = datetime(2026, 4, 1, 1, tzinfo=UTC) + timedelta(days=n)
            db.add(
                LearningRecord(
                    learner_id=learner,
                    activity_id=uuid.UUID(activity),
                    category_code="health",
                    mode="offline",
                    host_unit_path="/410711/410711100/",
                    source="check_in",
                    started_at=start,
                    ended_at=start + timedelta(hours=1),
                    minutes=60,
                    status="verified",
                    status_changed_by="test",
                )
            )

    async def settle_once() -> int:
        async with maker() as db, db.begin():
            return (await settlement.settle(db, [learner], actor="test")).transactions

    results = await asyncio.gather(*(settle_once() for _ in range(8)))
    assert sorted(results) == [0] * 7 + [1]  # the lock makes the others see the first's work
    assert await _balance(client, issue_token, learner) == 5 * 60 * 100 // 600


async def test_nothing_settles_while_a_rule_version_is_being_published(
    committed, issue_token
) -> None:
    # publishing holds the rule versions' lock exclusively to its commit: a settlement begun
    # meanwhile (a voided record, the outbox worker) waits, and then reads the versions as
    # the publication left them, instead of settling under the old ones a learner the
    # publication's own settlement never saw
    client, maker = committed
    learner = await _learner_with_balance(client, maker, issue_token, 100)
    async with maker() as db, db.begin():
        start = datetime(2026, 5, 4, 1, tzinfo=UTC)
        db.add(
            LearningRecord(
                learner_id=learner,
                activity_id=(
                    await db.execute(
                        select(LearningRecord.activity_id).where(
                            LearningRecord.learner_id == learner
                        )
                    )
                )
                .scalars()
                .first(),
                category_code="law",
                mode="offline",
                host_unit_path="/410711/410711100/",
                source="check_in",
                started_at=start,
                ended_at=start + timedelta(minutes=600),
                minutes=600,
                status="verified",
                status_changed_by="test",
            )
        )

    async def settle_one() -> int:
        async with maker() as db, db.begin():
            return (await settlement.settle(db, [learner], actor="test")).transactions

    async def work_the_outbox() -> list[uuid.UUID]:
        async with maker() as db, db.begin():
            return (await settlement.accrue_pending(db, learners_per_batch=1)).learners

    async with maker() as publishing:
        await ledger.lock_rules(publishing, exclusive=True)
        waiting = [asyncio.create_task(settle_one()), asyncio.create_task(work_the_outbox())]
        await asyncio.sleep(0.5)
        assert not any(task.done() for task in waiting)
        await publishing.rollback()
    settled, _ = await asyncio.wait_for(asyncio.gather(*waiting), timeout=30)
    assert settled in (0, 1)  # the worker may have settled the learner first
    assert await _balance(client, issue_token, learner) == 200

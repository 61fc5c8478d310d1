"""The credit ledger on PostgreSQL and SQLite: accrual with verification, reversal on voiding,
the outbox, rule corrections, expiry, reconciliation and the database's own guards."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from credits.ledger import expiry, reconciliation, settlement, worker
from credits.ledger.models import (
    CreditPosting,
    CreditSource,
    LedgerAccount,
    LedgerOutbox,
    LedgerTransaction,
)
from credits.rules.service import published
from testkit.http import bearer

from .conftest import LEARNER_HOMES, audit_digests, state_digest


def _dialect(db) -> str:  # type: ignore[no-untyped-def]
    return db.get_bind().dialect.name


async def _verify(client, token: str, record_id: int, status: str = "verified"):  # type: ignore[no-untyped-def]
    response = await client.post(
        f"/api/v1/learning-records/{record_id}/status",
        json={"status": status, "reason": "核对签到表"},
        headers=bearer(token),
    )
    assert response.status_code == 200, response.text
    return response


async def _credits(client, token: str) -> dict:  # type: ignore[no-untyped-def]
    response = await client.get("/api/v1/me/credits", headers=bearer(token))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_verifying_a_record_posts_its_credits_in_the_same_transaction(
    session_client, issue_token, factory
) -> None:
    client, db = session_client
    learner = uuid.uuid4()
    activity, _ = await factory.activity()
    (record,) = await factory.records(learner, activity, minutes=600)  # staff entry, pending
    resident = issue_token("resident", subject=str(learner))
    before = await _credits(client, resident)
    assert before["total_hundredths"] == 0  # staff entries wait for verification
    school = issue_token("staff", role="school_staff", unit="410711100")
    await _verify(client, school, record)
    after = await _credits(client, resident)
    assert after["total_hundredths"] == 100
    assert after["categories"] == [{"category": "law", "balance_hundredths": 100}]
    assert after["settlement_pending"] is False
    history = (await client.get("/api/v1/me/credit-history", headers=bearer(resident))).json()
    (entry,) = history["items"]
    assert entry["kind"] == "accrual" and entry["net_hundredths"] == 100
    (source,) = entry["sources"]
    (rules,) = await published(db)
    assert source["record_ids"] == [record]
    assert source["rule_version_id"] == rules.id
    assert source["clause"] == "hours.offline"
    legs = {(p["account_kind"], p["side"], p["amount_hundredths"]) for p in entry["postings"]}
    assert legs == {("learner", "credit", 100), ("issuing", "debit", 100)}


async def test_voiding_a_verified_record_reverses_what_it_earned(
    session_client, issue_token, factory
) -> None:
    client, _ = session_client
    learner = uuid.uuid4()
    activity, _ = await factory.activity()
    first, second = await factory.records(learner, activity, count=2, minutes=300)
    school = issue_token("staff", role="school_staff", unit="410711100")
    await _verify(client, school, first)
    await _verify(client, school, second)
    resident = issue_token("resident", subject=str(learner))
    assert (await _credits(client, resident))["total_hundredths"] == 100
    await _verify(client, school, first, status="voided")
    assert (await _credits(client, resident))["total_hundredths"] == 50
    latest = (await client.get("/api/v1/me/credit-history", headers=bearer(resident))).json()
    reversal = latest["items"][0]
    assert reversal["kind"] == "reversal" and reversal["net_hundredths"] == -50
    (taken_back,) = reversal["sources"]
    assert taken_back["record_ids"] == [first] and taken_back["amount_hundredths"] == -50
    # the reversal cites what the grant it takes back cited
    (grant,) = [
        source
        for entry in latest["items"][1:]
        for source in entry["sources"]
        if source["record_ids"] == [first]
    ]
    for cited in ("key", "clause", "category", "earned_on", "rule_version_id"):
        assert taken_back[cited] == grant[cited], cited


async def test_settling_twice_posts_nothing_the_second_time(session_client, factory) -> None:
    _, db = session_client
    learner = uuid.uuid4()
    activity, _ = await factory.activity(mode="online", partner="edu-platform")
    await factory.records(learner, activity, count=3, minutes=180, source="partner", mode="online")
    # other tests may leave unsettled records of their own learners: look at ours only
    assert learner in await settlement.queued_learners(db, 100_000)
    first = await settlement.settle(db, [learner], actor="test")
    assert first.transactions == 1 and first.records == 3
    again = await settlement.settle(db, [learner], actor="test")
    assert again.transactions == 0
    assert learner not in await settlement.queued_learners(db, 100_000)
    sources = (
        await db.execute(
            select(func.sum(CreditSource.amount_hundredths)).where(
                CreditSource.learner_id == learner
            )
        )
    ).scalar_one()
    assert sources == 3 * (180 * 100 // 900)


async def _draft_offline_at_five_hours(client, db, college: str, since: str):  # type: ignore[no-untyped-def]
    """A draft of the default rules from ``since`` with 5 offline hours a credit (not 10)."""
    (default,) = await published(db)
    body = dict(default.body)
    body["minutes_per_credit"] = {"offline": 300, "online": 900, "blended": 720}
    return await client.post(
        "/api/v1/rule-versions",
        json={
            "code": "muye-default",
            "title": f"{since} 起修订：线下 5 学时 1 学分",
            "effective_from": since,
            "body": body,
        },
        headers=bearer(college),
    )


async def test_rule_correction_dry_run_lists_changes_and_applying_cites_the_new_version(
    session_client, issue_token, factory
) -> None:
    client, db = session_client
    learners = [uuid.uuid4(), uuid.uuid4()]
    activity, _ = await factory.activity()
    for learner in learners:
        await factory.records(learner, activity, minutes=600, status="verified")
    await settlement.settle(db, learners, actor="test")
    await db.commit()
    college = issue_token("staff", role="college_staff", unit="410711")
    draft = await _draft_offline_at_five_hours(client, db, college, "2026-01-01")
    assert draft.status_code == 201, draft.text
    assert draft.json()["version"] == 2 and draft.json()["status"] == "draft"
    version_id = draft.json()["id"]
    dry = await client.post(
        f"/api/v1/rule-versions/{version_id}/publish",
        json={"dry_run": True, "reason": "offline hours were undervalued"},
        headers=bearer(college),
    )
    assert dry.status_code == 200, dry.text
    changes = {
        (c["learner_id"], c["delta_hundredths"], c["after_hundredths"])
        for c in dry.json()["changes"]
        if c["learner_id"] in {str(learner) for learner in learners}  # others' may be there
    }
    assert changes == {(str(learner), 100, 200) for learner in learners}
    unchanged = await _credits(client, issue_token("resident", subject=str(learners[0])))
    assert unchanged["total_hundredths"] == 100  # a dry run posts nothing
    applied = await client.post(
        f"/api/v1/rule-versions/{version_id}/publish",
        json={"dry_run": False, "reason": "offline hours were undervalued"},
        headers=bearer(college),
    )
    assert applied.status_code == 200
    mine = [c for c in applied.json()["changes"] if c["learner_id"] in {str(x) for x in learners}]
    assert sum(c["delta_hundredths"] for c in mine) == 200
    resident = issue_token("resident", subject=str(learners[0]))
    assert (await _credits(client, resident))["total_hundredths"] == 200
    history = (await client.get("/api/v1/me/credit-history", headers=bearer(resident))).json()
    adjustment = history["items"][0]
    assert adjustment["rule_version_id"] == version_id
    assert [s["rule_version_id"] for s in adjustment["sources"]] == [version_id]
    assert len(history["items"]) == 2  # the original accrual stays as it was
    republish = await client.post(
        f"/api/v1/rule-versions/{version_id}/publish",
        json={"dry_run": False, "reason": "again"},
        headers=bearer(college),
    )
    assert republish.status_code == 409
    assert republish.json()["type"].endswith("/rule-version-published")
    # the trail: a draft before, published after with what it changed (a dry run is none)
    ((was, became),) = await audit_digests(db, "rule_version.publish", str(version_id))
    assert was == state_digest({"status": "draft"})
    assert became == state_digest(
        {
            "status": "published",
            "changes": len(applied.json()["changes"]),
            "point_changes": len(applied.json()["point_changes"]),
            "total_delta_hundredths": applied.json()["total_delta_hundredths"],
        }
    )
    report = await reconciliation.reconcile(db, learners)
    assert report.healthy, report.discrepancies


async def test_publishing_reaches_records_of_the_first_hours_of_its_first_day(
    session_client, issue_token, factory
) -> None:
    # a record at 03:00 Beijing time on 1 July (19:00 UTC on 30 June) is the new version's:
    # its learner is among those the version changes, on SQLite too
    client, db = session_client
    learner = uuid.uuid4()
    activity, _ = await factory.activity()
    await factory.records(
        learner,
        activity,
        minutes=600,
        status="verified",
        start=datetime(2026, 6, 30, 19, tzinfo=UTC),
    )
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    college = issue_token("staff", role="college_staff", unit="410711")
    draft = await _draft_offline_at_five_hours(client, db, college, "2026-07-01")
    assert draft.status_code == 201, draft.text
    dry = await client.post(
        f"/api/v1/rule-versions/{draft.json()['id']}/publish",
        json={"dry_run": True, "reason": "offline hours were undervalued"},
        headers=bearer(college),
    )
    assert dry.status_code == 200, dry.text
    mine = [c for c in dry.json()["changes"] if c["learner_id"] == str(learner)]
    assert [(c["before_hundredths"], c["after_hundredths"]) for c in mine] == [(100, 200)]


async def test_invalid_rule_sets_are_refused_with_the_field_named(client, issue_token) -> None:
    college = issue_token("staff", role="college_staff", unit="410711")
    response = await client.post(
        "/api/v1/rule-versions",
        json={
            "code": "muye-default",
            "title": "坏规则",
            "effective_from": "2027-01-01",
            "body": {
                "minutes_per_credit": {"offline": 0, "online": 900, "blended": 720},
                "day_minute_cap": {"online": 240},
            },
        },
        headers=bearer(college),
    )
    assert response.status_code == 422
    locations = {tuple(e["location"]) for e in response.json()["errors"]}
    assert ("body", "body", "minutes_per_credit", "offline") in locations
    assert ("body", "body", "day_minute_cap") in locations  # a typo is an error, not a default
    school = issue_token("staff", role="school_staff", unit="410711100")
    assert (
        await client.post("/api/v1/rule-versions", json={}, headers=bearer(school))
    ).status_code == 403


async def test_expiry_takes_unspent_credits_after_five_full_years(
    session_client, issue_token, factory, monkeypatch
) -> None:
    client, db = session_client
    # runs that post may not be dated after today: the test's today is the day of the run
    monkeypatch.setattr(expiry, "beijing_today", lambda: date(2029, 1, 1))
    learner = uuid.uuid4()
    activity, _ = await factory.activity()
    old_start = datetime(2023, 5, 1, 1, tzinfo=UTC)
    await factory.records(learner, activity, minutes=600, status="verified", start=old_start)
    await factory.records(learner, activity, minutes=600, status="verified")  # 2026
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    college = issue_token("staff", role="college_staff", unit="410711")
    dry = await client.post(
        "/api/v1/ledger/expiry-runs",
        json={"as_of": "2028-12-31", "dry_run": True},
        headers=bearer(college),
    )
    assert dry.status_code == 200 and dry.json()["lines"] == []  # 2023 credits last through 2028
    listed = await client.post(
        "/api/v1/ledger/expiry-runs",
        json={"as_of": "2029-01-01", "dry_run": True},
        headers=bearer(college),
    )
    assert [(line["category"], line["hundredths"]) for line in listed.json()["lines"]] == [
        ("law", 100)
    ]
    assert (await _credits(client, issue_token("resident", subject=str(learner))))[
        "total_hundredths"
    ] == 200  # a dry run posts nothing
    due = await client.post(
        "/api/v1/ledger/expiry-runs",
        json={"as_of": "2029-01-01", "dry_run": False},
        headers=bearer(college),
    )
    assert due.json()["total_hundredths"] == 100
    resident = issue_token("resident", subject=str(learner))
    assert (await _credits(client, resident))["total_hundredths"] == 100
    again = await client.post(
        "/api/v1/ledger/expiry-runs",
        json={"as_of": "2029-01-01", "dry_run": False},
        headers=bearer(college),
    )
    assert again.json()["lines"] == []  # expired once, never again
    report = await reconciliation.reconcile(db, [learner])
    assert report.healthy, report.discrepancies


async def test_staff_see_credits_of_learners_they_cover_only(
    session_client, issue_token, factory
) -> None:
    client, db = session_client
    learner = uuid.uuid4()
    LEARNER_HOMES[str(learner)] = "/410711/410711100/410711100201/"
    activity, _ = await factory.activity()
    await factory.records(learner, activity, minutes=600, status="verified")
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    url = f"/api/v1/learners/{learner}/credits"
    covering = issue_token("staff", role="school_staff", unit="410711100")
    other_town = issue_token("staff", role="school_staff", unit="410711101")
    auditor = issue_token("staff", role="auditor", unit="410711")
    other_resident = issue_token("resident")
    assert (await client.get(url, headers=bearer(covering))).json()["total_hundredths"] == 100
    assert (await client.get(url, headers=bearer(auditor))).status_code == 200
    assert (await client.get(url, headers=bearer(other_town))).status_code == 404
    assert (await client.get(url, headers=bearer(other_resident))).status_code == 404
    history = (
        await client.get(
            "/api/v1/me/credit-history",
            headers=bearer(issue_token("resident", subject=str(learner))),
        )
    ).json()
    transaction = history["items"][0]["id"]
    trace = f"/api/v1/credit-transactions/{transaction}"
    assert (await client.get(trace, headers=bearer(auditor))).status_code == 200
    assert (await client.get(trace, headers=bearer(other_resident))).status_code == 404


async def test_reconciliation_is_empty_when_healthy_and_finds_a_tampered_posting(
    session_client, issue_token, factory
) -> None:
    client, db = session_client
    learner = uuid.uuid4()
    activity, _ = await factory.activity()
    await factory.records(learner, activity, count=2, minutes=600, status="verified")
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    auditor = issue_token("staff", role="auditor", unit="410711")
    healthy = await client.get("/api/v1/ledger/reconciliation", headers=bearer(auditor))
    assert healthy.status_code == 200 and healthy.json()["healthy"] is True
    assert healthy.json()["discrepancies"] == []
    posting = (
        await db.execute(
            select(CreditPosting)
            .join(LedgerAccount, LedgerAccount.id == CreditPosting.account_id)
            .where(LedgerAccount.learner_id == learner)
        )
    ).scalar_one()
    # tamper as someone with direct database access would: around the append-only triggers
    if _dialect(db) == "postgresql":
        await db.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        await db.execute(text("DROP TRIGGER credit_posting_no_update"))
    await db.execute(
        text("UPDATE credit_posting SET amount_hundredths = 150 WHERE id = :id"), {"id": posting.id}
    )
    if _dialect(db) == "postgresql":
        await db.execute(text("SET LOCAL session_replication_role = origin"))
    await db.commit()
    found = (await client.get("/api/v1/ledger/reconciliation", headers=bearer(auditor))).json()
    assert found["healthy"] is False
    checks = {(d["check"], d["expected"], d["actual"]) for d in found["discrepancies"]}
    # the learner's leg now credits 150 against the issuer's debit of 200, and the balance
    # kept (200) is no longer the sum of the account's postings (150)
    assert checks == {("unbalanced", 0, -50), ("balance", 150, 200)}
    resident = issue_token("resident")
    assert (
        await client.get("/api/v1/ledger/reconciliation", headers=bearer(resident))
    ).status_code == 403


async def test_postings_and_transactions_cannot_be_changed_or_deleted(
    session_client, factory
) -> None:
    _, db = session_client
    learner = uuid.uuid4()
    activity, _ = await factory.activity()
    await factory.records(learner, activity, minutes=600, status="verified")
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    for statement in (
        "UPDATE credit_posting SET amount_hundredths = amount_hundredths + 1",
        "DELETE FROM credit_posting",
        "UPDATE ledger_transaction SET memo = 'rewritten'",
        "DELETE FROM credit_source",
    ):
        with pytest.raises((IntegrityError, DBAPIError)) as caught:
            async with db.begin_nested():
                await db.execute(text(statement))
        assert "append only" in str(caught.value)


async def test_a_learner_balance_can_never_go_below_zero_in_the_database(
    session_client, factory
) -> None:
    _, db = session_client
    learner = uuid.uuid4()
    activity, _ = await factory.activity()
    await factory.records(learner, activity, minutes=600, status="verified")
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    account = (
        await db.execute(select(LedgerAccount).where(LedgerAccount.learner_id == learner))
    ).scalar_one()
    expiry = (
        await db.execute(select(LedgerAccount.id).where(LedgerAccount.kind == "expiry"))
    ).scalar_one()
    with pytest.raises(IntegrityError):
        async with db.begin_nested():
            transaction = LedgerTransaction(kind="expiry", learner_id=learner, created_by="test")
            db.add(transaction)
            await db.flush()
            db.add(
                CreditPosting(
                    transaction_id=transaction.id,
                    account_id=account.id,
                    side="debit",
                    amount_hundredths=101,
                )
            )
            db.add(
                CreditPosting(
                    transaction_id=transaction.id,
                    account_id=expiry,
                    side="credit",
                    amount_hundredths=101,
                )
            )
            await db.flush()


async def test_unbalanced_postings_fail_at_commit_on_postgresql(session_client, factory) -> None:
    _, db = session_client
    if _dialect(db) != "postgresql":
        pytest.skip("SQLite has no deferred constraint triggers; the service checks balance")
    issuing = (
        await db.execute(select(LedgerAccount.id).where(LedgerAccount.kind == "issuing"))
    ).scalar_one()
    with pytest.raises(DBAPIError) as caught:
        async with db.begin_nested():
            transaction = LedgerTransaction(kind="accrual", created_by="test")
            db.add(transaction)
            await db.flush()
            db.add(
                CreditPosting(
                    transaction_id=transaction.id,
                    account_id=issuing,
                    side="debit",
                    amount_hundredths=5,
                )
            )
            await db.flush()
            await db.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
    assert "does not balance" in str(caught.value)


async def test_a_pass_of_the_worker_takes_only_what_was_queued_when_it_began(
    session_client, factory
) -> None:
    _, db = session_client
    early, steady, late = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    activity, _ = await factory.activity()
    await factory.records(early, activity, minutes=60)
    await factory.records(steady, activity, minutes=60)
    up_to = await settlement.last_queued_seq(db)
    # while the pass runs: a newcomer, and more records of a learner already queued
    await factory.records(late, activity, minutes=60)
    await factory.records(steady, activity, minutes=60, start=datetime(2026, 5, 1, 1, tzinfo=UTC))
    this_pass = await settlement.claim_queued(db, 100_000, up_to_seq=up_to)
    assert early in this_pass
    assert steady not in this_pass and late not in this_pass  # both wait for the next pass
    await db.rollback()
    everything = await settlement.claim_queued(db, 100_000)
    assert {early, steady, late} <= set(everything)
    await db.rollback()


async def test_inserts_and_status_changes_queue_the_learner_in_the_outbox(
    session_client, factory
) -> None:
    _, db = session_client
    learner = uuid.uuid4()
    activity, _ = await factory.activity()
    (record,) = await factory.records(learner, activity, minutes=60, status="pending")
    assert learner in await settlement.queued_learners(db, 100_000)  # the insert trigger
    await settlement.settle(db, [learner], actor="test")
    assert learner not in await settlement.queued_learners(db, 100_000)
    # any status change, by whatever code path, queues the learner again
    await db.execute(
        text("UPDATE learning_record SET status = 'verified' WHERE id = :id"), {"id": record}
    )
    assert learner in await settlement.queued_learners(db, 100_000)
    # a change that lands between reading the queue and settling keeps the learner queued
    seen = (
        await db.execute(select(LedgerOutbox.seq).where(LedgerOutbox.learner_id == learner))
    ).scalar_one()
    await factory.records(learner, activity, minutes=60, start=datetime(2026, 5, 1, 1, tzinfo=UTC))
    later = (
        await db.execute(select(LedgerOutbox.seq).where(LedgerOutbox.learner_id == learner))
    ).scalar_one()
    assert later > seen


def test_beijing_midnight_bounds_are_dates() -> None:
    # the correction window is in Beijing days: 2026-01-01 starts at 16:00 UTC the day before
    start = datetime.combine(date(2026, 1, 1), datetime.min.time(), settlement.engine.CHINA)
    assert start.astimezone(UTC) == datetime(2025, 12, 31, 16, tzinfo=UTC)
    assert timedelta(hours=8) == start.utcoffset()


async def test_postings_and_provenance_must_name_rows_that_exist(session_client) -> None:
    # PostgreSQL checks this per statement (set-based, for COPY batches), SQLite per row
    _, db = session_client
    transaction = LedgerTransaction(kind="accrual", created_by="test")
    db.add(transaction)
    await db.flush()
    orphans = (
        "INSERT INTO credit_posting (transaction_id, account_id, side, amount_hundredths)"
        " VALUES (:t, 987654321, 'credit', 5)",
        "INSERT INTO credit_source (transaction_id, learner_id, key, clause, category_code,"
        " earned_on, rule_version_id, amount_hundredths, record_ids)"
        " VALUES (987654321, :l, 'hours:1', 'hours.offline', 'law', '2026-01-01', NULL, 5, :ids)",
    )
    ids = [1] if _dialect(db) == "postgresql" else "[1]"
    if _dialect(db) == "sqlite":
        await db.execute(text("PRAGMA foreign_keys = ON"))
    for statement in orphans:
        with pytest.raises((IntegrityError, DBAPIError)):
            async with db.begin_nested():
                await db.execute(
                    text(statement), {"t": transaction.id, "l": uuid.uuid4().hex, "ids": ids}
                )


def test_the_worker_pauses_the_interval_or_three_times_a_long_pass() -> None:
    assert worker.pause_after(0.05, 2.0) == 2.0  # the usual pass: the configured interval
    assert worker.pause_after(4.0, 2.0) == 12.0  # a pass grown long under a flood: 3 x it
    # so settling takes at most a quarter of the process's time, however long its passes get
    for took in (0.5, 1.0, 7.0, 60.0):
        assert took / (took + worker.pause_after(took, 2.0)) <= 0.25

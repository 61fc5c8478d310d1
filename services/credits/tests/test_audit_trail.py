"""The credits audit trail: hash-chained, append only, verified, purged only after 180 days.

The scenarios are shared with accounts (testkit.audit_scenarios); this module adds that the
service's state changes land in the chain, in the transaction that made them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from credits.audit.models import TABLES
from credits.audit.service import snapshot
from credits.ledger import settlement
from kernel.auditstore import AuditTables, digest
from testkit.audit_scenarios import *  # noqa: F403

from .conftest import CERTIFICATION, EVIDENCE_PNG, new_learner


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def audit_pair(session_client: tuple[httpx.AsyncClient, AsyncSession]):  # type: ignore[no-untyped-def]
    return session_client


@pytest.fixture
def audit_prefix() -> str:
    return "/api/v1/audit/credits"


@pytest.fixture
def audit_tables() -> AuditTables:
    return TABLES


@pytest.fixture
def auditor_headers(issue_token) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return bearer(issue_token("staff", role="auditor", unit="410711"))


@pytest.fixture
def outsider_headers(issue_token) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return bearer(issue_token("resident"))


async def _trail(session: AsyncSession, since: int) -> list[tuple[str, str, str]]:
    rows = await session.execute(
        text("SELECT action, target_type, outcome FROM audit_entry WHERE seq > :s ORDER BY seq"),
        {"s": since},
    )
    return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def _head(session: AsyncSession) -> int:
    return int((await session.execute(text("SELECT seq FROM audit_head"))).scalar_one())


async def test_changes_are_audited_with_who_did_them_and_a_batch_is_one_entry(  # type: ignore[no-untyped-def]
    session_client: tuple[httpx.AsyncClient, AsyncSession], issue_token, auditor_headers
) -> None:
    client, session = session_client
    start = await _head(session)
    partner = f"mooc-{uuid.uuid4().hex[:6]}"
    staff = issue_token("staff", role="college_staff", unit="410711")
    created = await client.post(
        "/api/v1/activities",
        json={
            "title": "反诈骗知识讲座（线上）",
            "kind": "online_course",
            "category": "digital_skills",
            "mode": "online",
            "partner": partner,
        },
        headers=bearer(staff),
    )
    assert created.status_code == 201, created.text
    number, _ = new_learner()
    day = datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0) - timedelta(days=2)
    items = [
        {
            "id": f"stretch-{n}",
            "learner": number,
            "activity": created.json()["id"],
            "start": (day + timedelta(hours=n)).isoformat(),
            "end": (day + timedelta(hours=n, minutes=30)).isoformat(),
            "minutes": 30,
        }
        for n in range(5)
    ]
    posted = await client.post(
        "/api/v1/learning-records:batch",
        json={"records": items},
        headers=bearer(issue_token("partner", client_id=partner)),
    )
    assert posted.status_code == 200 and posted.json()["created"] == 5, posted.text
    # a refused change writes nothing: the entry goes with the rolled-back transaction
    refused = await client.post(
        "/api/v1/activities", json={"title": "x"}, headers=bearer(issue_token("resident"))
    )
    assert refused.status_code in (403, 422)
    trail = await _trail(session, start)
    assert trail == [
        ("activity.create", "activity", "ok"),
        ("learning_record.batch", "partner_client", "ok"),  # five records, one entry
    ]
    who = await session.execute(
        text("SELECT actor_role, actor_unit, after_digest FROM audit_entry WHERE seq = :s"),
        {"s": start + 1},
    )
    role, unit, after = who.one()
    assert (role, unit) == ("college_staff", "410711") and len(after) == 64
    assert (await client.get("/api/v1/audit/credits/verify", headers=auditor_headers)).json()["ok"]


async def test_a_record_verification_is_audited_with_its_reason_and_a_refused_one_is_not(  # type: ignore[no-untyped-def]
    session_client: tuple[httpx.AsyncClient, AsyncSession], factory, issue_token
) -> None:
    client, session = session_client
    activity, _ = await factory.activity(unit="410711100")
    first, second = await factory.records(uuid.uuid4(), activity, count=2)
    start = await _head(session)
    school = bearer(issue_token("staff", role="school_staff", unit="410711100"))
    url = "/api/v1/learning-records/{}/status"
    verified = await client.post(
        url.format(first), json={"status": "verified", "reason": "签到表核对无误"}, headers=school
    )
    assert verified.status_code == 200, verified.text
    # a move the record's state refuses fails inside the transaction: no entry survives it
    back = await client.post(
        url.format(first), json={"status": "pending", "reason": "改回"}, headers=school
    )
    assert back.status_code >= 400
    elsewhere = bearer(issue_token("staff", role="school_staff", unit="410711101"))
    hidden = await client.post(
        url.format(second), json={"status": "verified", "reason": "x"}, headers=elsewhere
    )
    assert hidden.status_code == 404
    assert await _trail(session, start) == [
        ("learning_record.status", "learning_record", "verified")
    ]
    reason = await session.execute(
        text("SELECT reason, target_id FROM audit_entry WHERE seq = :s"), {"s": start + 1}
    )
    assert tuple(reason.one()) == ("签到表核对无误", str(first))


async def test_a_cursor_not_made_by_the_listing_is_a_problem_not_a_500(  # type: ignore[no-untyped-def]
    client: httpx.AsyncClient, auditor_headers
) -> None:
    from kernel.pagination import encode_cursor

    for position in ({"seq": "x"}, {"seq": [1]}, {"seq": 2**70}, {"seq": 1.5}, {"seq": None}):
        listing = await client.get(
            "/api/v1/audit/credits/entries",
            params={"cursor": encode_cursor(position)},
            headers=auditor_headers,
        )
        assert listing.status_code == 400, (position, listing.text)
        assert listing.headers["content-type"].startswith("application/problem+json")
        assert listing.json()["type"].endswith("/invalid-cursor")


async def test_entries_committed_while_the_chain_is_walked_are_not_a_break(
    credits_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL reads each statement anew (READ COMMITTED): a writer committing between the
    # verification's read of the head and its walk of the entries must not look like an entry
    # forged behind the head's back. (SQLite's verification holds the file's only write lock.)
    if not credits_db.startswith("postgresql"):
        pytest.skip("SQLite serialises the walk with every writer")
    from kernel import auditstore
    from kernel.db import make_engine, make_sessionmaker
    from kernel.settings import normalise_database_url

    engine = make_engine(normalise_database_url(credits_db))
    sessions = make_sessionmaker(engine)
    read_head = auditstore.head_of

    writers = [1]

    async def head_then_a_writer(session: AsyncSession, tables: AuditTables):  # type: ignore[no-untyped-def]
        found = await read_head(session, tables)
        if not writers:
            return found
        writers.pop()
        async with sessions() as writer:
            auditstore.stage(
                writer,
                tables,
                [
                    auditstore.new_entry(
                        actor="test", action="test.concurrent", target_type="t", target_id="1"
                    )
                ],
            )
            await writer.commit()
        return found

    try:
        async with sessions() as session:
            monkeypatch.setattr(auditstore, "head_of", head_then_a_writer)
            result = await auditstore.verify(session, TABLES)
            monkeypatch.setattr(auditstore, "head_of", read_head)
            assert result.ok, auditstore.describe(result)
            # the head the walk ended on is the one after the writer's entry
            _, now = await read_head(session, TABLES)
            assert result.head == now
    finally:
        await engine.dispose()


async def _entries_of(session: AsyncSession, actor: str) -> list[tuple[str, str, str, str]]:
    rows = await session.execute(
        text(
            "SELECT action, target_type, target_id, outcome FROM audit_entry"
            " WHERE actor = :actor ORDER BY seq"
        ),
        {"actor": actor},
    )
    return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def test_the_whole_ledgers_reconciliation_is_an_audited_query(  # type: ignore[no-untyped-def]
    session_client: tuple[httpx.AsyncClient, AsyncSession], issue_token
) -> None:
    """An auditor's reconciliation of the whole ledger, answered or refused, is on the trail
    (as a unit's is): every auditor query is."""
    client, session = session_client
    auditor = issue_token("staff", role="auditor", unit="410711", subject="whole-ledger-auditor")
    answered = await client.get("/api/v1/ledger/reconciliation", headers=bearer(auditor))
    assert answered.status_code == 200, answered.text
    school = issue_token("staff", role="school_staff", unit="410711100", subject="curious-school")
    refused = await client.get("/api/v1/ledger/reconciliation", headers=bearer(school))
    assert refused.status_code == 403, refused.text
    assert await _entries_of(session, "whole-ledger-auditor") == [
        ("ledger.reconciliation", "ledger", "*", "ok")
    ]
    assert await _entries_of(session, "curious-school") == [
        ("ledger.reconciliation", "ledger", "*", "refused")
    ]


async def test_opening_a_certificate_scan_is_on_the_trail(  # type: ignore[no-untyped-def]
    session_client: tuple[httpx.AsyncClient, AsyncSession], issue_token
) -> None:
    """A scan shows the person (name, often the ID number, a photo): who opened it is kept,
    as an ID number's reveal is in accounts."""
    client, session = session_client
    resident = issue_token("resident", subject=str(uuid.uuid4()), unit="410711100")
    made = await client.post("/api/v1/certifications", json=CERTIFICATION, headers=bearer(resident))
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    uploaded = await client.post(
        f"/api/v1/certifications/{cid}/evidence",
        files={"file": ("证书.png", EVIDENCE_PNG + b"scan", "image/png")},
        headers=bearer(resident),
    )
    assert uploaded.status_code == 201, uploaded.text
    college = issue_token("staff", role="college_staff", unit="410711", subject="scan-reader")
    opened = await client.get(
        f"/api/v1/certifications/{cid}/evidence/{uploaded.json()['id']}", headers=bearer(college)
    )
    assert opened.status_code == 200 and opened.content.startswith(EVIDENCE_PNG)
    assert await _entries_of(session, "scan-reader") == [
        ("certification.evidence.open", "certification_evidence", uploaded.json()["id"], "ok")
    ]


async def test_a_status_change_digests_the_record_before_and_after(  # type: ignore[no-untyped-def]
    session_client: tuple[httpx.AsyncClient, AsyncSession], issue_token, factory
) -> None:
    """Before: only the request was digested (as "after"), so the trail could not show what
    the record was before it was voided; now the status and reason before, and after it the
    status, the reason and the balances the settlement moved."""
    client, session = session_client
    learner = uuid.uuid4()
    activity, _ = await factory.activity()
    (record,) = await factory.records(learner, activity, minutes=600, status="verified")
    await settlement.settle(session, [learner], actor="test")
    await session.commit()
    school = issue_token("staff", role="school_staff", unit="410711100")
    voided = await client.post(
        f"/api/v1/learning-records/{record}/status",
        json={"status": "voided", "reason": "冒名签到"},
        headers=bearer(school),
    )
    assert voided.status_code == 200, voided.text
    (before, after), *_ = (
        await session.execute(
            text(
                "SELECT before_digest, after_digest FROM audit_entry"
                " WHERE action = 'learning_record.status' AND target_id = :r"
            ),
            {"r": str(record)},
        )
    ).all()
    assert before == digest(snapshot({"status": "verified", "reason": None}))
    request_only = digest(snapshot({"status": "voided", "reason": "冒名签到"}))
    assert after is not None and after not in (before, request_only)  # the balances moved

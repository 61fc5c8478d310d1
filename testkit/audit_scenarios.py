"""The audit trail tests every service runs (imported by each service's test_audit_trail.py).

The importing module provides fixtures: ``audit_pair`` (a rolled-back client and its session),
``audit_prefix`` (where the service serves its trail, ``/api/v1/audit/<service>``),
``audit_tables``, ``auditor_headers`` and ``outsider_headers`` (a caller who is not an auditor).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from kernel import auditstore
from kernel.auditstore import AuditPurgeTooRecent, AuditTables
from testkit.audit import (
    assert_break,
    forge_entry,
    head_hash,
    rewrite_from,
    tamper,
    verify_via_api,
    write_entries,
)

Pair = tuple[httpx.AsyncClient, AsyncSession]


async def test_an_untouched_chain_verifies_and_lists_newest_first(
    audit_pair: Pair, audit_prefix: str, audit_tables: AuditTables, auditor_headers: dict[str, str]
) -> None:
    client, session = audit_pair
    seqs = await write_entries(session, audit_tables, 3)
    assert seqs == [seqs[0], seqs[0] + 1, seqs[0] + 2]  # one after another, no gaps
    result = await verify_via_api(client, audit_prefix, auditor_headers)
    assert result["ok"] is True and result["first_break"] is None
    assert result["head"]["seq"] == seqs[-1]
    listing = await client.get(
        f"{audit_prefix}/entries",
        params={"action": "test.change", "limit": 2},
        headers=auditor_headers,
    )
    assert listing.status_code == 200, listing.text
    page = listing.json()
    assert [e["seq"] for e in page["items"]] == [seqs[2], seqs[1]]
    rest = await client.get(
        f"{audit_prefix}/entries",
        params={"action": "test.change", "limit": 2, "cursor": page["next_cursor"]},
        headers=auditor_headers,
    )
    assert [e["seq"] for e in rest.json()["items"]] == [seqs[0]]


async def test_the_auditors_own_queries_are_in_the_trail(
    audit_pair: Pair, audit_prefix: str, auditor_headers: dict[str, str]
) -> None:
    client, _ = audit_pair
    await verify_via_api(client, audit_prefix, auditor_headers)
    listing = await client.get(
        f"{audit_prefix}/entries", params={"target_type": "audit_trail"}, headers=auditor_headers
    )
    actions = [e["action"] for e in listing.json()["items"]]
    assert actions[:1] == ["audit.verify"]  # the listing itself is written after it answers
    again = await client.get(
        f"{audit_prefix}/entries", params={"target_type": "audit_trail"}, headers=auditor_headers
    )
    assert [e["action"] for e in again.json()["items"]][:2] == ["audit.list", "audit.verify"]


async def test_anyone_but_an_auditor_is_refused_and_the_attempt_is_recorded(
    audit_pair: Pair,
    audit_prefix: str,
    auditor_headers: dict[str, str],
    outsider_headers: dict[str, str],
) -> None:
    client, _ = audit_pair
    for path in (f"{audit_prefix}/entries", f"{audit_prefix}/verify"):
        refused = await client.get(path, headers=outsider_headers)
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"] == "https://muye.example.org/problems/forbidden"
    assert (await client.get(f"{audit_prefix}/verify")).status_code == 401
    listing = await client.get(
        f"{audit_prefix}/entries", params={"target_type": "audit_trail"}, headers=auditor_headers
    )
    refusals = [e for e in listing.json()["items"] if e["outcome"] == "refused"]
    assert {e["action"] for e in refusals} == {"audit.list", "audit.verify"}


async def test_an_edited_entry_is_named_altered(
    audit_pair: Pair, audit_prefix: str, audit_tables: AuditTables, auditor_headers: dict[str, str]
) -> None:
    client, session = audit_pair
    seqs = await write_entries(session, audit_tables, 5)
    await tamper(
        session, "UPDATE audit_entry SET actor = 'someone else' WHERE seq = :s", {"s": seqs[2]}
    )
    assert_break(await verify_via_api(client, audit_prefix, auditor_headers), seqs[2], "altered")


async def test_an_edit_that_recomputes_the_hash_is_still_caught(
    audit_pair: Pair, audit_prefix: str, audit_tables: AuditTables, auditor_headers: dict[str, str]
) -> None:
    client, session = audit_pair
    seqs = await write_entries(session, audit_tables, 5)
    await tamper(
        session, "UPDATE audit_entry SET hash = :h WHERE seq = :s", {"h": "f" * 64, "s": seqs[1]}
    )
    assert_break(await verify_via_api(client, audit_prefix, auditor_headers), seqs[1], "altered")


async def test_a_deleted_middle_entry_is_named_removed(
    audit_pair: Pair, audit_prefix: str, audit_tables: AuditTables, auditor_headers: dict[str, str]
) -> None:
    client, session = audit_pair
    seqs = await write_entries(session, audit_tables, 5)
    await tamper(session, "DELETE FROM audit_entry WHERE seq = :s", {"s": seqs[2]})
    assert_break(await verify_via_api(client, audit_prefix, auditor_headers), seqs[2], "removed")


async def test_deleting_the_newest_entries_is_caught_by_the_head(
    audit_pair: Pair, audit_prefix: str, audit_tables: AuditTables, auditor_headers: dict[str, str]
) -> None:
    client, session = audit_pair
    seqs = await write_entries(session, audit_tables, 5)
    await tamper(session, "DELETE FROM audit_entry WHERE seq >= :s", {"s": seqs[3]})
    assert_break(await verify_via_api(client, audit_prefix, auditor_headers), seqs[3], "removed")


async def test_a_forged_entry_squeezed_into_the_middle_is_named_inserted(
    audit_pair: Pair, audit_prefix: str, audit_tables: AuditTables, auditor_headers: dict[str, str]
) -> None:
    client, session = audit_pair
    seqs = await write_entries(session, audit_tables, 5)
    # make room at seqs[2] (two steps: the unique key would trip over a one-step shift)
    await tamper(
        session, "UPDATE audit_entry SET seq = seq + 1000000 WHERE seq >= :s", {"s": seqs[2]}
    )
    await tamper(session, "UPDATE audit_entry SET seq = seq - 999999 WHERE seq >= 1000000")
    await forge_entry(
        session, audit_tables, seq=seqs[2], prev_hash=await head_hash(session, seqs[1])
    )
    assert_break(await verify_via_api(client, audit_prefix, auditor_headers), seqs[2], "inserted")


async def test_a_forged_entry_appended_behind_the_heads_back_is_named_inserted(
    audit_pair: Pair, audit_prefix: str, audit_tables: AuditTables, auditor_headers: dict[str, str]
) -> None:
    client, session = audit_pair
    seqs = await write_entries(session, audit_tables, 3)
    await forge_entry(
        session, audit_tables, seq=seqs[-1] + 1, prev_hash=await head_hash(session, seqs[-1])
    )
    assert_break(
        await verify_via_api(client, audit_prefix, auditor_headers), seqs[-1] + 1, "inserted"
    )


async def test_the_database_refuses_to_edit_or_delete_entries(
    audit_pair: Pair, audit_tables: AuditTables
) -> None:
    _, session = audit_pair
    seqs = await write_entries(session, audit_tables, 1)
    statements = (
        "UPDATE audit_entry SET outcome = 'ok' WHERE seq = :s",
        "DELETE FROM audit_entry WHERE seq = :s",
        "UPDATE audit_head SET seq = :s - 1",
        "DELETE FROM audit_head",
    )
    for statement in statements:
        with pytest.raises(DBAPIError, match="append only|only moves forward"):
            async with session.begin_nested():
                await session.execute(text(statement), {"s": seqs[0]})


async def test_a_rolled_back_change_leaves_no_gap(
    audit_pair: Pair, audit_prefix: str, audit_tables: AuditTables, auditor_headers: dict[str, str]
) -> None:
    client, session = audit_pair
    before = await write_entries(session, audit_tables, 1)
    auditstore.stage(
        session,
        audit_tables,
        [auditstore.new_entry(actor="t", action="test.lost", target_type="t", target_id="1")],
    )
    await session.rollback()
    with pytest.raises(RuntimeError):  # a savepoint that fails drops what it staged
        async with session.begin_nested():
            auditstore.stage(
                session,
                audit_tables,
                [
                    auditstore.new_entry(
                        actor="t", action="test.lost", target_type="t", target_id="2"
                    )
                ],
            )
            raise RuntimeError("the change failed")
    after = await write_entries(session, audit_tables, 1)
    assert after[0] == before[0] + 1
    found = await session.execute(
        text("SELECT count(*) FROM audit_entry WHERE action = 'test.lost'")
    )
    assert found.scalar_one() == 0
    assert (await verify_via_api(client, audit_prefix, auditor_headers))["ok"] is True


async def test_nothing_younger_than_180_days_can_be_purged(
    audit_pair: Pair, audit_tables: AuditTables
) -> None:
    _, session = audit_pair
    await write_entries(session, audit_tables, 1)
    now = datetime.now(UTC)
    for before in (now, now - timedelta(days=179), now + timedelta(days=1)):
        with pytest.raises(AuditPurgeTooRecent) as refused:
            await auditstore.purge(session, audit_tables, before=before)
        assert "180 days" in refused.value.detail and refused.value.detail_zh
    assert (await session.execute(text("SELECT anchor_seq FROM audit_head"))).scalar_one() == 0


async def test_a_purge_keeps_the_chain_verifiable_from_its_new_anchor(
    audit_pair: Pair, audit_prefix: str, audit_tables: AuditTables, auditor_headers: dict[str, str]
) -> None:
    client, session = audit_pair
    old = await write_entries(session, audit_tables, 3)
    cutoff = datetime.now(UTC)
    young = await write_entries(session, audit_tables, 2)
    # pretend it is half a year later: everything written before the cut-off may go
    done = await auditstore.purge(
        session, audit_tables, before=cutoff, now=cutoff + timedelta(days=181)
    )
    await session.commit()
    assert done.anchor.seq == old[-1] and done.removed >= 3
    remaining = await session.execute(text("SELECT min(seq) FROM audit_entry"))
    assert remaining.scalar_one() == young[0]
    result = await verify_via_api(client, audit_prefix, auditor_headers)
    assert result["ok"] is True, result
    assert result["anchor"]["seq"] == old[-1] and result["entries_checked"] == 2
    # an old entry put back after the purge is caught
    await forge_entry(session, audit_tables, seq=old[-1], prev_hash="0" * 64)
    assert_break(await verify_via_api(client, audit_prefix, auditor_headers), old[-1], "inserted")


async def test_a_wholesale_rewrite_shows_only_against_a_head_kept_elsewhere(
    audit_pair: Pair,
    audit_prefix: str,
    audit_tables: AuditTables,
    auditor_headers: dict[str, str],
) -> None:
    client, session = audit_pair
    seqs = await write_entries(session, audit_tables, 4)
    kept = (await verify_via_api(client, audit_prefix, auditor_headers))["head"]
    anchored = f"{kept['seq']}:{kept['hash']}"
    await write_entries(session, audit_tables, 2)
    await rewrite_from(session, audit_tables, seqs[1], {"actor": "someone else"})
    # every hash recomputed: the chain alone cannot tell
    assert (await verify_via_api(client, audit_prefix, auditor_headers))["ok"] is True
    checked = await client.get(
        f"{audit_prefix}/verify", params={"anchored": anchored}, headers=auditor_headers
    )
    assert_break(checked.json(), kept["seq"], "altered")
    malformed = await client.get(
        f"{audit_prefix}/verify", params={"anchored": "12:xyz"}, headers=auditor_headers
    )
    assert malformed.status_code == 422

"""Audit trail test support: write entries, and tamper with the table as an intruder would."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from kernel import auditmigration, auditstore
from kernel.auditstore import AuditTables


async def write_entries(session: AsyncSession, tables: AuditTables, count: int) -> list[int]:
    """Commit ``count`` entries (one transaction each) and return their sequence numbers."""
    seqs = []
    for n in range(count):
        entry = auditstore.new_entry(
            actor="test", action="test.change", target_type="thing", target_id=f"t{n}"
        )
        auditstore.stage(session, tables, [entry])
        await session.commit()
        seqs.append(int((await session.execute(text("SELECT seq FROM audit_head"))).scalar_one()))
    return seqs


async def tamper(session: AsyncSession, sql: str, params: dict[str, Any] | None = None) -> None:
    """Run ``sql`` on the audit tables with the append-only triggers out of the way.

    What an intruder holding the tables' owner role could do: drop the guards, edit, put the
    guards back. DDL is transactional on both backends, so the test's rollback undoes it all.
    """
    await session.run_sync(lambda s: auditmigration.drop_guards(s.connection()))
    await session.execute(text(sql), params or {})
    await session.run_sync(lambda s: auditmigration.add_guards(s.connection()))


async def forge_entry(
    session: AsyncSession,
    tables: AuditTables,
    *,
    seq: int,
    prev_hash: str,
    fields: dict[str, Any] | None = None,
) -> str:
    """Insert a well-formed entry at ``seq`` chained to ``prev_hash``; return its hash."""
    from kernel.audittrail import entry_hash

    row = auditstore.new_entry(
        actor="intruder", action="test.forged", target_type="thing", target_id="forged"
    ) | (fields or {})
    row["hash"] = entry_hash(prev_hash, seq, row)
    row["seq"], row["prev_hash"] = seq, prev_hash
    await session.execute(insert(tables.entry).values(**row))
    return str(row["hash"])


async def verify_via_api(
    client: httpx.AsyncClient, prefix: str, headers: dict[str, str]
) -> dict[str, Any]:
    """GET ``{prefix}/verify`` as the holder of ``headers``; the JSON answer."""
    response = await client.get(f"{prefix}/verify", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def head_hash(session: AsyncSession, seq: int) -> str:
    """The stored hash of entry ``seq``."""
    found = await session.execute(text("SELECT hash FROM audit_entry WHERE seq = :s"), {"s": seq})
    return str(found.scalar_one())


def assert_break(result: dict[str, Any], seq: int, kind: str) -> None:
    """The verification names ``kind`` at ``seq`` as the first break."""
    assert result["ok"] is False, result
    assert result["first_break"]["seq"] == seq, result
    assert result["first_break"]["kind"] == kind, result


async def rewrite_from(
    session: AsyncSession, tables: AuditTables, seq: int, changes: dict[str, Any]
) -> None:
    """Edit entry ``seq`` and recompute every hash after it and the head's: a full rewrite.

    What someone holding the tables and knowing the (public) algorithm can do; only a head kept
    outside the database shows it.
    """
    from sqlalchemy import select, update

    from kernel.auditstore import fields_of
    from kernel.audittrail import entry_hash

    entry = tables.entry
    rows = (
        (await session.execute(select(entry).where(entry.c.seq >= seq).order_by(entry.c.seq)))
        .mappings()
        .all()
    )
    previous = str(rows[0]["prev_hash"])
    await session.run_sync(lambda s: auditmigration.drop_guards(s.connection()))
    for row in rows:
        fields = fields_of(row) | (changes if row["seq"] == seq else {})
        current = entry_hash(previous, int(row["seq"]), fields)
        await session.execute(
            update(entry)
            .where(entry.c.seq == row["seq"])
            .values(**fields, prev_hash=previous, hash=current)
        )
        previous = current
    await session.execute(update(tables.head).where(tables.head.c.id == 1).values(hash=previous))
    await session.run_sync(lambda s: auditmigration.add_guards(s.connection()))

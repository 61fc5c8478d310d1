"""Writing audit entries, always inside the caller's transaction (chained at its commit)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from credits.audit.models import TABLES
from kernel import auditstore
from kernel.auditapi import commit_query
from kernel.auditstore import actor_fields, digest
from kernel.problems import Forbidden, NotFound
from kernel.tokens import Principal

__all__ = [
    "actor_fields",
    "digest",
    "record",
    "record_many",
    "record_query",
    "refusals_recorded",
    "snapshot",
]


def snapshot(value: Any) -> dict[str, Any] | None:
    """What a digest covers: a dict, or a model's JSON form (pydantic and SQLModel alike)."""
    if value is None or isinstance(value, dict):
        return value
    if hasattr(value, "model_dump"):
        return dict(value.model_dump(mode="json"))
    return {"value": value}


def record(
    session: AsyncSession,
    *,
    actor: Principal | str,
    action: str,
    target_type: str,
    target_id: str,
    before: Any = None,
    after: Any = None,
    reason: str | None = None,
    outcome: str = "ok",
) -> dict[str, Any]:
    """Stage an audit entry on ``session``; it is chained and written when the change commits.

    A rollback (of the transaction or of the savepoint it was staged in) drops it.
    """
    entry = auditstore.new_entry(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        before=snapshot(before),
        after=snapshot(after),
        reason=reason,
        outcome=outcome,
    )
    auditstore.stage(session, TABLES, [entry])
    return entry


def record_many(session: AsyncSession, entries: list[dict[str, Any]]) -> None:
    """Stage many prepared entries (bulk imports) in one go."""
    auditstore.stage(session, TABLES, entries)


async def record_query(
    session: AsyncSession,
    *,
    actor: Principal,
    action: str,
    target_type: str,
    target_id: str,
    after: Any = None,
    reason: str | None = None,
    outcome: str = "ok",
) -> None:
    """Write a read to the trail at once (an auditor's query, a report, an export): reads
    commit nothing else, so the entry is committed here, before the answer goes out."""
    record(
        session,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        after=after,
        reason=reason,
        outcome=outcome,
    )
    await commit_query(session)


@asynccontextmanager
async def refusals_recorded(
    session: AsyncSession,
    *,
    actor: Principal,
    action: str,
    target_type: str,
    target_id: str,
) -> AsyncIterator[None]:
    """Around a query's access checks: a refusal is written to the trail before it is raised.

    A query that is answered is audited by its route; one refused (403) or told that what it
    asked for is not there (404, which also hides what the caller may not see) is audited here,
    with the reason, so that someone probing units or entries leaves a trace as an answered
    auditor does (issue 9: every auditor query is itself audited). Only reads precede the
    checks, so committing the entry commits nothing else.
    """
    try:
        yield
    except (Forbidden, NotFound) as refusal:
        await record_query(
            session,
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=target_id,
            reason=refusal.detail,
            outcome="refused" if isinstance(refusal, Forbidden) else "not_found",
        )
        raise

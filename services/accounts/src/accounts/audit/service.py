"""Writing audit entries, always inside the caller's transaction (chained at its commit)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from accounts.audit.models import TABLES
from kernel import auditstore
from kernel.auditstore import actor_fields, digest
from kernel.tokens import Principal

__all__ = ["actor_fields", "digest", "record", "record_many"]


def record(
    session: AsyncSession,
    *,
    actor: Principal | str,
    action: str,
    target_type: str,
    target_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
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
        before=before,
        after=after,
        reason=reason,
        outcome=outcome,
    )
    auditstore.stage(session, TABLES, [entry])
    return entry


def record_many(session: AsyncSession, entries: list[dict[str, Any]]) -> None:
    """Stage many prepared entries (bulk imports) in one go."""
    auditstore.stage(session, TABLES, entries)

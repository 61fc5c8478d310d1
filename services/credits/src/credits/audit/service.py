"""Writing audit entries, always inside the caller's transaction (chained at its commit)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from credits.audit.models import TABLES
from kernel import auditstore
from kernel.auditstore import actor_fields, digest
from kernel.tokens import Principal

__all__ = ["actor_fields", "digest", "record", "record_many", "snapshot"]


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

"""Writing audit entries, always inside the caller's transaction (chained at its commit)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from accounts.audit.models import TABLES
from kernel import auditstore
from kernel.requestid import current_request_id
from kernel.tokens import Principal


def digest(snapshot: dict[str, Any] | None) -> str | None:
    """SHA-256 of a snapshot in canonical JSON (snapshots hold masked data only)."""
    if snapshot is None:
        return None
    canonical = json.dumps(snapshot, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def actor_fields(actor: Principal | str) -> dict[str, Any]:
    """Who acted: a principal from a token, or a named system actor (``cli:<user>``)."""
    if isinstance(actor, Principal):
        return {
            "actor": actor.subject,
            "actor_kind": actor.kind,
            "actor_role": actor.roles[0] if actor.roles else None,
            "actor_unit": actor.unit,
        }
    return {"actor": actor, "actor_kind": "system", "actor_role": None, "actor_unit": None}


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
    entry = {
        "at": datetime.now(UTC),
        **actor_fields(actor),
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "before_digest": digest(before),
        "after_digest": digest(after),
        "reason": reason,
        "request_id": current_request_id(),
        "outcome": outcome,
    }
    auditstore.stage(session, TABLES, [entry])
    return entry


def record_many(session: AsyncSession, entries: list[dict[str, Any]]) -> None:
    """Stage many prepared entries (bulk imports) in one go."""
    auditstore.stage(session, TABLES, entries)

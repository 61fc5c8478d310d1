"""Writing audit entries, always inside the caller's transaction."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from accounts.audit.models import AuditEntry
from kernel.requestid import current_request_id
from kernel.tokens import Principal


def digest(snapshot: dict[str, Any] | None) -> str | None:
    """SHA-256 of a snapshot in canonical JSON (snapshots hold masked data only)."""
    if snapshot is None:
        return None
    canonical = json.dumps(snapshot, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


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
) -> AuditEntry:
    """Add an audit entry to ``session``; it commits or rolls back with the change."""
    if isinstance(actor, Principal):
        who, kind = actor.subject, actor.kind
        role = actor.roles[0] if actor.roles else None
        unit = actor.unit
    else:
        who, kind, role, unit = actor, "system", None, None
    entry = AuditEntry(
        actor=who,
        actor_kind=kind,
        actor_role=role,
        actor_unit=unit,
        action=action,
        target_type=target_type,
        target_id=target_id,
        before_digest=digest(before),
        after_digest=digest(after),
        reason=reason,
        request_id=current_request_id(),
        outcome=outcome,
    )
    session.add(entry)
    return entry

"""Revocation: when the credits behind an issued document are taken back, it stops standing.

What revokes what (docs/decisions.md):

- an achievement credential of a conversion, a certification or a completion award: when
  those credits are reversed (the conversion cancelled, the award taken back by a settlement);
- a snapshot of the whole record (PDF transcript, CLR): whenever anything it counted is taken
  back: any of the above, or a settlement that lowers the learner's earned credits (a record
  voided or rejected, a rule correction). New credits after its issue do not revoke it (it was
  true on its date), and neither does an expiry run (it said what was held then).

Revocation sets ``revoked_at``; the credential's bit in the published status list follows, as
the list is built from these rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from credits.audit import service as audit
from credits.credentials.models import IssuedDocument
from credits.ledger.service import Source

SNAPSHOT_KINDS = ("transcript", "clr")
PORTFOLIO = "portfolio"


async def revoke(
    session: AsyncSession,
    *,
    learner_id: uuid.UUID,
    subject_refs: Iterable[str] = (),
    snapshots: bool,
    reason: str,
) -> int:
    """Revoke the learner's standing documents about ``subject_refs`` (and their snapshots).

    Returns how many documents were revoked.
    """
    refs = sorted(set(subject_refs))
    matches = []
    if refs:
        matches.append(col(IssuedDocument.subject_ref).in_(refs))
    if snapshots:
        matches.append(col(IssuedDocument.kind).in_(SNAPSHOT_KINDS))
    if not matches:
        return 0
    result = await session.execute(
        update(IssuedDocument)
        .where(
            col(IssuedDocument.learner_id) == learner_id,
            col(IssuedDocument.revoked_at).is_(None),
            or_(*matches),
        )
        .values(revoked_at=datetime.now(UTC), revoked_reason=reason[:200])
        .execution_options(synchronize_session=False)
    )
    revoked = int(getattr(result, "rowcount", 0) or 0)
    if revoked:
        # a consequence of the change that took the credits back, in its transaction; who made
        # that change is in its own entry
        audit.record(
            session,
            actor="system:revocation",
            action="credential.revoke",
            target_type="learner",
            target_id=str(learner_id),
            after={"revoked": revoked, "subjects": refs, "snapshots": snapshots},
            reason=reason,
        )
    return revoked


async def after_settlement(
    session: AsyncSession, changes: Sequence[tuple[uuid.UUID, Sequence[Source]]]
) -> None:
    """Revoke what a settlement's provenance lines took back, learner by learner."""
    for learner, lines in changes:
        awards = {
            line.key for line in lines if line.key.startswith("completion:") and line.amount < 0
        }
        lowered = sum(line.amount for line in lines) < 0
        if awards or lowered:
            await revoke(
                session,
                learner_id=learner,
                subject_refs=awards,
                snapshots=True,
                reason="学分已更正（记录作废、驳回或规则更正） credits corrected by a settlement",
            )

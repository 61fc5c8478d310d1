"""The columns of a service's audit trail tables, declared once for every service.

Each service declares its own ``audit_entry`` and ``audit_head`` tables on its own metadata
(``class AuditEntry(AuditEntryColumns, Base, table=True)``), so each keeps its trail in its own
database. Columns are given by type, never as shared ``Column`` objects: a column belongs to
one table, and both services' models load in one process (the tests, the tools).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, String
from sqlmodel import Field, SQLModel

from kernel.audittrail import GENESIS

__all__ = ["AuditEntryColumns", "AuditHeadColumns"]


def _now() -> datetime:
    return datetime.now(UTC)


class AuditEntryColumns(SQLModel):
    """审计记录: who did what to which target, when, why and with what outcome.

    Time, actor, role, unit, action, target, digests, reason, request id, outcome, and the chain
    (``seq``, ``prev_hash``, ``hash``, set at commit by :mod:`kernel.auditstore`).
    """

    # bigint on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY
    id: int | None = Field(
        default=None, primary_key=True, sa_type=BigInteger().with_variant(Integer(), "sqlite")
    )
    seq: int = Field(sa_type=BigInteger(), nullable=False, unique=True)
    at: datetime = Field(
        default_factory=_now, sa_type=DateTime(timezone=True), nullable=False, index=True
    )
    actor: str = Field(max_length=80)
    actor_kind: str = Field(max_length=20)
    actor_role: str | None = Field(default=None, max_length=40)
    actor_unit: str | None = Field(default=None, max_length=40)
    action: str = Field(max_length=60, index=True)
    target_type: str = Field(max_length=40)
    target_id: str = Field(max_length=80, index=True)
    before_digest: str | None = Field(default=None, max_length=64)
    after_digest: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=300)
    request_id: str | None = Field(default=None, max_length=128)
    outcome: str = Field(default="ok", max_length=20)
    prev_hash: str = Field(sa_type=String(64), nullable=False)
    hash: str = Field(sa_type=String(64), nullable=False)


class AuditHeadColumns(SQLModel):
    """The chain's head (last entry written) and anchor (last entry purged): one row, id 1."""

    id: int = Field(default=1, primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int = Field(default=0, sa_type=BigInteger(), nullable=False)
    hash: str = Field(default=GENESIS, sa_type=String(64), nullable=False)
    anchor_seq: int = Field(default=0, sa_type=BigInteger(), nullable=False)
    anchor_hash: str = Field(default=GENESIS, sa_type=String(64), nullable=False)
    purging: bool = Field(default=False, sa_type=Boolean(), nullable=False)

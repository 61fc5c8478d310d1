"""The audit trail: who changed what, when and why (the audit issue adds the hash chain)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, DateTime, Integer
from sqlmodel import Field

from accounts.db import Base


def _now() -> datetime:
    return datetime.now(UTC)


class AuditEntry(Base, table=True):
    """审计记录: one state change, reveal or refused sign-in, written in the same transaction."""

    __tablename__ = "audit_entry"

    id: int | None = Field(
        default=None,
        # bigint on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    )
    at: datetime = Field(
        default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False)
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

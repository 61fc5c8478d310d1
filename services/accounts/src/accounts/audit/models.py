"""The audit trail: who changed what, when and why, hash-chained (kernel.audittrail)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Column, DateTime, Integer, String
from sqlmodel import Field

from accounts.db import Base
from kernel.auditstore import AuditTables
from kernel.audittrail import GENESIS


def _now() -> datetime:
    return datetime.now(UTC)


class AuditEntry(Base, table=True):
    """审计记录: one state change, reveal or refused sign-in, written in the same transaction.

    Append only (a trigger refuses UPDATE and DELETE outside a purge); ``seq``, ``prev_hash``
    and ``hash`` are set at commit by :mod:`kernel.auditstore`.
    """

    __tablename__ = "audit_entry"

    id: int | None = Field(
        default=None,
        # bigint on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    )
    seq: int = Field(sa_column=Column(BigInteger(), nullable=False, unique=True))
    at: datetime = Field(
        default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
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
    prev_hash: str = Field(sa_column=Column(String(64), nullable=False))
    hash: str = Field(sa_column=Column(String(64), nullable=False))


class AuditHead(Base, table=True):
    """The chain's head (last entry written) and anchor (last entry purged): one row, id 1."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: int = Field(default=1, sa_column=Column(Integer(), primary_key=True, autoincrement=False))
    seq: int = Field(default=0, sa_column=Column(BigInteger(), nullable=False))
    hash: str = Field(default=GENESIS, sa_column=Column(String(64), nullable=False))
    anchor_seq: int = Field(default=0, sa_column=Column(BigInteger(), nullable=False))
    anchor_hash: str = Field(default=GENESIS, sa_column=Column(String(64), nullable=False))
    purging: bool = Field(default=False, sa_column=Column(Boolean(), nullable=False))


TABLES = AuditTables(entry=AuditEntry.__table__, head=AuditHead.__table__)  # type: ignore[attr-defined]

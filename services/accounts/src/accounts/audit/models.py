"""The audit trail: who changed what, when and why, hash-chained (kernel.audittrail)."""

from __future__ import annotations

from sqlalchemy import CheckConstraint

from accounts.db import Base
from kernel.auditmodels import AuditEntryColumns, AuditHeadColumns
from kernel.auditstore import AuditTables


class AuditEntry(AuditEntryColumns, Base, table=True):
    """审计记录: one state change, reveal or refused sign-in, written in the same transaction.

    Append only (a trigger refuses UPDATE and DELETE outside a purge); ``seq``, ``prev_hash``
    and ``hash`` are set at commit by :mod:`kernel.auditstore`.
    """

    __tablename__ = "audit_entry"


class AuditHead(AuditHeadColumns, Base, table=True):
    """The chain's head (last entry written) and anchor (last entry purged): one row, id 1."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


TABLES = AuditTables(entry=AuditEntry.__table__, head=AuditHead.__table__)  # type: ignore[attr-defined]

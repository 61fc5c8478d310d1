"""Attendance (考勤) and learning records (学习记录), the normalised unit of learning."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    UniqueConstraint,
    text,
)
from sqlmodel import Field

from credits.db import Base

SOURCES = ("check_in", "staff_entry", "partner", "xapi", "import")
STATUSES = ("pending", "verified", "rejected", "voided")


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), nullable=nullable)


class Attendance(Base, table=True):
    """考勤: a resident's check-in (and check-out) at one session; one per resident per session."""

    __tablename__ = "attendance"
    __table_args__ = (
        UniqueConstraint("session_id", "learner_id"),
        # a learner's check-ins, latest first (also every lookup by learner)
        Index("ix_attendance_learner_checked_in", "learner_id", "checked_in_at", "id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    session_id: uuid.UUID = Field(foreign_key="activity_session.id", index=True)
    learner_id: uuid.UUID
    checked_in_at: datetime = Field(sa_column=_ts())
    checked_out_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    record_id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"),
            ForeignKey("learning_record.id"),
            nullable=True,
        ),
    )


class LearningRecord(Base, table=True):
    """学习记录: who learned what, where it came from, when, for how long, and its status.

    ``(source_client, external_id)`` is unique, so a partner's retry can never store twice.
    On PostgreSQL, triggers keep ``learner_day_minutes`` (live minutes per learner per Beijing
    day, not a model: only the database writes it) and refuse a partner row that would overlap
    a live stretch or take a day past 24 hours (migration ``7c4f2e9a1d36``).
    """

    __tablename__ = "learning_record"
    __table_args__ = (
        Index(
            "uq_learning_record_external",
            "source_client",
            "external_id",
            unique=True,
            sqlite_where=text("external_id IS NOT NULL"),
            postgresql_where=text("external_id IS NOT NULL"),
        ),
        Index("ix_learning_record_learner_started", "learner_id", "started_at"),
        Index("ix_learning_record_learner_newest", "learner_id", "id"),  # pages, newest first
        # statistics: a learning point's records of a period, read from the index alone
        Index(
            "ix_learning_record_host_started",
            "host_unit_path",
            "started_at",
            postgresql_include=[
                "learner_id",
                "minutes",
                "status",
                "source",
                "category_code",
                "mode",
            ],
        ),
        # the overlap check reads live stretches that end after a batch begins
        Index(
            "ix_learning_record_live_learner_ended",
            "learner_id",
            "ended_at",
            sqlite_where=text("status IN ('pending', 'verified')"),
            postgresql_where=text("status IN ('pending', 'verified')"),
        ),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    )
    learner_id: uuid.UUID
    activity_id: uuid.UUID = Field(foreign_key="activity.id", index=True)
    session_id: uuid.UUID | None = Field(default=None, foreign_key="activity_session.id")
    category_code: str = Field(max_length=40)
    mode: str = Field(max_length=10)
    host_unit_path: str = Field(max_length=400)
    source: str = Field(max_length=12)
    source_client: str | None = Field(default=None, max_length=60)
    external_id: str | None = Field(default=None, max_length=120)
    started_at: datetime = Field(sa_column=_ts())
    ended_at: datetime = Field(sa_column=_ts())
    minutes: int
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", max_length=10)
    status_changed_at: datetime = Field(default_factory=_now, sa_column=_ts())
    status_changed_by: str = Field(max_length=60)
    status_reason: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=_now, sa_column=_ts())


class RecordStatusChange(Base, table=True):
    """状态变更: who moved a record from one status to another, when and why (never deleted)."""

    __tablename__ = "record_status_change"

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    )
    record_id: int = Field(
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"),
            ForeignKey("learning_record.id"),
            nullable=False,
            index=True,
        )
    )
    from_status: str = Field(max_length=10)
    to_status: str = Field(max_length=10)
    changed_by: str = Field(max_length=60)
    changed_at: datetime = Field(default_factory=_now, sa_column=_ts())
    reason: str = Field(max_length=200)

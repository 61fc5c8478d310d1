"""Activities (课程/讲座/培训班/活动), their sessions, and enrolment (报名)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Index, String, text
from sqlmodel import Field

from credits.db import Base

KINDS = ("course", "lecture", "training_class", "activity", "online_course")
MODES = ("offline", "online", "blended")


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), nullable=nullable)


class Activity(Base, table=True):
    """学习活动: a course, lecture, training class, activity or online course hosted by a unit."""

    __tablename__ = "activity"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    title: str = Field(max_length=120)
    kind: str = Field(max_length=20)
    category_code: str = Field(foreign_key="activity_category.code", max_length=40)
    mode: str = Field(max_length=10)
    host_unit: str = Field(max_length=40)
    host_unit_path: str = Field(sa_column=Column(String(400), nullable=False, index=True))
    capacity: int | None = Field(default=None)
    # the partner platform (client id) that runs an online course and may post its hours
    partner_client: str | None = Field(default=None, max_length=60, index=True)
    enrol_closes_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    status: str = Field(default="open", max_length=10)
    created_by: str = Field(max_length=60)
    created_at: datetime = Field(default_factory=_now, sa_column=_ts())


class ActivitySession(Base, table=True):
    """活动场次: one meeting of an activity, with its times, place and planned minutes."""

    __tablename__ = "activity_session"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    activity_id: uuid.UUID = Field(foreign_key="activity.id", index=True)
    starts_at: datetime = Field(sa_column=_ts())
    ends_at: datetime = Field(sa_column=_ts())
    place: str | None = Field(default=None, max_length=120)
    planned_minutes: int


class Enrolment(Base, table=True):
    """报名: a resident's place on an activity (enrolled, waitlisted or cancelled).

    At most one live (not cancelled) enrolment per resident and activity, enforced by a partial
    unique index.
    """

    __tablename__ = "enrolment"
    __table_args__ = (
        Index(
            "uq_enrolment_live",
            "activity_id",
            "learner_id",
            unique=True,
            sqlite_where=text("status != 'cancelled'"),
            postgresql_where=text("status != 'cancelled'"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    activity_id: uuid.UUID = Field(foreign_key="activity.id", index=True)
    learner_id: uuid.UUID = Field(index=True)
    status: str = Field(max_length=12)
    enrolled_by: str = Field(max_length=60)
    # who cancelled: the resident, or staff on their behalf (NULL on rows from before staff could)
    cancelled_by: str | None = Field(default=None, max_length=60)
    created_at: datetime = Field(default_factory=_now, sa_column=_ts())
    changed_at: datetime = Field(default_factory=_now, sa_column=_ts())

"""Volunteer and part-time teacher service, and the units' assessment totals that cap points."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy import Column, Date, DateTime, Index, UniqueConstraint
from sqlmodel import Field

from credits.db import Base


def _now() -> datetime:
    return datetime.now(UTC)


class VolunteerService(Base, table=True):
    """志愿服务: a lecture given or an activity joined by a volunteer or part-time teacher.

    One entry per person, kind and session (or activity, for service outside sessions), so a
    repeated entry is refused rather than counted twice.
    """

    __tablename__ = "volunteer_service"
    __table_args__ = (
        UniqueConstraint("learner_id", "kind", "occasion"),
        Index("ix_volunteer_service_unit_path_served_on", "unit_path", "served_on"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    learner_id: uuid.UUID = Field(index=True)
    kind: str = Field(max_length=10)  # lecture | activity
    unit: str = Field(max_length=40)  # the unit whose assessment caps the points
    unit_path: str = Field(max_length=400)
    activity_id: uuid.UUID = Field(foreign_key="activity.id")
    session_id: uuid.UUID | None = Field(default=None, foreign_key="activity_session.id")
    # "session:<id>" or "activity:<id>": what makes an entry unique, NULL-free
    occasion: str = Field(max_length=60)
    served_on: date = Field(sa_column=Column(Date, nullable=False))
    minutes: int = Field(default=0)
    recorded_by: str = Field(max_length=60)
    recorded_at: datetime = Field(
        default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class UnitAssessment(Base, table=True):
    """考核总分: a unit's assessment total for a year; volunteer points are capped at a share."""

    __tablename__ = "unit_assessment"
    __table_args__ = (UniqueConstraint("unit", "year"),)

    id: int | None = Field(default=None, primary_key=True)
    unit: str = Field(max_length=40)
    year: int
    total_hundredths: int
    set_by: str = Field(max_length=60)
    set_at: datetime = Field(
        default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )

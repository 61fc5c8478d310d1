"""Shapes of volunteer service and unit assessment totals."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kernel.text import PlainText


class Strict(BaseModel):
    """Refuse unknown fields."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ServiceCreate(Strict):
    """A lecture given or an activity joined, entered by staff covering the activity."""

    learner: PlainText = Field(min_length=14, max_length=14, description="learning account number")
    kind: Literal["lecture", "activity"]
    activity: uuid.UUID
    session: uuid.UUID | None = None
    served_on: date | None = Field(default=None, description="defaults to the session's day")
    minutes: int = Field(default=0, ge=0, le=24 * 60, description="time served (statistics)")


class AssessmentSet(Strict):
    """A unit's assessment total for a year, in hundredths of a point."""

    total_hundredths: int = Field(ge=0, le=100_000_000)


class PointsPublic(BaseModel):
    """A volunteer's points for one unit and year, and how they were reached."""

    learner_id: uuid.UUID
    unit: str
    year: int
    lectures: int
    activities: int
    assessment_total_hundredths: int | None
    points_hundredths: int
    note: str | None = None


class ServicePublic(BaseModel):
    """One entry of volunteer service."""

    id: uuid.UUID
    learner_id: uuid.UUID
    kind: str
    unit: str
    activity_id: uuid.UUID
    session_id: uuid.UUID | None
    served_on: date
    minutes: int
    recorded_by: str
    recorded_at: datetime
    points: PointsPublic

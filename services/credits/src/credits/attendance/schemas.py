"""Shapes of attendance (考勤) as a learner's portfolio shows it."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field


class AttendancePublic(BaseModel):
    """One check-in: the session and activity, when, and the learning record it produced."""

    id: uuid.UUID
    session_id: uuid.UUID
    session_starts_at: datetime
    session_ends_at: datetime
    place: str | None
    activity_id: uuid.UUID
    activity_title: str
    category: str
    mode: str
    checked_in_at: datetime
    checked_out_at: datetime | None
    record_id: int | None = Field(description="the learning record check-out produced, if any")
    record_status: str | None
    minutes: int | None = Field(description="the minutes the record counts, if there is one")

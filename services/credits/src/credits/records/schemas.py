"""Shapes of learning records."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kernel.text import ReasonText


class RecordPublic(BaseModel):
    """A learning record as shown."""

    id: int
    learner_id: uuid.UUID
    activity_id: uuid.UUID
    session_id: uuid.UUID | None
    category: str
    mode: str
    source: str
    started_at: datetime
    ended_at: datetime
    minutes: int
    status: str
    evidence: dict[str, Any]


class HoursBucket(BaseModel):
    """Minutes of countable learning in one year, category and mode."""

    year: int
    category: str
    mode: str
    minutes: int
    records: int


class HoursSummary(BaseModel):
    """A learner's learning time as the credit rules count it, summed in the database.

    Verified records count, and pending ones from sources the rules in force take without a
    check (QR check-ins, partner platforms); those waiting for a staff check do not.
    """

    total_minutes: int
    online_minutes: int
    offline_minutes: int
    buckets: list[HoursBucket]


class StatusChangeRequest(BaseModel):
    """Verify, reject or void a record, always with a reason."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    status: Literal["verified", "rejected", "voided"]
    reason: ReasonText = Field(min_length=1, max_length=200)

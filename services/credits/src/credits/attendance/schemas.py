"""Shapes of attendance (考勤): staff-entered entries in with per-row results out, and a
learner's check-ins as the portfolio shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from kernel.text import PlainText

MAX_ENTRIES = 1000  # as many learners as one lookup resolves; a session that big is split


class AttendanceEntryItem(BaseModel):
    """One resident's attendance at the session."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    learner: PlainText = Field(
        min_length=1, max_length=40, description="learning account number (学习账号)"
    )
    minutes: int | None = Field(
        default=None, description="minutes attended; default: the session's planned minutes"
    )
    checked_in_at: AwareDatetime | None = None
    checked_out_at: AwareDatetime | None = None


class AttendanceEntryRequest(BaseModel):
    """A session's attendance as staff enter it."""

    model_config = ConfigDict(extra="forbid")

    entries: list[AttendanceEntryItem] = Field(min_length=1, max_length=MAX_ENTRIES)


class AttendanceRowError(BaseModel):
    """Why a row was refused: the field, in English and in Chinese."""

    field: str
    reason: str
    reason_zh: str


class AttendanceRowResult(BaseModel):
    """What became of one entry or sheet row."""

    index: int = Field(description="position among the entries or the sheet's data rows, from 0")
    row: int | None = Field(
        default=None, description="the sheet's row number (the header is row 1); uploads only"
    )
    learner: str | None
    name: str | None = Field(default=None, description="the name on the sheet, not stored")
    status: Literal["created", "duplicate", "rejected"]
    record_id: int | None = Field(
        default=None, description="the learning record made (created) or already there"
    )
    minutes: int | None = None
    errors: list[AttendanceRowError] = Field(default_factory=list)


class AttendanceEntryResult(BaseModel):
    """Per-row results of a session's entry and their counts.

    In a dry run nothing is written: ``created`` counts the rows that would be created.
    """

    session_id: uuid.UUID
    dry_run: bool
    file: str | None = None
    total: int
    created: int
    duplicates: int
    rejected: int
    results: list[AttendanceRowResult]


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

"""Request and response shapes of activities, sessions and enrolment."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from kernel.text import PlainText


def _has_utc_instant(moment: datetime) -> datetime:
    # stored as UTC: a time in year 1 east of Greenwich (or 9999 west of it) has no UTC form
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range") from None
    return moment


Instant = Annotated[AwareDatetime, AfterValidator(_has_utc_instant)]


class Strict(BaseModel):
    """Request bodies refuse unknown fields (no mass assignment)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SessionCreate(Strict):
    """One meeting of the activity."""

    starts_at: Instant
    ends_at: Instant
    place: PlainText | None = Field(default=None, max_length=120)
    planned_minutes: int | None = Field(default=None, gt=0, le=24 * 60)

    @model_validator(mode="after")
    def _interval(self) -> SessionCreate:
        length = (self.ends_at - self.starts_at).total_seconds() / 60
        if length <= 0:
            raise ValueError("ends_at must be after starts_at")
        if length < 1:  # planned minutes are whole and positive
            raise ValueError("a session lasts at least one minute")
        if length > 24 * 60:
            raise ValueError("a session lasts at most 24 hours")
        if self.planned_minutes is not None and self.planned_minutes > length:
            raise ValueError("planned_minutes cannot exceed the session's length")
        return self


class ActivityCreate(Strict):
    """A new activity hosted by the caller's unit (or a unit under it)."""

    title: PlainText = Field(min_length=1, max_length=120)
    kind: Literal["course", "lecture", "training_class", "activity", "online_course"]
    category: PlainText = Field(min_length=1, max_length=40)
    mode: Literal["offline", "online", "blended"]
    host_unit: PlainText | None = Field(default=None, max_length=40)
    capacity: int | None = Field(default=None, gt=0, le=100_000)
    enrol_closes_at: Instant | None = None
    partner: PlainText | None = Field(
        default=None, max_length=60, description="client id of the platform that posts its hours"
    )
    sessions: list[SessionCreate] = Field(default_factory=list, max_length=500)


class EnrolmentCreate(Strict):
    """Staff enrol a resident, named by learning account number."""

    learner: str = Field(
        min_length=14,
        max_length=14,
        pattern=r"^\d{13}[\dXx]$",
        description="the resident's learning account number (学习账号)",
    )


class SessionPublic(BaseModel):
    """A session as shown."""

    id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    place: str | None
    planned_minutes: int


class ActivityPublic(BaseModel):
    """An activity as shown, with its sessions and how full it is."""

    id: uuid.UUID
    title: str
    kind: str
    category: str
    mode: str
    host_unit: str
    partner: str | None
    capacity: int | None
    enrolled: int
    waitlisted: int
    enrol_closes_at: datetime | None
    status: str
    sessions: list[SessionPublic]


class EnrolmentPublic(BaseModel):
    """A resident's enrolment."""

    id: uuid.UUID
    activity_id: uuid.UUID
    learner_id: uuid.UUID
    status: str
    enrolled_by: str
    created_at: datetime

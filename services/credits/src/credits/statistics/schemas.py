"""Shapes of the statistics reports."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, Field


class UnitRef(BaseModel):
    """The unit a report covers (it and everything under it)."""

    key: str
    name: str | None
    path: str


class Rate(BaseModel):
    """A share: ``numerator / denominator`` (``rate`` is null when the denominator is unknown)."""

    numerator: int | None = Field(description="null when it could not be counted (see missing)")
    denominator: int | None
    rate: float | None
    denominator_source: str


class HoursLine(BaseModel):
    """Countable minutes of learning at activities hosted in the unit, by category and mode."""

    category: str
    category_name: str
    mode: str
    minutes: int
    hours: float
    records: int
    learners: int


class GroupHours(BaseModel):
    """Countable learning at activities hosted in the unit by the learners of one group, as the
    accounts service knows their groups (a learner may be in several groups, or in none: the
    lines do not add up to the whole)."""

    group: str
    group_name: str
    learners: int
    minutes: int
    hours: float
    records: int

    @classmethod
    def empty(cls, group: str, name: str) -> GroupHours:
        """A group with no learning in the report."""
        return cls(group=group, group_name=name, learners=0, minutes=0, hours=0.0, records=0)


class MissingFigure(BaseModel):
    """A figure the report could not give (it is null in the report), and why."""

    figure: str
    reason: str
    reason_zh: str


class CreditsFigures(BaseModel):
    """Credits issued (net of corrections) and converted (net of cancellations), hundredths."""

    issued_hundredths: int
    issued_for_hours_hundredths: int
    issued_for_completion_hundredths: int
    issued_for_certification_hundredths: int
    converted_hundredths: int
    conversion_cancelled_hundredths: int
    converted_net_hundredths: int
    conversions: int


class VolunteerYear(BaseModel):
    """Volunteer service in one calendar year of the period against the yearly target."""

    year: int
    volunteers: int
    minutes: int
    hours: float
    target_minutes: int
    volunteers_meeting_target: int


class SessionLine(BaseModel):
    """One session held, with its attendance."""

    session_id: uuid.UUID
    activity_id: uuid.UUID
    activity_title: str
    host_unit_path: str
    starts_at: datetime
    planned_minutes: int
    attendance: int


class ActivityFigures(BaseModel):
    """Activities and sessions held in the period, and attendance per session."""

    activities: int
    sessions: int
    planned_minutes: int
    attendance: int
    attendance_per_session: float | None
    max_attendance: int


class RegistrationFigures(BaseModel):
    """Learning accounts of residents of the unit, as the accounts service counts them."""

    registered: int
    active: int
    registered_in_period: int
    by_group: dict[str, int]


PARTICIPANTS = (
    "residents of the unit (and of the units under it) with at least one countable record in"
    " the period, wherever it was hosted: the participation rate's numerator (null when the"
    " accounts service could not say who lives there; see missing)"
)
LEARNERS = (
    "learners with at least one countable record in the period at activities hosted by the"
    " unit or under it, wherever they live"
)


class ReportFigures(BaseModel):
    """The credits service's own figures of a report: what a kept report holds."""

    participants: int | None = Field(description=PARTICIPANTS)
    learners: int = Field(description=LEARNERS)
    hours_by_category_mode: list[HoursLine]
    hours_by_group: list[GroupHours] | None
    missing: list[MissingFigure]
    credits: CreditsFigures
    volunteers: list[VolunteerYear]
    activities: ActivityFigures
    sessions: list[SessionLine]
    sessions_truncated: bool


AS_OF = "when the credits service read these figures (the registrations are read now)"
KEPT = (
    "true when the figures are a kept reading of this report (one that took long to read),"
    " given again until it is older than the service's keeping time; ask with fresh=true to"
    " read them now"
)


class UnitStatistics(BaseModel):
    """统计: one unit and everything under it, for one period (Beijing days, both included)."""

    unit: UnitRef
    period_from: date
    period_to: date
    population: int | None
    population_source: str
    participants: int | None = Field(description=PARTICIPANTS)
    learners: int = Field(description=LEARNERS)
    participation: Rate
    registrations: RegistrationFigures
    real_name_registration: Rate
    total_minutes: int
    hours_by_category_mode: list[HoursLine]
    hours_by_group: list[GroupHours] | None
    credits: CreditsFigures
    volunteers: list[VolunteerYear]
    activities: ActivityFigures
    sessions: list[SessionLine]
    sessions_truncated: bool
    missing: list[MissingFigure]
    as_of: datetime = Field(description=AS_OF)
    kept: bool = Field(description=KEPT)


class StarCandidate(BaseModel):
    """A learning star candidate: a learner's figures for the year and rank in their town."""

    town: str
    town_name: str | None
    rank: int
    learner_id: uuid.UUID
    credits_hundredths: int
    minutes: int
    hours: float


class StarCandidates(BaseModel):
    """百姓学习之星候选: the top learners per town for a year, by the rule in ``rule``."""

    unit: UnitRef
    year: int
    rule_version: str
    rule: dict[str, object]
    candidates: list[StarCandidate]
    as_of: datetime = Field(description="when the credits service read these candidates")
    kept: bool = Field(description=KEPT)

"""Rule sets as data: the shape college staff author, validated on the way in."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from credits.rules import engine
from credits.rules.incentives import PointScale
from kernel.text import PlainText, ReasonText

SOURCES = ("check_in", "staff_entry", "partner", "xapi", "import")


class Strict(BaseModel):
    """Refuse unknown fields: a typo in a rule is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ModeMinutes(Strict):
    """Minutes per credit by mode."""

    offline: int = Field(gt=0, le=100_000)
    online: int = Field(gt=0, le=100_000)
    blended: int = Field(gt=0, le=100_000)


class ModeMinutesPartial(Strict):
    """Overrides of minutes per credit for one category (modes left out keep the default)."""

    offline: int | None = Field(default=None, gt=0, le=100_000)
    online: int | None = Field(default=None, gt=0, le=100_000)
    blended: int | None = Field(default=None, gt=0, le=100_000)


class DayCaps(Strict):
    """Minutes a day that count, per (category, mode); None: no cap for that mode."""

    offline: int | None = Field(default=None, ge=0, le=24 * 60)
    online: int | None = Field(default=None, ge=0, le=24 * 60)
    blended: int | None = Field(default=None, ge=0, le=24 * 60)


class CompletionRule(Strict):
    """Award for attending a share of a course's sessions."""

    share_percent: int = Field(ge=1, le=100)
    award_hundredths: int = Field(ge=1, le=100_000)
    min_sessions: int = Field(default=1, ge=1, le=1000)
    kinds: list[Literal["course", "lecture", "training_class", "activity", "online_course"]] = (
        Field(min_length=1)
    )


class VolunteerScale(Strict):
    """Seed 001's incentive scale for volunteers and part-time teachers, in hundredths."""

    per_lecture_hundredths: int = Field(ge=0, le=10_000)
    per_activity_hundredths: int = Field(ge=0, le=10_000)
    cap_percent_of_assessment: int = Field(ge=0, le=100)


class RuleBody(Strict):
    """What one rule version says; every number in hundredths of a credit or in minutes."""

    minutes_per_credit: ModeMinutes
    category_minutes_per_credit: dict[str, ModeMinutesPartial] = Field(default_factory=dict)
    rounding: Literal["floor_cumulative"] = Field(
        default="floor_cumulative",
        description="round down to hundredths on the running total per category, mode and year",
    )
    day_minutes_cap: DayCaps = Field(default_factory=DayCaps)
    category_year_cap_hundredths: int | None = Field(default=None, ge=0, le=10_000_000)
    category_year_caps: dict[str, int] = Field(default_factory=dict)
    year_cap_hundredths: int | None = Field(default=None, ge=0, le=10_000_000)
    completion: CompletionRule | None = None
    verification_required: list[Literal[SOURCES]] = Field(default_factory=list)  # type: ignore[valid-type]
    expiry_years: int | None = Field(default=None, ge=1, le=100)
    volunteer_scale: VolunteerScale | None = None
    notes: dict[PlainText, ReasonText] = Field(
        default_factory=dict, description="why each number is what it is"
    )

    @model_validator(mode="after")
    def _caps_non_negative(self) -> RuleBody:
        for category, cap in self.category_year_caps.items():
            if cap < 0:
                raise ValueError(f"category_year_caps[{category}] must not be negative")
        return self


# the days a rule version may start and end on: Beijing midnights every day of these years
# has a UTC instant for (0001-01-01 has none), and the years units are assessed in
# (credits.incentives); bounded as statistics periods are
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)


class RuleVersionCreate(Strict):
    """A new draft rule version."""

    code: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: PlainText = Field(min_length=1, max_length=120)
    effective_from: date = Field(
        ge=FIRST_DAY, le=LAST_DAY, description="the first day it covers, 2000-01-01 to 2100-12-31"
    )
    effective_to: date | None = Field(
        default=None,
        ge=FIRST_DAY,
        le=LAST_DAY,
        description="the first day it no longer covers, 2000-01-01 to 2100-12-31",
    )
    body: RuleBody

    @model_validator(mode="after")
    def _dates(self) -> RuleVersionCreate:
        if self.effective_to is not None and self.effective_to <= self.effective_from:
            raise ValueError("effective_to must be after effective_from")
        return self


class RuleVersionPublic(BaseModel):
    """A rule version as shown."""

    id: int
    code: str
    version: int
    title: str
    status: str
    effective_from: date
    effective_to: date | None
    body: dict[str, Any]
    digest: str
    created_by: str
    created_at: datetime
    published_by: str | None
    published_at: datetime | None


class CorrectionRequest(Strict):
    """Publish a version that applies to days already credited, and settle the difference."""

    dry_run: bool = True
    reason: ReasonText = Field(min_length=1, max_length=200)


class BalanceChange(BaseModel):
    """How one learner's balance in one category would change (or changed)."""

    learner_id: str
    category: str
    before_hundredths: int
    after_hundredths: int
    delta_hundredths: int


class PointsChange(BaseModel):
    """How one volunteer's points of one unit and year would change (or changed)."""

    learner_id: str
    unit: str
    year: int
    before_hundredths: int
    after_hundredths: int
    delta_hundredths: int


class CorrectionResult(BaseModel):
    """What a correction changes: every balance, and the totals."""

    version_id: int
    dry_run: bool
    learners: int
    changes: list[BalanceChange]
    total_delta_hundredths: int
    point_changes: list[PointsChange] = Field(
        default_factory=list,
        description="volunteer points (kept apart from credits) of each learner, unit and year",
    )
    total_points_delta_hundredths: int = 0


def to_ruleset(
    *, version_id: int, effective_from: date, effective_to: date | None, body: dict[str, Any]
) -> engine.RuleSet:
    """Turn a stored rule body into what the engine reads."""
    parsed = RuleBody.model_validate(body)
    completion = parsed.completion
    return engine.RuleSet(
        version_id=version_id,
        effective_from=effective_from,
        effective_to=effective_to,
        minutes_per_credit=parsed.minutes_per_credit.model_dump(),
        category_minutes_per_credit={
            category: {m: v for m, v in modes.model_dump().items() if v is not None}
            for category, modes in parsed.category_minutes_per_credit.items()
        },
        day_minutes_cap={
            m: v for m, v in parsed.day_minutes_cap.model_dump().items() if v is not None
        },
        category_year_cap_hundredths=parsed.category_year_cap_hundredths,
        category_year_caps=dict(parsed.category_year_caps),
        year_cap_hundredths=parsed.year_cap_hundredths,
        completion=None
        if completion is None
        else engine.Completion(
            share_percent=completion.share_percent,
            award_hundredths=completion.award_hundredths,
            min_sessions=completion.min_sessions,
            kinds=frozenset(completion.kinds),
        ),
        verification_required=frozenset(parsed.verification_required),
        expiry_years=parsed.expiry_years,
    )


def point_scale(body: dict[str, Any]) -> PointScale | None:
    """The volunteer point scale of a stored rule body, if it has one."""
    scale = RuleBody.model_validate(body).volunteer_scale
    return None if scale is None else PointScale(**scale.model_dump())

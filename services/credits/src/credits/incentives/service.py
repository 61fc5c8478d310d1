"""Volunteer points (志愿服务积分): seed 001's scale, capped by the unit's assessment total,
kept in a point account of their own and settled like credits (the difference is posted)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from credits.activities.models import Activity, ActivitySession
from credits.incentives.models import UnitAssessment, VolunteerService
from credits.incentives.schemas import PointsPublic, ServiceCreate
from credits.ledger import service as ledger
from credits.ledger.models import CreditSource
from credits.ledger.service import Draft, Leg, Source
from credits.ledger.settlement import POINTS_CLAUSE
from credits.rules import engine, incentives
from credits.rules import service as rules
from credits.rules.schemas import point_scale
from kernel.access import WRITING_STAFF, covers
from kernel.clock import aware_utc
from kernel.problems import PROBLEMS, Conflict, DomainError, NotFound
from kernel.tokens import Principal


class ServiceRefused(DomainError):
    """The service entry names something that does not fit."""

    type = PROBLEMS + "volunteer-service-refused"
    status = 422
    title = "Volunteer service refused"


class AlreadyRecorded(Conflict):
    """This service was entered before."""

    type = PROBLEMS + "volunteer-service-recorded"
    title = "Already recorded"


# the years a unit's assessment total may be set for (the route's bounds), so points can count
FIRST_YEAR, LAST_YEAR = 2000, 2100


def _key(year: int, unit: str) -> str:
    return f"points:{year}:{unit}"


async def record_service(
    *, session: AsyncSession, principal: Principal, learner_id: uuid.UUID, data: ServiceCreate
) -> tuple[VolunteerService, PointsPublic]:
    """Keep one lecture or activity of a volunteer and settle the points it changes."""
    activity = await session.get(Activity, data.activity)
    if activity is None or not covers(principal, activity.host_unit_path, roles=WRITING_STAFF):
        raise NotFound(
            f"No activity {data.activity} that you may record service for.",
            detail_zh="找不到该活动，或无权为其登记志愿服务。",
        )
    served_on = data.served_on
    if data.session is not None:
        meeting = await session.get(ActivitySession, data.session)
        if meeting is None or meeting.activity_id != activity.id:
            raise ServiceRefused(
                "The session is not one of this activity's.", detail_zh="场次不属于该活动。"
            )
        served_on = served_on or engine.local_day(aware_utc(meeting.starts_at))
    if served_on is None:
        raise ServiceRefused(
            "Give the day served (served_on) or the session.", detail_zh="请填写服务日期或场次。"
        )
    if not FIRST_YEAR <= served_on.year <= LAST_YEAR:
        raise ServiceRefused(
            f"The day served must fall in {FIRST_YEAR} to {LAST_YEAR}, the years units are"
            " assessed in.",
            detail_zh=f"服务日期须在 {FIRST_YEAR} 至 {LAST_YEAR} 年之间。",
        )
    occasion = f"session:{data.session}" if data.session else f"activity:{activity.id}"
    entry = VolunteerService(
        learner_id=learner_id,
        kind=data.kind,
        unit=activity.host_unit,
        unit_path=activity.host_unit_path,
        activity_id=activity.id,
        session_id=data.session,
        occasion=occasion,
        served_on=served_on,
        minutes=data.minutes,
        recorded_by=principal.subject,
    )
    try:
        async with session.begin_nested():
            session.add(entry)
            await session.flush()
    except IntegrityError:
        raise AlreadyRecorded(
            "This lecture or activity of this volunteer is recorded already.",
            detail_zh="该志愿服务已登记，不能重复登记。",
        ) from None
    points = await settle_points(
        session,
        learner_id=learner_id,
        year=served_on.year,
        unit=activity.host_unit,
        actor=principal.subject,
    )
    return entry, points


async def _points(
    session: AsyncSession, *, learner_id: uuid.UUID, year: int, unit: str
) -> tuple[PointsPublic, int | None]:
    """What the scale gives the volunteer for the unit and year, and the rule version used."""
    counts = dict(
        (
            await session.execute(
                select(col(VolunteerService.kind), func.count())
                .where(
                    col(VolunteerService.learner_id) == learner_id,
                    col(VolunteerService.unit) == unit,
                    col(VolunteerService.served_on) >= date(year, 1, 1),
                    col(VolunteerService.served_on) < date(year + 1, 1, 1),
                )
                .group_by(col(VolunteerService.kind))
            )
        ).all()
    )
    assessment = (
        await session.execute(
            select(UnitAssessment).where(
                col(UnitAssessment.unit) == unit, col(UnitAssessment.year) == year
            )
        )
    ).scalar_one_or_none()
    day = date(year, 12, 31)
    stored = await rules.published(session)
    version = next((v for v in reversed(stored) if rules.as_ruleset(v).covers(day)), None)
    scale = point_scale(version.body) if version is not None else None
    lectures, activities = int(counts.get("lecture", 0)), int(counts.get("activity", 0))
    note, expected = None, 0
    if scale is None:
        note = "no rule version with a volunteer scale covers this year"
    elif assessment is None:
        note = "points wait for the unit's assessment total of the year (the cap)"
    else:
        expected = incentives.points_hundredths(
            lectures=lectures,
            activities=activities,
            assessment_total_hundredths=assessment.total_hundredths,
            scale=scale,
        )
    points = PointsPublic(
        learner_id=learner_id,
        unit=unit,
        year=year,
        lectures=lectures,
        activities=activities,
        assessment_total_hundredths=assessment.total_hundredths if assessment else None,
        points_hundredths=expected,
        note=note,
    )
    return points, version.id if version is not None else None


async def points_of(
    session: AsyncSession, *, learner_id: uuid.UUID, year: int, unit: str
) -> PointsPublic:
    """The volunteer's points for the unit and year (read only)."""
    return (await _points(session, learner_id=learner_id, year=year, unit=unit))[0]


async def settle_points(
    session: AsyncSession, *, learner_id: uuid.UUID, year: int, unit: str, actor: str
) -> PointsPublic:
    """Post the difference between the points the scale gives and those granted so far."""
    await ledger.lock_learners(session, [learner_id])
    points, version_id = await _points(session, learner_id=learner_id, year=year, unit=unit)
    key = _key(year, unit)
    granted = (
        await session.execute(
            select(func.coalesce(func.sum(col(CreditSource.amount_hundredths)), 0)).where(
                col(CreditSource.learner_id) == learner_id, col(CreditSource.key) == key
            )
        )
    ).scalar_one()
    delta = points.points_hundredths - int(granted)
    if delta:
        account = (await ledger.ensure_accounts(session, [(learner_id, "")], kind="points"))[
            (learner_id, "")
        ]
        issuer = await ledger.system_account(session, "points_issuing")
        side, other = ("credit", "debit") if delta > 0 else ("debit", "credit")
        await ledger.write(
            session,
            [
                Draft(
                    kind="points",
                    learner_id=learner_id,
                    created_by=actor,
                    legs=[Leg(account, side, abs(delta)), Leg(issuer, other, abs(delta))],
                    sources=[
                        Source(
                            key=key,
                            clause=POINTS_CLAUSE,
                            category="points",
                            earned_on=date(year, 12, 31),
                            amount=delta,
                            rule_version_id=version_id,
                        )
                    ],
                    reference=f"points:{unit}:{year}",
                    memo=f"{points.lectures} lectures, {points.activities} activities",
                )
            ],
        )
    return points


async def set_assessment(
    *, session: AsyncSession, unit: str, year: int, total: int, actor: str
) -> list[PointsPublic]:
    """Set a unit's assessment total and settle every volunteer of that unit and year."""
    found = (
        await session.execute(
            select(UnitAssessment).where(
                col(UnitAssessment.unit) == unit, col(UnitAssessment.year) == year
            )
        )
    ).scalar_one_or_none()
    if found is None:
        session.add(UnitAssessment(unit=unit, year=year, total_hundredths=total, set_by=actor))
    else:
        found.total_hundredths, found.set_by, found.set_at = total, actor, datetime.now(UTC)
    await session.flush()
    volunteers = (
        await session.execute(
            select(col(VolunteerService.learner_id))
            .where(
                col(VolunteerService.unit) == unit,
                col(VolunteerService.served_on) >= date(year, 1, 1),
                col(VolunteerService.served_on) < date(year + 1, 1, 1),
            )
            .group_by(col(VolunteerService.learner_id))
            .order_by(col(VolunteerService.learner_id))
        )
    ).scalars()
    return [
        await settle_points(session, learner_id=v, year=year, unit=unit, actor=actor)
        for v in list(volunteers)
    ]

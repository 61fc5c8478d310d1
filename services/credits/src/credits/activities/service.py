"""Activities and enrolment: capacity with a waitlist that moves up on cancellation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from credits import learners
from credits.activities.models import Activity, ActivitySession, Enrolment
from credits.activities.schemas import (
    ActivityCreate,
    ActivityPublic,
    EnrolmentPublic,
    SessionPublic,
)
from credits.catalogue.models import ActivityCategory
from kernel import text
from kernel.clock import aware, aware_utc
from kernel.problems import PROBLEMS, Conflict, DomainError, NotFound, ServiceUnavailable


class ActivityNotFound(NotFound):
    """No activity, or none the caller may see."""

    type = PROBLEMS + "activity-not-found"
    title = "Activity not found"


class InvalidActivity(DomainError):
    """The activity cannot be created as asked."""

    type = PROBLEMS + "invalid-activity"
    status = 422
    title = "Invalid activity"


class InvalidEnrolment(DomainError):
    """The enrolment request is incomplete (staff must name the resident)."""

    type = PROBLEMS + "invalid-enrolment"
    status = 422
    title = "Invalid enrolment"


class EnrolmentClosed(Conflict):
    """Enrolment has closed or the activity is not open."""

    type = PROBLEMS + "enrolment-closed"
    title = "Enrolment closed"


class AlreadyEnrolled(Conflict):
    """The resident is already enrolled or on the waitlist."""

    type = PROBLEMS + "already-enrolled"
    title = "Already enrolled"


async def unit_path(accounts: httpx.AsyncClient, key: str) -> str | None:
    """The unit's path in the school network, from the accounts service's public API."""
    try:
        response = await accounts.get(f"/api/v1/units/{key}", timeout=5.0)
        if response.status_code == 404:
            return None
        response.raise_for_status()  # an error answer is as unreadable as no answer
    except httpx.HTTPError:
        raise ServiceUnavailable(
            "The school network cannot be read right now; try again.",
            detail_zh="暂时无法读取办学网络，请稍后再试。",
        ) from None
    path = response.json().get("path")
    return path if isinstance(path, str) else None


async def create_activity(
    *,
    session: AsyncSession,
    accounts: httpx.AsyncClient,
    data: ActivityCreate,
    staff_unit: str,
    staff_path: str,
    actor: str,
) -> Activity:
    """Create an activity in the staff's unit or below, with its sessions."""
    if await session.get(ActivityCategory, data.category) is None:
        raise InvalidActivity(f"Unknown category {data.category!r}; see GET /api/v1/categories.")
    host, path = staff_unit, staff_path
    if data.host_unit is not None and data.host_unit != staff_unit:
        found = await unit_path(accounts, data.host_unit)
        if found is None or not found.startswith(staff_path):
            raise InvalidActivity(
                f"No unit {data.host_unit!r} within yours.",
                detail_zh="主办单位不在您的管理范围内。",
            )
        host, path = data.host_unit, found
    activity = Activity(
        title=data.title,
        kind=data.kind,
        category_code=data.category,
        mode=data.mode,
        host_unit=host,
        host_unit_path=path,
        capacity=data.capacity,
        enrol_closes_at=data.enrol_closes_at.astimezone(UTC) if data.enrol_closes_at else None,
        partner_client=data.partner,
        created_by=actor,
    )
    session.add(activity)
    for item in data.sessions:
        length = int((item.ends_at - item.starts_at).total_seconds() // 60)
        session.add(
            ActivitySession(
                activity_id=activity.id,
                # stored as UTC: SQLite keeps a timestamp's digits and drops its offset
                starts_at=item.starts_at.astimezone(UTC),
                ends_at=item.ends_at.astimezone(UTC),
                place=item.place,
                planned_minutes=item.planned_minutes or length,
            )
        )
    await session.flush()
    return activity


async def public_view(session: AsyncSession, activity: Activity) -> ActivityPublic:
    """The activity with its sessions and counts."""
    sessions = (
        (
            await session.execute(
                select(ActivitySession)
                .where(col(ActivitySession.activity_id) == activity.id)
                .order_by(col(ActivitySession.starts_at))
            )
        )
        .scalars()
        .all()
    )
    counts = dict(
        (
            await session.execute(
                select(col(Enrolment.status), func.count())
                .where(col(Enrolment.activity_id) == activity.id)
                .group_by(col(Enrolment.status))
            )
        ).all()
    )
    return ActivityPublic(
        id=activity.id,
        title=activity.title,
        kind=activity.kind,
        category=activity.category_code,
        mode=activity.mode,
        host_unit=activity.host_unit,
        partner=activity.partner_client,
        capacity=activity.capacity,
        enrolled=int(counts.get("enrolled", 0)),
        waitlisted=int(counts.get("waitlisted", 0)),
        enrol_closes_at=aware(activity.enrol_closes_at),
        status=activity.status,
        sessions=[
            SessionPublic(
                id=s.id,
                starts_at=aware_utc(s.starts_at),
                ends_at=aware_utc(s.ends_at),
                place=s.place,
                planned_minutes=s.planned_minutes,
            )
            for s in sessions
        ],
    )


async def _locked_activity(session: AsyncSession, activity_id: uuid.UUID) -> Activity:
    # the row lock serialises enrolments of one activity, so capacity is never overrun
    activity = (
        await session.execute(
            select(Activity).where(col(Activity.id) == activity_id).with_for_update()
        )
    ).scalar_one_or_none()
    if activity is None:
        raise ActivityNotFound(f"No activity {activity_id}.", detail_zh="找不到该活动。")
    return activity


async def enrol(
    *, session: AsyncSession, activity_id: uuid.UUID, learner_id: uuid.UUID, actor: str
) -> Enrolment:
    """Enrol, or join the waitlist when the activity is full.

    ``actor`` is who asks: the resident themselves, or staff enrolling on their behalf.
    """
    activity = await _locked_activity(session, activity_id)
    closes = aware(activity.enrol_closes_at)
    if activity.status != "open" or (closes is not None and closes < datetime.now(UTC)):
        raise EnrolmentClosed(
            "Enrolment for this activity has closed.", detail_zh="该活动报名已截止。"
        )
    enrolled = (
        await session.execute(
            select(func.count()).where(
                col(Enrolment.activity_id) == activity_id, col(Enrolment.status) == "enrolled"
            )
        )
    ).scalar_one()
    full = activity.capacity is not None and enrolled >= activity.capacity
    enrolment = Enrolment(
        activity_id=activity_id,
        learner_id=learner_id,
        status="waitlisted" if full else "enrolled",
        enrolled_by=actor,
    )
    try:
        # added inside the savepoint, so a refused row leaves the session as it was
        async with session.begin_nested():
            session.add(enrolment)
            await session.flush()
    except IntegrityError:
        if actor != str(learner_id):  # staff enrolling on the resident's behalf
            raise AlreadyEnrolled(
                "This resident is already enrolled or on the waitlist.",
                detail_zh="该居民已报名或在候补名单中。",
            ) from None
        raise AlreadyEnrolled(
            "You are already enrolled or on the waitlist.", detail_zh="您已报名或在候补名单中。"
        ) from None
    return enrolment


async def cancel(
    *, session: AsyncSession, activity_id: uuid.UUID, learner_id: uuid.UUID, actor: str
) -> Enrolment | None:
    """Cancel the live enrolment; the first on the waitlist moves up. Returns who moved up.

    ``actor`` is who asks: the resident themselves, or staff cancelling on their behalf.
    """
    await _locked_activity(session, activity_id)
    live = (
        await session.execute(
            select(Enrolment).where(
                col(Enrolment.activity_id) == activity_id,
                col(Enrolment.learner_id) == learner_id,
                col(Enrolment.status) != "cancelled",
            )
        )
    ).scalar_one_or_none()
    if live is None:
        if actor != str(learner_id):
            raise NotFound(
                "This resident has no enrolment on this activity.",
                detail_zh="该居民没有报名该活动。",
            )
        raise NotFound("You have no enrolment on this activity.", detail_zh="您没有报名该活动。")
    was_enrolled = live.status == "enrolled"
    live.status, live.changed_at, live.cancelled_by = "cancelled", datetime.now(UTC), actor
    await session.flush()
    if not was_enrolled:
        return None
    first = (
        await session.execute(
            select(Enrolment)
            .where(col(Enrolment.activity_id) == activity_id, col(Enrolment.status) == "waitlisted")
            .order_by(col(Enrolment.created_at), col(Enrolment.id))
            .limit(1)
        )
    ).scalar_one_or_none()
    if first is not None:
        first.status, first.changed_at = "enrolled", datetime.now(UTC)
        await session.flush()
    return first


async def covered_activity(
    session: AsyncSession, activity_id: uuid.UUID, staff_path: str
) -> Activity:
    """The activity, when its host unit is within the staff's unit; otherwise 404."""
    activity = await session.get(Activity, activity_id)
    if activity is None or not activity.host_unit_path.startswith(staff_path):
        raise ActivityNotFound(
            f"No activity {activity_id} hosted within your unit.", detail_zh="找不到该活动。"
        )
    return activity


async def enrol_for(
    *,
    session: AsyncSession,
    accounts: httpx.AsyncClient,
    authorization: str,
    activity_id: uuid.UUID,
    account_number: str,
    staff_path: str,
    actor: str,
) -> Enrolment:
    """Staff covering the activity's host unit enrol a resident by learning account number.

    The same rules as a resident's own enrolment (:func:`enrol`): open, before the closing
    date, once, onto the waitlist when full. ``enrolled_by`` records the staff member.
    """
    await covered_activity(session, activity_id, staff_path)
    learner_id = await learners.resolve_learner(accounts, authorization, account_number)
    return await enrol(session=session, activity_id=activity_id, learner_id=learner_id, actor=actor)


async def cancel_for(
    *,
    session: AsyncSession,
    accounts: httpx.AsyncClient,
    authorization: str,
    activity_id: uuid.UUID,
    account_number: str,
    staff_path: str,
    actor: str,
) -> Enrolment | None:
    """Staff covering the activity's host unit cancel a resident's enrolment (:func:`cancel`).

    A closed or frozen account can still be taken off the list. Returns who moved up.
    """
    await covered_activity(session, activity_id, staff_path)
    number = text.account_number(account_number)
    found = (await learners.lookup_learners(accounts, authorization, [number])).get(number)
    if found is None:  # no such account, so no enrolment of it either
        raise NotFound(
            "This resident has no enrolment on this activity.", detail_zh="该居民没有报名该活动。"
        )
    return await cancel(session=session, activity_id=activity_id, learner_id=found[0], actor=actor)


def enrolment_public(enrolment: Enrolment) -> EnrolmentPublic:
    """The API view of an enrolment."""
    return EnrolmentPublic(
        id=enrolment.id,
        activity_id=enrolment.activity_id,
        learner_id=enrolment.learner_id,
        status=enrolment.status,
        enrolled_by=enrolment.enrolled_by,
        created_at=aware_utc(enrolment.created_at),
    )


async def enrolments_of(*, session: AsyncSession, learner_id: uuid.UUID) -> list[EnrolmentPublic]:
    """The learner's enrolments, live and cancelled, oldest first."""
    rows = await session.execute(
        select(Enrolment)
        .where(col(Enrolment.learner_id) == learner_id)
        .order_by(col(Enrolment.created_at), col(Enrolment.id))
    )
    return [enrolment_public(e) for e in rows.scalars()]

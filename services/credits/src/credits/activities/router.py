"""Routes of activities and enrolment."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from credits.activities import service
from credits.activities.models import Activity, Enrolment
from credits.activities.schemas import (
    ActivityCreate,
    ActivityPublic,
    EnrolmentCreate,
    EnrolmentPublic,
)
from credits.audit import service as audit
from credits.learners import VisibleLearner
from kernel.access import WRITING_STAFF, require_resident, require_staff
from kernel.auth import CurrentPrincipal
from kernel.clock import aware_utc
from kernel.db import SessionDep
from kernel.pagination import (
    Page,
    PageDep,
    encode_cursor,
    older_than_cursor,
)
from kernel.problems import Forbidden
from kernel.text import CONTROL_FREE
from kernel.tokens import Principal

router = APIRouter(prefix="/api/v1", tags=["activities"])


@router.post("/activities", response_model=ActivityPublic, status_code=201)
async def create_activity(
    body: ActivityCreate, request: Request, principal: CurrentPrincipal, session: SessionDep
) -> ActivityPublic:
    """Create an activity hosted by the caller's unit (or a unit under it), with sessions."""
    path = require_staff(principal, WRITING_STAFF)
    assert principal.unit is not None
    activity = await service.create_activity(
        session=session,
        accounts=request.app.state.accounts,
        data=body,
        staff_unit=principal.unit,
        staff_path=path,
        actor=principal.subject,
    )
    audit.record(
        session,
        actor=principal,
        action="activity.create",
        target_type="activity",
        target_id=str(activity.id),
        after=body,
    )
    await session.commit()
    return await service.public_view(session, activity)


@router.get("/activities", response_model=Page[ActivityPublic])
async def list_activities(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    category: Annotated[str | None, Query(max_length=40, pattern=CONTROL_FREE)] = None,
    host_unit: Annotated[str | None, Query(max_length=40, pattern=CONTROL_FREE)] = None,
) -> Page[ActivityPublic]:
    """Open activities, newest first, optionally by category or host unit."""
    del principal  # any signed-in caller may browse the catalogue
    query = select(Activity).where(col(Activity.status) == "open")
    if category:
        query = query.where(col(Activity.category_code) == category)
    if host_unit:
        query = query.where(col(Activity.host_unit) == host_unit)
    if page.cursor:
        query = query.where(
            older_than_cursor(
                page.cursor, col(Activity.created_at), col(Activity.id), at_key="before"
            )
        )
    rows = (
        (
            await session.execute(
                query.order_by(col(Activity.created_at).desc(), col(Activity.id).desc()).limit(
                    page.limit + 1
                )
            )
        )
        .scalars()
        .all()
    )
    items = [await service.public_view(session, a) for a in rows[: page.limit]]
    more = len(rows) > page.limit
    cursor = None
    if more:
        last_shown = rows[page.limit - 1]
        cursor = encode_cursor(
            {"before": aware_utc(last_shown.created_at).isoformat(), "id": str(last_shown.id)}
        )
    return Page[ActivityPublic](items=items, next_cursor=cursor)


@router.get("/activities/{activity_id}", response_model=ActivityPublic)
async def get_activity(
    activity_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> ActivityPublic:
    """One activity with its sessions and how full it is."""
    del principal
    activity = await session.get(Activity, activity_id)
    if activity is None:
        raise service.ActivityNotFound(f"No activity {activity_id}.", detail_zh="找不到该活动。")
    return await service.public_view(session, activity)


@router.post(
    "/activities/{activity_id}/enrolments", response_model=EnrolmentPublic, status_code=201
)
async def enrol(
    activity_id: uuid.UUID,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    body: EnrolmentCreate | None = None,
) -> EnrolmentPublic:
    """Enrol in the activity (or join the waitlist when it is full).

    A resident enrols themselves and sends no body. Staff covering the activity's host unit
    enrol a resident on their behalf with ``{"learner": "<learning account number>"}``; the
    same rules apply (open, before the closing date, once), and the enrolment records who
    enrolled them.
    """
    if principal.kind == "resident":
        if body is not None:
            raise Forbidden(
                "Residents enrol themselves only; send no body.", detail_zh="居民只能为本人报名。"
            )
        learner = uuid.UUID(require_resident(principal))
        enrolment = await service.enrol(
            session=session, activity_id=activity_id, learner_id=learner, actor=principal.subject
        )
    else:
        path = require_staff(principal, WRITING_STAFF)
        if body is None:
            raise service.InvalidEnrolment(
                'Name the resident to enrol: {"learner": "<learning account number>"}.',
                detail_zh="请填写要报名居民的学习账号。",
            )
        enrolment = await service.enrol_for(
            session=session,
            accounts=request.app.state.accounts,
            authorization=request.headers["authorization"],
            activity_id=activity_id,
            account_number=body.learner,
            staff_path=path,
            actor=principal.subject,
        )
    audit.record(
        session,
        actor=principal,
        action="enrolment.create",
        target_type="enrolment",
        target_id=str(enrolment.id),
        after=service.enrolment_public(enrolment),
    )
    await session.commit()
    return service.enrolment_public(enrolment)


def _audit_cancel(
    session: AsyncSession,
    principal: Principal,
    activity_id: uuid.UUID,
    cancelled: dict[str, str],
    moved_up: Enrolment | None,
) -> None:
    """The cancellation, and the enrolment it moved up from the waitlist: that one changed
    too, so it has an entry of its own, under its own id."""
    audit.record(
        session,
        actor=principal,
        action="enrolment.cancel",
        target_type="activity",
        target_id=str(activity_id),
        after=cancelled,
    )
    if moved_up is not None:
        audit.record(
            session,
            actor=principal,
            action="enrolment.move_up",
            target_type="enrolment",
            target_id=str(moved_up.id),
            before={"status": "waitlisted"},  # the first on the waitlist is who moves up
            after=service.enrolment_public(moved_up),
            reason="a place was freed by a cancellation",
        )


@router.delete("/activities/{activity_id}/enrolments/me", status_code=204)
async def cancel(activity_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep) -> None:
    """The resident cancels; the first on the waitlist moves up."""
    learner = uuid.UUID(require_resident(principal))
    moved_up = await service.cancel(
        session=session, activity_id=activity_id, learner_id=learner, actor=principal.subject
    )
    _audit_cancel(session, principal, activity_id, {"learner": str(learner)}, moved_up)
    await session.commit()


# declared after /enrolments/me, which it would otherwise shadow ("me" is never a number)
@router.delete("/activities/{activity_id}/enrolments/{account_number}", status_code=204)
async def cancel_for(
    activity_id: uuid.UUID,
    account_number: Annotated[str, Path(min_length=14, max_length=14, pattern=r"^\d{13}[\dXx]$")],
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> None:
    """Staff covering the activity's host unit cancel a resident's enrolment (by learning
    account number); the first on the waitlist moves up, as when the resident cancels."""
    path = require_staff(principal, WRITING_STAFF)
    moved_up = await service.cancel_for(
        session=session,
        accounts=request.app.state.accounts,
        authorization=request.headers["authorization"],
        activity_id=activity_id,
        account_number=account_number,
        staff_path=path,
        actor=principal.subject,
    )
    _audit_cancel(session, principal, activity_id, {"account_number": account_number}, moved_up)
    await session.commit()


@router.get("/me/enrolments", response_model=list[EnrolmentPublic])
async def my_enrolments(principal: CurrentPrincipal, session: SessionDep) -> list[EnrolmentPublic]:
    """The resident's enrolments, live and cancelled."""
    learner = uuid.UUID(require_resident(principal))
    return await service.enrolments_of(session=session, learner_id=learner)


@router.get("/learners/{learner_id}/enrolments", response_model=list[EnrolmentPublic])
async def learner_enrolments(learner: VisibleLearner, session: SessionDep) -> list[EnrolmentPublic]:
    """A learner's enrolments, live and cancelled (staff covering the learner, auditors)."""
    return await service.enrolments_of(session=session, learner_id=learner)

"""Routes of volunteer service and points: staff enter service, the college sets the cap."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request
from sqlmodel import col, select

from credits.activities.service import unit_path
from credits.audit import service as audit
from credits.incentives import service
from credits.incentives.models import VolunteerService
from credits.incentives.schemas import AssessmentSet, PointsPublic, ServiceCreate, ServicePublic
from credits.learners import resolve_learner
from kernel.access import WRITING_STAFF, covers, require_resident, require_staff
from kernel.auth import CurrentPrincipal
from kernel.clock import aware_utc
from kernel.db import SessionDep
from kernel.problems import NotFound
from kernel.roles import COLLEGE_STAFF, DISTRICT_ADMIN
from kernel.text import CONTROL_FREE

router = APIRouter(prefix="/api/v1", tags=["volunteer points"])


def _public(entry: VolunteerService, points: PointsPublic) -> ServicePublic:
    return ServicePublic(
        id=entry.id,
        learner_id=entry.learner_id,
        kind=entry.kind,
        unit=entry.unit,
        activity_id=entry.activity_id,
        session_id=entry.session_id,
        served_on=entry.served_on,
        minutes=entry.minutes,
        recorded_by=entry.recorded_by,
        recorded_at=aware_utc(entry.recorded_at),
        points=points,
    )


@router.post("/volunteer-service", response_model=ServicePublic, status_code=201)
async def record(
    body: ServiceCreate, request: Request, principal: CurrentPrincipal, session: SessionDep
) -> ServicePublic:
    """A lecture given (+1 point) or an activity joined (+0.1) by a volunteer or part-time
    teacher (seed 001), entered by staff covering the activity; points settle at once."""
    require_staff(principal, WRITING_STAFF)
    learner = await resolve_learner(
        request.app.state.accounts, request.headers["authorization"], body.learner
    )
    entry, points = await service.record_service(
        session=session, principal=principal, learner_id=learner, data=body
    )
    audit.record(
        session,
        actor=principal,
        action="volunteer_service.create",
        target_type="volunteer_service",
        target_id=str(entry.id),
        after=body,
    )
    await session.commit()
    return _public(entry, points)


@router.put("/unit-assessments/{unit}/{year}", response_model=list[PointsPublic])
async def set_assessment(
    unit: Annotated[str, Path(max_length=40, pattern=CONTROL_FREE)],
    year: Annotated[int, Path(ge=service.FIRST_YEAR, le=service.LAST_YEAR)],
    body: AssessmentSet,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> list[PointsPublic]:
    """Set a unit's assessment total for a year (the college); every volunteer's points of
    that unit and year are settled against the new cap in the same transaction."""
    require_staff(principal, (COLLEGE_STAFF, DISTRICT_ADMIN))
    path = await unit_path(request.app.state.accounts, unit)
    if path is None or not covers(principal, path, roles=(COLLEGE_STAFF, DISTRICT_ADMIN)):
        raise NotFound(f"No unit {unit} that you may assess.", detail_zh="找不到该单位。")
    settled, previous = await service.set_assessment(
        session=session, unit=unit, year=year, total=body.total_hundredths, actor=principal.subject
    )
    audit.record(
        session,
        actor=principal,
        action="unit_assessment.set",
        target_type="unit_assessment",
        target_id=str(f"{unit}/{year}"),
        before=None if previous is None else {"total_hundredths": previous},
        after={
            "total_hundredths": body.total_hundredths,
            "points": [p.model_dump(mode="json") for p in settled],
        },
    )
    await session.commit()
    return settled


@router.get("/me/volunteer-service", response_model=list[ServicePublic])
async def my_service(principal: CurrentPrincipal, session: SessionDep) -> list[ServicePublic]:
    """The resident's volunteer service with the points of each unit and year."""
    learner = uuid.UUID(require_resident(principal))
    entries = list(
        (
            await session.execute(
                select(VolunteerService)
                .where(col(VolunteerService.learner_id) == learner)
                .order_by(col(VolunteerService.served_on).desc())
            )
        ).scalars()
    )
    points: dict[tuple[str, int], PointsPublic] = {}
    for entry in entries:
        slot = (entry.unit, entry.served_on.year)
        if slot not in points:
            points[slot] = await service.points_of(
                session, learner_id=learner, year=slot[1], unit=slot[0]
            )
    return [_public(e, points[(e.unit, e.served_on.year)]) for e in entries]

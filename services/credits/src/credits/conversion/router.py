"""Routes of conversion: targets for everyone, applications by residents, decisions by the
college (approval with an Idempotency-Key), cancellation within the window."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from sqlmodel import col, select

from credits.audit import service as audit
from credits.conversion import service
from credits.conversion.models import Conversion, ConversionTarget
from credits.conversion.schemas import (
    CancelRequest,
    ConversionApply,
    ConversionPublic,
    Decision,
    TargetPublic,
)
from credits.learners import VisibleLearner, covers_learner
from kernel.access import READING_STAFF, require_resident, require_staff
from kernel.auth import CurrentPrincipal
from kernel.db import SessionDep
from kernel.pagination import Page, PageDep, cursor_uuid, encode_cursor
from kernel.problems import Forbidden
from kernel.roles import COLLEGE_STAFF, DISTRICT_ADMIN

router = APIRouter(prefix="/api/v1", tags=["conversion"])

DECIDERS = (COLLEGE_STAFF, DISTRICT_ADMIN)


@router.get("/conversion-targets", response_model=list[TargetPublic])
async def targets(session: SessionDep) -> list[TargetPublic]:
    """What credits can be converted into, and the price of each unit."""
    rows = await session.execute(
        select(ConversionTarget)
        .where(col(ConversionTarget.active))
        .order_by(col(ConversionTarget.code))
    )
    return [service.target_public(t) for t in rows.scalars()]


@router.post("/conversions", response_model=ConversionPublic, status_code=201)
async def apply(
    body: ConversionApply, principal: CurrentPrincipal, session: SessionDep
) -> ConversionPublic:
    """A resident applies to convert credits; the college reviews it."""
    learner = uuid.UUID(require_resident(principal))
    unit_path = str(principal.claims.get("unit_path") or "/")
    conversion = await service.apply(
        session=session, learner_id=learner, unit_path=unit_path, data=body, actor=principal.subject
    )
    audit.record(
        session,
        actor=principal,
        action="conversion.apply",
        target_type="conversion",
        target_id=str(conversion.id),
        after=body,
    )
    await session.commit()
    return service.to_public(conversion)


@router.get("/me/conversions", response_model=list[ConversionPublic])
async def my_conversions(
    principal: CurrentPrincipal, session: SessionDep
) -> list[ConversionPublic]:
    """The resident's conversions, newest first."""
    learner = uuid.UUID(require_resident(principal))
    return await service.conversions_of(session=session, learner_id=learner)


@router.get("/learners/{learner_id}/conversions", response_model=list[ConversionPublic])
async def learner_conversions(
    learner: VisibleLearner, session: SessionDep
) -> list[ConversionPublic]:
    """A learner's conversions, newest first (staff covering the learner, auditors)."""
    return await service.conversions_of(session=session, learner_id=learner)


@router.get("/conversions", response_model=Page[ConversionPublic])
async def list_conversions(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    status: Annotated[str | None, Query(pattern="^(applied|approved|rejected|cancelled)$")] = None,
    learner: uuid.UUID | None = None,
) -> Page[ConversionPublic]:
    """Conversions filed under the caller's unit and below, in id order.

    Filed under the learner's residence of the day they applied: a resident who moved since
    stays listed where they applied (deciding or cancelling one is for the college covering
    where the learner lives now), and the learner's own list (``/learners/{id}/conversions``)
    follows the residence."""
    path = require_staff(principal, READING_STAFF)
    query = select(Conversion).where(
        col(Conversion.learner_unit_path).startswith(path, autoescape=True)
    )
    if status is not None:
        query = query.where(col(Conversion.status) == status)
    if learner is not None:
        query = query.where(col(Conversion.learner_id) == learner)
    if page.cursor:
        query = query.where(col(Conversion.id) > cursor_uuid(page.cursor, "after"))
    rows = list(
        (await session.execute(query.order_by(col(Conversion.id)).limit(page.limit + 1))).scalars()
    )
    items = [service.to_public(c) for c in rows[: page.limit]]
    more = len(rows) > page.limit
    return Page[ConversionPublic](
        items=items, next_cursor=encode_cursor({"after": str(items[-1].id)}) if more else None
    )


@router.post("/conversions/{conversion_id}/decision", response_model=ConversionPublic)
async def decide(
    conversion_id: uuid.UUID,
    body: Decision,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ConversionPublic:
    """Approve (debits the credits at once, atomically) or reject, with a reason.

    An approval must carry an ``Idempotency-Key``: sent again, it answers with the first
    result (``Idempotent-Replay: true``) and debits nothing. For the college covering the
    learner's residence as it is now.
    """
    require_staff(principal, DECIDERS)
    found = await service.get_or_raise(session, conversion_id)
    if not await covers_learner(request, principal, found.learner_id, roles=DECIDERS):
        raise service.ConversionNotFound(
            f"No conversion {conversion_id} that you may decide.", detail_zh="找不到该转换申请。"
        )
    conversion, replay = await service.decide(
        session=session,
        conversion_id=conversion_id,
        approve=body.decision == "approve",
        reason=body.reason,
        key=idempotency_key,
        actor=principal.subject,
    )
    audit.record(
        session,
        actor=principal,
        action="conversion.decide",
        target_type="conversion",
        target_id=str(conversion_id),
        # only an application is decided (a replay finds the approval it made and changes
        # nothing), so the service's checks say what the conversion was
        before={"status": "approved" if replay else "applied"},
        after={**body.model_dump(mode="json"), "status": conversion.status},
        reason=body.reason,
        outcome="replay" if replay else body.decision,
    )
    await session.commit()
    if replay:
        response.headers["Idempotent-Replay"] = "true"
    return service.to_public(conversion)


@router.post("/conversions/{conversion_id}/cancel", response_model=ConversionPublic)
async def cancel(
    conversion_id: uuid.UUID,
    body: CancelRequest,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> ConversionPublic:
    """Cancel an approved conversion within its window (the resident, or the college covering
    the learner's residence as it is now)."""
    if principal.kind != "resident" and not principal.has_role(*DECIDERS):
        raise Forbidden(
            "Only the resident or the college may cancel a conversion.",
            detail_zh="只有居民本人或社区学院可以撤销转换。",
        )
    found = await service.get_or_raise(session, conversion_id)
    own = principal.kind == "resident" and principal.subject == str(found.learner_id)
    if not (own or await covers_learner(request, principal, found.learner_id, roles=DECIDERS)):
        # as if missing: a college of another unit learns nothing of this one's conversions
        raise service.ConversionNotFound(
            f"No conversion {conversion_id} that you may cancel.", detail_zh="找不到该转换申请。"
        )
    conversion = await service.cancel(
        session=session, conversion_id=conversion_id, reason=body.reason, actor=principal.subject
    )
    audit.record(
        session,
        actor=principal,
        action="conversion.cancel",
        target_type="conversion",
        target_id=str(conversion_id),
        before={"status": "approved"},  # only an approved conversion is cancelled
        after={"status": conversion.status, "reason": body.reason},
        reason=body.reason,
    )
    await session.commit()
    return service.to_public(conversion)

"""Routes of learning records: a resident's own, a learner's for staff, review by staff."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from sqlmodel import col, select

from credits.audit import service as audit
from credits.learners import VisibleLearner
from credits.ledger import service as ledger
from credits.ledger import settlement
from credits.records import service, workflow
from credits.records.models import LearningRecord, RecordStatusChange
from credits.records.schemas import HoursSummary, RecordPublic, StatusChangeRequest
from credits.records.service import to_public
from kernel.access import READING_STAFF, require_resident, require_staff
from kernel.auth import CurrentPrincipal
from kernel.clock import aware_utc
from kernel.db import SessionDep
from kernel.pagination import Page, PageDep, encode_cursor
from kernel.problems import PROBLEMS, Conflict, NotFound
from kernel.text import CONTROL_FREE

router = APIRouter(prefix="/api/v1", tags=["learning records"])


@router.get("/me/records", response_model=Page[RecordPublic])
async def my_records(
    principal: CurrentPrincipal, session: SessionDep, page: PageDep
) -> Page[RecordPublic]:
    """The signed-in resident's learning records, newest first."""
    learner = uuid.UUID(require_resident(principal))
    return await service.records_of(session=session, learner_id=learner, page=page)


@router.get("/learners/{learner_id}/records", response_model=Page[RecordPublic])
async def learner_records(
    learner: VisibleLearner, session: SessionDep, page: PageDep
) -> Page[RecordPublic]:
    """A learner's learning records, newest first (staff covering the learner, auditors)."""
    return await service.records_of(session=session, learner_id=learner, page=page)


@router.get("/me/hours", response_model=HoursSummary)
async def my_hours(principal: CurrentPrincipal, session: SessionDep) -> HoursSummary:
    """The resident's verified learning time by year, category and mode (summed in SQL)."""
    learner = uuid.UUID(require_resident(principal))
    return await service.hours_of(session=session, learner_id=learner)


@router.get("/learners/{learner_id}/hours", response_model=HoursSummary)
async def learner_hours(learner: VisibleLearner, session: SessionDep) -> HoursSummary:
    """A learner's verified learning time (staff covering the learner, auditors)."""
    return await service.hours_of(session=session, learner_id=learner)


REVIEWERS = ("school_staff", "college_staff", "district_admin")


class StatusChangeRefused(Conflict):
    """The record cannot move from its status to the one asked for."""

    type = PROBLEMS + "record-status-change-refused"
    title = "Status change refused"


@router.get("/learning-records", response_model=Page[RecordPublic])
async def list_records(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    learner: uuid.UUID | None = None,
    activity: uuid.UUID | None = None,
    category: Annotated[str | None, Query(max_length=40, pattern=CONTROL_FREE)] = None,
    mode: Annotated[str | None, Query(pattern="^(offline|online|blended)$")] = None,
    status: Annotated[str | None, Query(pattern="^(pending|verified|rejected|voided)$")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[RecordPublic]:
    """Records of activities hosted in the caller's unit and below, newest first, filtered."""
    path = require_staff(principal, READING_STAFF)
    query = select(LearningRecord).where(
        col(LearningRecord.host_unit_path).startswith(path, autoescape=True)
    )
    for column, value in (
        (LearningRecord.learner_id, learner),
        (LearningRecord.activity_id, activity),
        (LearningRecord.category_code, category),
        (LearningRecord.mode, mode),
        (LearningRecord.status, status),
    ):
        if value is not None:
            query = query.where(col(column) == value)
    # in UTC: SQLite compares the stored UTC digits and would drop another offset's
    if since is not None:
        query = query.where(col(LearningRecord.started_at) >= aware_utc(since).astimezone(UTC))
    if until is not None:
        query = query.where(col(LearningRecord.started_at) < aware_utc(until).astimezone(UTC))
    before = service.before_id(page)
    if before is not None:
        query = query.where(col(LearningRecord.id) < before)
    rows = (
        (await session.execute(query.order_by(col(LearningRecord.id).desc()).limit(page.limit + 1)))
        .scalars()
        .all()
    )
    items = [to_public(r) for r in rows[: page.limit]]
    more = len(rows) > page.limit
    return Page[RecordPublic](
        items=items, next_cursor=encode_cursor({"before": items[-1].id}) if more else None
    )


@router.post("/learning-records/{record_id}/status", response_model=RecordPublic)
async def change_status(
    record_id: int, body: StatusChangeRequest, principal: CurrentPrincipal, session: SessionDep
) -> RecordPublic:
    """Verify, reject or void a record (school or college staff covering its activity).

    The change and its reason are kept in the record's history; nothing is deleted.
    """
    path = require_staff(principal, REVIEWERS)
    learner = (
        (
            await session.execute(
                select(col(LearningRecord.learner_id)).where(col(LearningRecord.id) == record_id)
            )
        ).scalar_one_or_none()
        if 0 < record_id < 2**63  # a 64-bit id, or none stored
        else None
    )
    record = None
    if learner is not None:
        # the learner's ledger lock first, then the record: the order the ledger worker takes
        await ledger.lock_learners(session, [learner])
        record = (
            await session.execute(
                select(LearningRecord).where(col(LearningRecord.id) == record_id).with_for_update()
            )
        ).scalar_one_or_none()
    if record is None or not record.host_unit_path.startswith(path):
        raise NotFound(
            f"No learning record {record_id} that you may review.", detail_zh="找不到该学习记录。"
        )
    if not workflow.may_change(record.status, body.status):
        raise StatusChangeRefused(
            f"A {record.status} record cannot become {body.status}.",
            detail_zh="该学习记录当前状态不允许此变更。",
            current=record.status,
        )
    now = datetime.now(UTC)
    before = {"status": record.status, "reason": record.status_reason}
    session.add(
        RecordStatusChange(
            record_id=record_id,
            from_status=record.status,
            to_status=body.status,
            changed_by=principal.subject,
            changed_at=now,
            reason=body.reason,
        )
    )
    record.status, record.status_changed_at = body.status, now
    record.status_changed_by, record.status_reason = principal.subject, body.reason
    await session.flush()
    # credits follow the status in the same transaction: earned on verification, taken back
    # on voiding or rejection
    settled = await settlement.settle(
        session, [record.learner_id], actor=f"staff:{principal.subject}"
    )
    audit.record(
        session,
        actor=principal,
        action="learning_record.status",
        target_type="learning_record",
        target_id=str(record_id),
        before=before,
        after={
            "status": body.status,
            "reason": body.reason,
            "balances": [
                {"category": c.category, "before": c.before, "after": c.after}
                for c in settled.changes
            ],
        },
        reason=body.reason,
        outcome=body.status,
    )
    await session.commit()
    return to_public(record)

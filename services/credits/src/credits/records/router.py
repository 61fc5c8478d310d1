"""Routes of learning records: a resident lists their own."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from sqlalchemy import func
from sqlalchemy import select as sql_select  # sqlmodel's select types at most four columns
from sqlmodel import col, select

from credits.records.models import LearningRecord
from credits.records.schemas import HoursBucket, HoursSummary, RecordPublic
from credits.records.service import to_public
from kernel.access import require_resident
from kernel.auth import CurrentPrincipal
from kernel.db import SessionDep
from kernel.pagination import Page, PageDep, encode_cursor

router = APIRouter(prefix="/api/v1", tags=["learning records"])


@router.get("/me/records", response_model=Page[RecordPublic])
async def my_records(
    principal: CurrentPrincipal, session: SessionDep, page: PageDep
) -> Page[RecordPublic]:
    """The signed-in resident's learning records, newest first."""
    learner = uuid.UUID(require_resident(principal))
    query = (
        select(LearningRecord)
        .where(col(LearningRecord.learner_id) == learner)
        .order_by(col(LearningRecord.id).desc())
        .limit(page.limit + 1)
    )
    if page.cursor:
        query = query.where(col(LearningRecord.id) < int(page.cursor.get("before", 0)))
    rows = (await session.execute(query)).scalars().all()
    items = [to_public(r) for r in rows[: page.limit]]
    more = len(rows) > page.limit
    return Page[RecordPublic](
        items=items, next_cursor=encode_cursor({"before": items[-1].id}) if more else None
    )


COUNTABLE = ("verified",)


@router.get("/me/hours", response_model=HoursSummary)
async def my_hours(principal: CurrentPrincipal, session: SessionDep) -> HoursSummary:
    """The resident's verified learning time by year, category and mode (summed in SQL)."""
    learner = uuid.UUID(require_resident(principal))
    year = func.extract("year", col(LearningRecord.started_at))
    rows = (
        await session.execute(
            sql_select(
                year,
                col(LearningRecord.category_code),
                col(LearningRecord.mode),
                func.sum(col(LearningRecord.minutes)),
                func.count(),
            )
            .where(
                col(LearningRecord.learner_id) == learner,
                col(LearningRecord.status).in_(COUNTABLE),
            )
            .group_by(year, col(LearningRecord.category_code), col(LearningRecord.mode))
            .order_by(year, col(LearningRecord.category_code), col(LearningRecord.mode))
        )
    ).all()
    buckets = [
        HoursBucket(year=int(y), category=c, mode=m, minutes=int(total), records=int(n))
        for y, c, m, total, n in rows
    ]
    online = sum(b.minutes for b in buckets if b.mode == "online")
    total_minutes = sum(b.minutes for b in buckets)
    return HoursSummary(
        total_minutes=total_minutes,
        online_minutes=online,
        offline_minutes=total_minutes - online,
        buckets=buckets,
    )

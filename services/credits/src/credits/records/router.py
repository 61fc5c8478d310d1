"""Routes of learning records: a resident lists their own."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from sqlmodel import col, select

from credits.records.models import LearningRecord
from credits.records.schemas import RecordPublic
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

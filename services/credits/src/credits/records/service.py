"""Reading learning records: one learner's records and hours, for the learner and for staff."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, and_, cast, func, or_
from sqlalchemy import select as sql_select  # sqlmodel's select types at most four columns
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from credits.records.models import SOURCES, LearningRecord
from credits.records.schemas import HoursBucket, HoursSummary, RecordPublic
from credits.rules import engine
from credits.rules import service as rules
from kernel.clock import aware_utc
from kernel.pagination import Page, PageParams, cursor_row_id, encode_cursor


def to_public(record: LearningRecord) -> RecordPublic:
    """The API view of a record."""
    assert record.id is not None
    return RecordPublic(
        id=record.id,
        learner_id=record.learner_id,
        activity_id=record.activity_id,
        session_id=record.session_id,
        category=record.category_code,
        mode=record.mode,
        source=record.source,
        started_at=aware_utc(record.started_at),
        ended_at=aware_utc(record.ended_at),
        minutes=record.minutes,
        status=record.status,
        # keys beginning with "_" are ours (the content hash an ingested record is checked
        # against on a retry), not the evidence its source sent
        evidence={k: v for k, v in record.evidence.items() if not k.startswith("_")},
    )


def before_id(page: PageParams) -> int | None:
    """The record id a page of records, newest first, continues below; None on the first page.

    Raises:
        InvalidCursor: the cursor holds no record id (altered, or not one of ours).
    """
    return cursor_row_id(page.cursor, "before") if page.cursor else None


async def records_of(
    *, session: AsyncSession, learner_id: uuid.UUID, page: PageParams
) -> Page[RecordPublic]:
    """One page of the learner's learning records, newest first."""
    query = (
        select(LearningRecord)
        .where(col(LearningRecord.learner_id) == learner_id)
        .order_by(col(LearningRecord.id).desc())
        .limit(page.limit + 1)
    )
    before = before_id(page)
    if before is not None:
        query = query.where(col(LearningRecord.id) < before)
    rows = (await session.execute(query)).scalars().all()
    items = [to_public(r) for r in rows[: page.limit]]
    more = len(rows) > page.limit
    return Page[RecordPublic](
        items=items, next_cursor=encode_cursor({"before": items[-1].id}) if more else None
    )


async def trusted_sources(session: AsyncSession) -> list[str]:
    """Sources whose pending records the rules in force today count without a check."""
    today = engine.local_day(datetime.now(UTC))
    current = engine.version_for(await rules.published_rulesets(session), today)
    if current is None:
        return []
    return [s for s in SOURCES if s not in current.verification_required]


def local_year(session: AsyncSession) -> Any:
    """The Beijing-time year a record started in, as SQL (a record begun at 01:00 on New Year's
    Day in Muye is that year's, though it is still the old year in UTC)."""
    started = col(LearningRecord.started_at)
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.extract("year", func.timezone("Asia/Shanghai", started)), Integer)
    # SQLite keeps UTC wall time: shift it to Beijing time before taking the year
    return cast(func.strftime("%Y", started, "+8 hours"), Integer)


async def hours_of(*, session: AsyncSession, learner_id: uuid.UUID) -> HoursSummary:
    """The learner's learning time by year, category and mode (summed in SQL).

    Time counts as the credit rules count it: verified records, and pending ones from sources
    the rules in force today take without a check (QR check-ins, partner platforms); records
    waiting for a staff check, rejected and voided ones do not.
    """
    trusted = await trusted_sources(session)
    status, source = col(LearningRecord.status), col(LearningRecord.source)
    countable = or_(status == "verified", and_(status == "pending", source.in_(trusted)))
    year = local_year(session)
    rows = (
        await session.execute(
            sql_select(
                year,
                col(LearningRecord.category_code),
                col(LearningRecord.mode),
                func.sum(col(LearningRecord.minutes)),
                func.count(),
            )
            .where(col(LearningRecord.learner_id) == learner_id, countable)
            .group_by(year, col(LearningRecord.category_code), col(LearningRecord.mode))
        )
    ).all()
    # ordered here, not in SQL: with ORDER BY, PostgreSQL sorts every record of the learner to
    # group them (a ten-year learner: thousands); without, it hashes them into the few buckets
    buckets = sorted(
        (
            HoursBucket(year=int(y), category=c, mode=m, minutes=int(total), records=int(n))
            for y, c, m, total, n in rows
        ),
        key=lambda b: (b.year, b.category, b.mode),
    )
    online = sum(b.minutes for b in buckets if b.mode == "online")
    total_minutes = sum(b.minutes for b in buckets)
    return HoursSummary(
        total_minutes=total_minutes,
        online_minutes=online,
        offline_minutes=total_minutes - online,
        buckets=buckets,
    )

"""Statistics (统计) of a unit and everything under it, summed in the database.

Every figure is one aggregate statement (GROUP BY, COUNT DISTINCT, window functions); no rows
of records are brought into Python. Learning happens at activities, and the credits service
knows where an activity is hosted (``host_unit_path``), not where a learner lives: the
figures here are of the learning offered by the unit and the units under it, except the
participants, the unit's residents who learned anywhere (the accounts service says who lives
there: :mod:`credits.statistics.groups`, then :func:`learning_elsewhere`). Registrations are
the accounts service's; see docs/decisions.md.

"Unit and everything under it" is first resolved to the host paths that occur under it
(one indexed prefix read of the small activity table), and records are then read by
``host_unit_path IN (...) AND started_at`` range: an index range per learning point, so a
town's report reads the town's records of the period and nothing else.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import String, and_, case, cast, func, or_, text
from sqlalchemy import select as sql_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from credits.activities.models import Activity, ActivitySession
from credits.catalogue.models import ActivityCategory
from credits.certification.models import Certification
from credits.conversion.models import Conversion
from credits.incentives.models import VolunteerService
from credits.ledger.models import CreditPosting, CreditSource, LedgerAccount
from credits.records import service as records
from credits.records.models import Attendance, LearningRecord
from credits.statistics.period import Period
from credits.statistics.schemas import (
    ActivityFigures,
    CreditsFigures,
    HoursLine,
    SessionLine,
    VolunteerYear,
)
from kernel.clock import aware_utc
from kernel.db import raw_fetch

# seed 004: volunteers serve at least 10 hours a year
VOLUNTEER_TARGET_MINUTES = 600
SESSION_LIST_LIMIT = 1000


class LearnerTotal(NamedTuple):
    """One learner's countable learning in a report."""

    learner_id: uuid.UUID
    minutes: int
    records: int


def hours(minutes: int) -> float:
    """Minutes as hours, two decimals."""
    return round(minutes / 60, 2)


async def analytic(session: AsyncSession) -> None:
    """Give this transaction's aggregates room to hash and sort in memory (PostgreSQL's default
    work_mem of 4 MB sends a district's grouping to disk)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SET LOCAL work_mem = '128MB'"))


async def host_paths(session: AsyncSession, unit_path: str) -> list[str]:
    """The host unit paths of activities at ``unit_path`` or under it."""
    await analytic(session)
    rows = await session.execute(
        sql_select(col(Activity.host_unit_path))
        .where(col(Activity.host_unit_path).startswith(unit_path, autoescape=True))
        .distinct()
    )
    return sorted(rows.scalars().all())


async def countable(session: AsyncSession) -> Any:
    """Records that count as learning: as the credit rules and the hours summary count them."""
    trusted = await records.trusted_sources(session)
    status, source = col(LearningRecord.status), col(LearningRecord.source)
    return or_(status == "verified", and_(status == "pending", source.in_(trusted)))


# countable() as raw SQL for asyncpg, the trusted sources bound as $4
_COUNTABLE_BY_4 = "(status = 'verified' OR (status = 'pending' AND source = ANY($4::text[])))"


def _records_in(paths: Sequence[str], period: Period) -> list[Any]:
    return [
        col(LearningRecord.host_unit_path).in_(paths),
        col(LearningRecord.started_at) >= period.starts_at,
        col(LearningRecord.started_at) < period.ends_before,
    ]


async def hours_by_category_mode(
    session: AsyncSession, paths: Sequence[str], period: Period
) -> list[HoursLine]:
    """Countable minutes, records and distinct learners by category and mode."""
    if not paths:
        return []
    counts = await countable(session)
    where = [*_records_in(paths, period), counts]
    category: Any = col(LearningRecord.category_code)
    mode: Any = col(LearningRecord.mode)
    if session.get_bind().dialect.name == "postgresql":
        # grouped bytewise: COUNT(DISTINCT) sorts the year's records on the group keys, and a
        # sort under the database's locale (C.UTF-8, en_US.UTF-8) compares text through
        # strcoll, slower than "C"'s memcmp (a district's year 3.9 -> 3.1 s).
        # The groups are the same (equality is bytewise in a deterministic collation) and
        # Python orders the lines.
        category, mode = category.collate("C"), mode.collate("C")
    rows = (
        await session.execute(
            sql_select(
                category,
                mode,
                func.sum(col(LearningRecord.minutes)),
                func.count(),
                func.count(col(LearningRecord.learner_id).distinct()),
            )
            .where(*where)
            .group_by(category, mode)
        )
    ).all()
    names = dict(
        (
            await session.execute(
                sql_select(col(ActivityCategory.code), col(ActivityCategory.name_zh))
            )
        ).all()
    )
    return sorted(
        (
            HoursLine(
                category=c,
                category_name=names.get(c, c),
                mode=m,
                minutes=int(total),
                hours=hours(int(total)),
                records=int(n),
                learners=int(k),
            )
            for c, m, total, n, k in rows
        ),
        key=lambda line: (line.category, line.mode),
    )


async def learner_totals(
    session: AsyncSession, paths: Sequence[str], period: Period
) -> list[LearnerTotal]:
    """Each participant's countable minutes and records: one grouped statement (hashed on the
    learner), one row per learner. Their number is the participants; summed per group (the
    accounts service says who is in which) they give the hours by group.

    A district's year is some 300,000 rows: on PostgreSQL they are fetched straight through
    asyncpg (through the ORM's row processing they cost as much again as the statement
    itself); elsewhere through SQLAlchemy Core. The same statement on both.
    """
    if not paths:
        return []
    if session.get_bind().dialect.name == "postgresql":
        trusted = await records.trusted_sources(session)
        rows = await raw_fetch(
            session,
            "SELECT learner_id, sum(minutes), count(*) FROM learning_record"
            " WHERE host_unit_path = ANY($1::text[])"
            " AND started_at >= $2 AND started_at < $3"
            f" AND {_COUNTABLE_BY_4} GROUP BY learner_id",
            list(paths),
            period.starts_at,
            period.ends_before,
            trusted,
        )
        return [LearnerTotal(who, int(minutes), int(n)) for who, minutes, n in rows]
    counts = await countable(session)
    learner = col(LearningRecord.learner_id)
    result = await session.execute(
        sql_select(learner, func.sum(col(LearningRecord.minutes)), func.count())
        .where(*_records_in(paths, period), counts)
        .group_by(learner)
    )
    return [LearnerTotal(who, int(minutes), int(n)) for who, minutes, n in result.all()]


async def learning_elsewhere(session: AsyncSession, learners: Sequence[str], period: Period) -> int:
    """How many of ``learners`` (ids as text) have a countable record in ``period``, wherever
    it was hosted: the unit's residents the report did not count at its own activities.

    One index probe per learner (``ix_learning_record_learner_started``) that stops at the
    first countable record; a district's residents who learned nowhere are a few tens of
    thousands of probes, not a read of the year's records."""
    if not learners:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        trusted = await records.trusted_sources(session)
        rows = await raw_fetch(
            session,
            "SELECT count(*) FROM unnest($1::text[]::uuid[]) AS resident(id) WHERE EXISTS ("
            " SELECT 1 FROM learning_record WHERE learner_id = resident.id"
            " AND started_at >= $2 AND started_at < $3"
            f" AND {_COUNTABLE_BY_4})",
            list(learners),
            period.starts_at,
            period.ends_before,
            trusted,
        )
        return int(rows[0][0])
    counts = await countable(session)
    learner = col(LearningRecord.learner_id)
    found = 0
    # SQLite: a bound parameter per id, in chunks well under its limit of 32,766 (the chunks
    # name different learners, so their counts add up)
    for start in range(0, len(learners), 10_000):
        chunk = [uuid.UUID(who) for who in learners[start : start + 10_000]]
        found += int(
            (
                await session.execute(
                    sql_select(func.count(learner.distinct())).where(
                        learner.in_(chunk),
                        col(LearningRecord.started_at) >= period.starts_at,
                        col(LearningRecord.started_at) < period.ends_before,
                        counts,
                    )
                )
            ).scalar_one()
        )
    return found


async def credit_figures(
    session: AsyncSession, unit_path: str, paths: Sequence[str], period: Period
) -> CreditsFigures:
    """Credits issued in the period for learning under the unit, and converted by its residents.

    Issued: the ledger's provenance lines (grants net of corrections) earned on a day of the
    period, for records hosted under the unit (``hours:<record id>``), completion awards of its
    activities (``completion:<activity id>``) and certifications of its residents. Converted:
    credits debited by conversions of its residents approved in the period, and what
    cancellations in the period gave back.
    """
    in_days = [
        col(CreditSource.earned_on) >= period.first,
        col(CreditSource.earned_on) <= period.last,
    ]
    for_hours = 0
    for_completion = 0
    if paths:
        # each line names the unit it counts under (the host of its record or activity): one
        # index range per host path and day range, never the district's lines
        key, amount = col(CreditSource.key), col(CreditSource.amount_hundredths)
        for_hours, for_completion = (
            await session.execute(
                sql_select(
                    func.coalesce(func.sum(case((key.startswith("hours:"), amount), else_=0)), 0),
                    func.coalesce(
                        func.sum(case((key.startswith("completion:"), amount), else_=0)), 0
                    ),
                ).where(*in_days, col(CreditSource.unit_path).in_(paths))
            )
        ).one()
    for_certification = (
        await session.execute(
            sql_select(func.coalesce(func.sum(col(CreditSource.amount_hundredths)), 0))
            .select_from(CreditSource)
            .join(Certification, col(Certification.id) == col(CreditSource.certification_id))
            .where(
                *in_days,
                col(Certification.learner_unit_path).startswith(unit_path, autoescape=True),
            )
        )
    ).scalar_one()
    to_conversion_account = sql_select(col(LedgerAccount.id)).where(
        col(LedgerAccount.kind) == "conversion"
    )
    ours = col(Conversion.learner_unit_path).startswith(unit_path, autoescape=True)
    approved_in = and_(
        col(Conversion.decided_at) >= period.starts_at,
        col(Conversion.decided_at) < period.ends_before,
        col(Conversion.transaction_id).is_not(None),
    )
    converted, conversions = (
        await session.execute(
            sql_select(
                func.coalesce(func.sum(col(CreditPosting.amount_hundredths)), 0),
                func.count(col(Conversion.id).distinct()),
            )
            .select_from(Conversion)
            .join(
                CreditPosting, col(CreditPosting.transaction_id) == col(Conversion.transaction_id)
            )
            .where(
                ours,
                approved_in,
                col(CreditPosting.side) == "credit",
                col(CreditPosting.account_id).in_(to_conversion_account.scalar_subquery()),
            )
        )
    ).one()
    cancelled = (
        await session.execute(
            sql_select(func.coalesce(func.sum(col(CreditPosting.amount_hundredths)), 0))
            .select_from(Conversion)
            .join(
                CreditPosting,
                col(CreditPosting.transaction_id) == col(Conversion.cancel_transaction_id),
            )
            .where(
                ours,
                col(Conversion.cancelled_at) >= period.starts_at,
                col(Conversion.cancelled_at) < period.ends_before,
                col(CreditPosting.side) == "debit",
                col(CreditPosting.account_id).in_(to_conversion_account.scalar_subquery()),
            )
        )
    ).scalar_one()
    issued = int(for_hours) + int(for_completion) + int(for_certification)
    return CreditsFigures(
        issued_hundredths=issued,
        issued_for_hours_hundredths=int(for_hours),
        issued_for_completion_hundredths=int(for_completion),
        issued_for_certification_hundredths=int(for_certification),
        converted_hundredths=int(converted),
        conversion_cancelled_hundredths=int(cancelled),
        converted_net_hundredths=int(converted) - int(cancelled),
        conversions=int(conversions),
    )


async def volunteer_years(
    session: AsyncSession, unit_path: str, period: Period
) -> list[VolunteerYear]:
    """Volunteer service under the unit per calendar year of the period, against 10 hours a
    year (seed 004): a volunteer meets the target when their service in that year (within the
    period) adds up to 600 minutes."""
    year = cast(func.extract("year", col(VolunteerService.served_on)), String)
    per_volunteer = (
        sql_select(
            year.label("year"),
            col(VolunteerService.learner_id).label("learner_id"),
            func.sum(col(VolunteerService.minutes)).label("minutes"),
        )
        .where(
            col(VolunteerService.unit_path).startswith(unit_path, autoescape=True),
            col(VolunteerService.served_on) >= period.first,
            col(VolunteerService.served_on) <= period.last,
        )
        .group_by(year, col(VolunteerService.learner_id))
        .subquery()
    )
    rows = (
        await session.execute(
            sql_select(
                per_volunteer.c.year,
                func.count(),
                func.sum(per_volunteer.c.minutes),
                func.sum(case((per_volunteer.c.minutes >= VOLUNTEER_TARGET_MINUTES, 1), else_=0)),
            ).group_by(per_volunteer.c.year)
        )
    ).all()
    found = {int(float(y)): (int(n), int(m or 0), int(met or 0)) for y, n, m, met in rows}
    return [
        VolunteerYear(
            year=y,
            volunteers=found.get(y, (0, 0, 0))[0],
            minutes=found.get(y, (0, 0, 0))[1],
            hours=hours(found.get(y, (0, 0, 0))[1]),
            target_minutes=VOLUNTEER_TARGET_MINUTES,
            volunteers_meeting_target=found.get(y, (0, 0, 0))[2],
        )
        for y in period.years
    ]


async def activity_figures(
    session: AsyncSession, paths: Sequence[str], period: Period
) -> tuple[ActivityFigures, list[SessionLine], bool]:
    """Activities and sessions held (a session held in the period: it started in it), check-ins
    per session, and the sessions themselves (the first ``SESSION_LIST_LIMIT`` by time)."""
    if not paths:
        return (
            ActivityFigures(
                activities=0,
                sessions=0,
                planned_minutes=0,
                attendance=0,
                attendance_per_session=None,
                max_attendance=0,
            ),
            [],
            False,
        )
    # check-ins counted per session from the (session, learner) unique index: a session's
    # count is one index range, whatever the size of the attendance table. One whose record
    # was rejected ("did not attend") or voided since is not attendance; an open check-in
    # (no record yet: the resident has not checked out) is
    checked_in = (
        sql_select(func.count())
        .select_from(Attendance)
        .outerjoin(LearningRecord, col(LearningRecord.id) == col(Attendance.record_id))
        .where(
            col(Attendance.session_id) == col(ActivitySession.id),
            or_(
                col(Attendance.record_id).is_(None),
                col(LearningRecord.status).not_in(("rejected", "voided")),
            ),
        )
        .scalar_subquery()
    )
    per_session = (
        sql_select(
            col(ActivitySession.id).label("session_id"),
            col(ActivitySession.activity_id).label("activity_id"),
            col(ActivitySession.planned_minutes).label("planned_minutes"),
            checked_in.label("attendance"),
        )
        .join(Activity, col(Activity.id) == col(ActivitySession.activity_id))
        .where(
            col(Activity.host_unit_path).in_(paths),
            col(ActivitySession.starts_at) >= period.starts_at,
            col(ActivitySession.starts_at) < period.ends_before,
        )
        .subquery()
    )
    activities, sessions, planned, attendance, most = (
        await session.execute(
            sql_select(
                func.count(per_session.c.activity_id.distinct()),
                func.count(),
                func.coalesce(func.sum(per_session.c.planned_minutes), 0),
                func.coalesce(func.sum(per_session.c.attendance), 0),
                func.coalesce(func.max(per_session.c.attendance), 0),
            )
        )
    ).one()
    listed = (
        await session.execute(
            sql_select(
                col(ActivitySession.id),
                col(Activity.id),
                col(Activity.title),
                col(Activity.host_unit_path),
                col(ActivitySession.starts_at),
                per_session.c.planned_minutes,
                per_session.c.attendance,
            )
            .join(ActivitySession, col(ActivitySession.id) == per_session.c.session_id)
            .join(Activity, col(Activity.id) == per_session.c.activity_id)
            .order_by(col(ActivitySession.starts_at), col(ActivitySession.id))
            .limit(SESSION_LIST_LIMIT)
        )
    ).all()
    lines = [
        SessionLine(
            session_id=s,
            activity_id=a,
            activity_title=title,
            host_unit_path=path,
            starts_at=aware_utc(starts),
            planned_minutes=int(planned_minutes),
            attendance=int(n),
        )
        for s, a, title, path, starts, planned_minutes, n in listed
    ]
    figures = ActivityFigures(
        activities=int(activities),
        sessions=int(sessions),
        planned_minutes=int(planned),
        attendance=int(attendance),
        attendance_per_session=round(int(attendance) / int(sessions), 2) if sessions else None,
        max_attendance=int(most),
    )
    return figures, lines, int(sessions) > len(lines)

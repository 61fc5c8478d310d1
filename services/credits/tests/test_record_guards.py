"""The database's own guards on learning records (PostgreSQL; SQLite serialises its writers and
relies on the service's checks): running day totals, and partner rows refused when they overlap
a live stretch or take a learner's Beijing day past 24 hours."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from credits.activities.models import Activity
from credits.records.models import LearningRecord

MORNING = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Beijing


@pytest.fixture
def db(session_client) -> AsyncSession:  # type: ignore[no-untyped-def]
    session: AsyncSession = session_client[1]
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("database guards are PostgreSQL's; SQLite serialises writers")
    return session


async def _activity(db: AsyncSession) -> Activity:
    activity = Activity(
        title="线上课",
        kind="online_course",
        category_code="digital_skills",
        mode="online",
        host_unit="410711",
        host_unit_path="/410711/",
        partner_client="mooc-guards",
        created_by="test",
    )
    db.add(activity)
    await db.flush()
    return activity


def _record(
    activity: Activity,
    learner: uuid.UUID,
    start: datetime,
    minutes: int,
    *,
    source: str = "partner",
    status: str = "pending",
) -> LearningRecord:
    return LearningRecord(
        learner_id=learner,
        activity_id=activity.id,
        category_code=activity.category_code,
        mode=activity.mode,
        host_unit_path=activity.host_unit_path,
        source=source,
        source_client="mooc-guards" if source == "partner" else None,
        external_id=uuid.uuid4().hex if source == "partner" else None,
        started_at=start,
        ended_at=start + timedelta(minutes=minutes),
        minutes=minutes,
        status=status,
        status_changed_by="test",
    )


async def _day_total(db: AsyncSession, learner: uuid.UUID, day: str) -> int | None:
    found = await db.execute(
        text("SELECT minutes FROM learner_day_minutes WHERE learner_id = :l AND day = :d"),
        {"l": learner, "d": datetime.fromisoformat(day).date()},
    )
    return found.scalar_one_or_none()


async def _refused(db: AsyncSession, record: LearningRecord) -> str:
    with pytest.raises(IntegrityError) as refused:
        async with db.begin_nested():
            db.add(record)
            await db.flush()
    return str(refused.value.orig.__cause__.constraint_name)  # type: ignore[union-attr]


async def test_day_totals_follow_inserts_of_every_source_and_status_changes(db) -> None:
    activity = await _activity(db)
    learner = uuid.uuid4()
    late_evening = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)  # 23:30 in Beijing, same day
    after_midnight = datetime(2026, 3, 2, 16, 30, tzinfo=UTC)  # 00:30 the next Beijing day
    kept = _record(activity, learner, MORNING, 60)
    voided = _record(activity, learner, MORNING + timedelta(hours=2), 45)
    db.add_all(
        [
            kept,
            voided,
            _record(activity, learner, late_evening, 20, source="check_in", status="verified"),
            _record(activity, learner, after_midnight, 10),
            _record(activity, learner, MORNING + timedelta(hours=5), 30, status="rejected"),
        ]
    )
    await db.flush()
    assert await _day_total(db, learner, "2026-03-02") == 60 + 45 + 20
    assert await _day_total(db, learner, "2026-03-03") == 10
    voided.status = "voided"
    await db.flush()
    assert await _day_total(db, learner, "2026-03-02") == 60 + 20


async def test_a_partner_row_overlapping_a_live_stretch_is_refused_by_the_database(db) -> None:
    activity = await _activity(db)
    learner = uuid.uuid4()
    db.add(_record(activity, learner, MORNING, 60))
    await db.flush()
    overlapping = _record(activity, learner, MORNING + timedelta(minutes=30), 60)
    assert await _refused(db, overlapping) == "learning_record_partner_overlap"
    # a stretch that only touches, a voided overlapping one, another learner: all fine
    db.add_all(
        [
            _record(activity, learner, MORNING + timedelta(minutes=60), 30),
            _record(activity, learner, MORNING, 60, status="voided"),
            _record(activity, uuid.uuid4(), MORNING, 60),
        ]
    )
    await db.flush()


async def test_other_sources_are_counted_but_never_refused(db) -> None:
    activity = await _activity(db)
    learner = uuid.uuid4()
    db.add(_record(activity, learner, MORNING, 60))
    await db.flush()
    # a check-out overlapping a partner stretch is stored as before (check-out does not refuse)
    db.add(_record(activity, learner, MORNING, 60, source="check_in", status="verified"))
    await db.flush()
    assert await _day_total(db, learner, "2026-03-02") == 120


async def test_a_partner_row_taking_a_day_past_24_hours_is_refused_by_the_database(db) -> None:
    activity = await _activity(db)
    learner = uuid.uuid4()
    day_start = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)  # 00:00 of 2 March in Beijing
    db.add_all([_record(activity, learner, day_start + timedelta(hours=h), 60) for h in range(23)])
    await db.flush()
    too_much = _record(activity, learner, day_start + timedelta(hours=23), 61)
    assert await _refused(db, too_much) == "learner_day_minutes_partner_limit"
    db.add(_record(activity, learner, day_start + timedelta(hours=23), 60))
    await db.flush()
    assert await _day_total(db, learner, "2026-03-02") == 24 * 60


async def test_one_statement_of_twenty_thousand_learners_takes_at_most_128_locks(db) -> None:
    # one advisory lock per learner ran out of the shared lock table (6,400 by default) here
    activity = await _activity(db)
    await db.execute(
        text(
            "INSERT INTO learning_record (learner_id, activity_id, category_code, mode,"
            " host_unit_path, source, source_client, external_id, started_at, ended_at,"
            " minutes, evidence, status, status_changed_at, status_changed_by, created_at)"
            " SELECT gen_random_uuid(), :activity, 'digital_skills', 'online', '/410711/',"
            " 'partner', 'mooc-guards', 'bulk-' || n, CAST(:start AS timestamptz),"
            " CAST(:start AS timestamptz) + interval '30 minutes',"
            " 30, '{}', 'pending', now(), 'test', now() FROM generate_series(1, 20000) AS n"
        ),
        {"activity": activity.id, "start": MORNING},
    )
    held = await db.execute(
        text(
            "SELECT count(*) FROM pg_locks"
            " WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND classid = 7411"
        )
    )
    assert 100 <= held.scalar_one() <= 128  # 20,000 random learners fill nearly every bucket

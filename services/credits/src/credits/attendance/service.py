"""Check-in and check-out with a session's signed code; check-out writes the learning record."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select as sql_select  # sqlmodel's select types at most four entities
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from credits.activities.models import Activity, ActivitySession
from credits.attendance import qrcode
from credits.attendance.schemas import AttendancePublic
from credits.records.models import Attendance, LearningRecord
from kernel.clock import aware, aware_utc
from kernel.pagination import (
    Page,
    PageParams,
    encode_cursor,
    older_than_cursor,
)
from kernel.problems import PROBLEMS, Conflict, DomainError, NotFound


class CheckInRefused(DomainError):
    """The code is forged, expired, not yet valid or for another session."""

    type = PROBLEMS + "check-in-refused"
    status = 422
    title = "Check-in refused"


class AlreadyCheckedIn(Conflict):
    """One check-in per resident per session."""

    type = PROBLEMS + "already-checked-in"
    title = "Already checked in"


class NothingAttendedYet(Conflict):
    """A check-out that would count no whole minute: the session has not begun, or the
    resident checked in less than a minute ago (a second scan by mistake)."""

    type = PROBLEMS + "nothing-attended-yet"
    title = "Nothing attended yet"


REASONS_ZH = {
    "forged": "签到码无效",
    "expired": "签到码已过期",
    "not yet valid": "签到尚未开始",
    "other session": "签到码不属于该场次",
    "malformed": "签到码格式错误",
}


async def session_and_activity(
    session: AsyncSession, session_id: uuid.UUID
) -> tuple[ActivitySession, Activity]:
    """The session and its activity, or 404."""
    row = (
        await session.execute(
            select(ActivitySession, Activity)
            .join(Activity, col(ActivitySession.activity_id) == col(Activity.id))
            .where(col(ActivitySession.id) == session_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"No session {session_id}.", detail_zh="找不到该场次。")
    return row[0], row[1]


def issue_code(
    secret: bytes, meeting: ActivitySession, opens_minutes: int
) -> tuple[str, datetime, datetime]:
    """A code valid from shortly before the start to the end of ``meeting``."""
    starts, ends = aware(meeting.starts_at), aware(meeting.ends_at)
    assert starts is not None and ends is not None
    not_before = starts - timedelta(minutes=opens_minutes)
    code = qrcode.issue(secret, session_id=str(meeting.id), not_before=not_before, expires_at=ends)
    return code, not_before, ends


def _check(
    secret: bytes, code: str, session_id: uuid.UUID, now: datetime, grace_seconds: int = 0
) -> None:
    try:
        qrcode.verify(
            secret, code, session_id=str(session_id), now=now, grace_seconds=grace_seconds
        )
    except qrcode.InvalidCheckInCode as exc:
        raise CheckInRefused(
            f"The check-in code was refused: {exc.reason}.",
            detail_zh=REASONS_ZH.get(exc.reason, "签到码无效"),
            reason=exc.reason,
        ) from None


async def check_in(
    *, session: AsyncSession, secret: bytes, session_id: uuid.UUID, code: str, learner_id: uuid.UUID
) -> Attendance:
    """Record the resident's arrival."""
    now = datetime.now(UTC)
    await session_and_activity(session, session_id)
    _check(secret, code, session_id, now)
    attendance = Attendance(session_id=session_id, learner_id=learner_id, checked_in_at=now)
    try:
        # added inside the savepoint, so a refused row leaves the session as it was
        async with session.begin_nested():
            session.add(attendance)
            await session.flush()
    except IntegrityError:
        raise AlreadyCheckedIn(
            "You have already checked in to this session.", detail_zh="您已签到过该场次。"
        ) from None
    return attendance


async def check_out(
    *,
    session: AsyncSession,
    secret: bytes,
    session_id: uuid.UUID,
    code: str,
    learner_id: uuid.UUID,
    grace_seconds: int = 0,
) -> LearningRecord:
    """Record the departure and the learning record: hours bounded by the session's times.

    The session's code still checks out for ``grace_seconds`` after it ends (residents scan
    on their way out); the minutes stop at the session's end all the same.
    """
    now = datetime.now(UTC)
    meeting, activity = await session_and_activity(session, session_id)
    _check(secret, code, session_id, now, grace_seconds)
    attendance = (
        await session.execute(
            select(Attendance)
            .where(
                col(Attendance.session_id) == session_id, col(Attendance.learner_id) == learner_id
            )
            .with_for_update()
        )
    ).scalar_one_or_none()
    if attendance is None:
        raise Conflict("Check in before checking out.", detail_zh="请先签到再签退。")
    if attendance.record_id is not None:
        raise Conflict("You have already checked out of this session.", detail_zh="您已签退。")
    starts, ends = aware(meeting.starts_at), aware(meeting.ends_at)
    arrived = aware(attendance.checked_in_at)
    assert starts is not None and ends is not None and arrived is not None
    minutes = qrcode.bounded_minutes(
        session_start=starts, session_end=ends, checked_in=arrived, checked_out=now
    )
    if minutes < 1:
        # a 0-minute record would close the check-in for good: the resident's real
        # departure could then never be scanned, and staff could not enter it either
        raise NothingAttendedYet(
            "No whole minute of the session has been attended yet (it has not begun, or you "
            "checked in less than a minute ago), so there is nothing to check out. Your "
            "check-in stands: scan the code again when you leave.",
            detail_zh="尚未计入任何学时（场次尚未开始，或签到不足一分钟），无需签退。"
            "签到仍然有效，离开时请再次扫码签退。",
        )
    record = LearningRecord(
        learner_id=learner_id,
        activity_id=activity.id,
        session_id=meeting.id,
        category_code=activity.category_code,
        mode=activity.mode,
        host_unit_path=activity.host_unit_path,
        source="check_in",
        started_at=max(starts, arrived),
        ended_at=max(max(starts, arrived), min(ends, now)),
        minutes=minutes,
        evidence={"attendance_id": str(attendance.id), "checked_in_at": arrived.isoformat()},
        # presence proven by the session's signed code: no staff verification needed
        status="verified",
        status_changed_by="system:check-in",
    )
    session.add(record)
    await session.flush()
    attendance.checked_out_at, attendance.record_id = now, record.id
    await session.flush()
    return record


async def attendance_of(
    *, session: AsyncSession, learner_id: uuid.UUID, page: PageParams
) -> Page[AttendancePublic]:
    """One page of the learner's check-ins, latest first, each with its session, activity and
    the learning record it produced."""
    query = (
        sql_select(
            Attendance,
            ActivitySession,
            Activity,
            col(LearningRecord.status),
            col(LearningRecord.minutes),
        )
        .join(ActivitySession, col(ActivitySession.id) == col(Attendance.session_id))
        .join(Activity, col(Activity.id) == col(ActivitySession.activity_id))
        .outerjoin(LearningRecord, col(LearningRecord.id) == col(Attendance.record_id))
        .where(col(Attendance.learner_id) == learner_id)
        .order_by(col(Attendance.checked_in_at).desc(), col(Attendance.id).desc())
        .limit(page.limit + 1)
    )
    if page.cursor:
        query = query.where(
            older_than_cursor(
                page.cursor, col(Attendance.checked_in_at), col(Attendance.id), at_key="at"
            )
        )
    rows = (await session.execute(query)).all()
    items = [
        AttendancePublic(
            id=attendance.id,
            session_id=meeting.id,
            session_starts_at=aware_utc(meeting.starts_at),
            session_ends_at=aware_utc(meeting.ends_at),
            place=meeting.place,
            activity_id=activity.id,
            activity_title=activity.title,
            category=activity.category_code,
            mode=activity.mode,
            checked_in_at=aware_utc(attendance.checked_in_at),
            checked_out_at=aware(attendance.checked_out_at),
            record_id=attendance.record_id,
            record_status=status,
            minutes=minutes,
        )
        for attendance, meeting, activity, status, minutes in rows[: page.limit]
    ]
    more = len(rows) > page.limit
    cursor = None
    if more:
        cursor = encode_cursor({"at": items[-1].checked_in_at.isoformat(), "id": str(items[-1].id)})
    return Page[AttendancePublic](items=items, next_cursor=cursor)

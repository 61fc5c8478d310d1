"""Staff enter a session's attendance (考勤录入) at once, as JSON or as the learning point's sheet.

A whole session's entry is one transaction, and each row is judged on its own so good rows are
kept: the learner is resolved through the accounts service (unknown, frozen and closed accounts
are refused), a resident already recorded at the session (checked out by QR code, or an earlier
entry) is a duplicate, never a second record (a QR check-in never checked out is completed by the
entry, counted from the QR arrival), and the minutes are bounded by the session
(:func:`credits.attendance.entries.count`). Each accepted row writes an :class:`Attendance` and a
pending :class:`LearningRecord` (source ``staff_entry``): offline attendance entered by staff waits
for school or college staff to verify it. Entering the same rows again changes nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from credits.activities.models import Activity, ActivitySession
from credits.attendance import entries as rules
from credits.attendance import sheet as attendance_sheet
from credits.attendance.schemas import (
    MAX_ENTRIES,
    AttendanceEntryResult,
    AttendanceRowError,
    AttendanceRowResult,
)
from credits.attendance.service import session_and_activity
from credits.learners import ACTIVE, STATUS_ZH, lookup_learners
from credits.records.models import Attendance, LearningRecord
from kernel.clock import aware_utc
from kernel.problems import PROBLEMS, Conflict, DomainError, NotFound
from kernel.sheets import SheetError, read_sheet
from kernel.tokens import Principal

MAX_SHEET_BYTES = 5_000_000
Status = Literal["created", "duplicate", "rejected"]
# what became of one accepted row when written: its index, status, record id and minutes
Written = tuple[int, Status, int | None, int | None]


class SessionNotStarted(Conflict):
    """Attendance is entered once the session has begun."""

    type = PROBLEMS + "session-not-started"
    title = "Session not started"


class UnreadableSheet(DomainError):
    """The uploaded file is not a readable attendance sheet."""

    type = PROBLEMS + "unreadable-sheet"
    status = 422
    title = "Unreadable sheet"


@dataclass(frozen=True)
class EntrySource:
    """Where the rows came from: a JSON body, or a sheet file (named, with its digest)."""

    via: str  # "json" or "sheet"
    file: str | None = None
    sha256: str | None = None


async def _covered_session(
    session: AsyncSession, session_id: uuid.UUID, staff_path: str, *, now: datetime
) -> tuple[ActivitySession, Activity]:
    meeting, activity = await session_and_activity(session, session_id)
    if not activity.host_unit_path.startswith(staff_path):
        raise NotFound(f"No session {session_id}.", detail_zh="找不到该场次。")
    if aware_utc(meeting.starts_at) > now:
        raise SessionNotStarted(
            "Attendance can be entered once the session has started.",
            detail_zh="本场次尚未开始，不能录入考勤。",
            starts_at=aware_utc(meeting.starts_at).isoformat(),
        )
    return meeting, activity


async def enter_attendance(
    *,
    session: AsyncSession,
    accounts: httpx.AsyncClient,
    authorization: str,
    session_id: uuid.UUID,
    entries: list[rules.Entry],
    staff_path: str,
    actor: Principal,
    now: datetime | None = None,
) -> AttendanceEntryResult:
    """Enter the session's attendance from JSON entries; every entry gets a result."""
    moment = now or datetime.now(UTC)
    meeting, activity = await _covered_session(session, session_id, staff_path, now=moment)
    return await _enter(
        session=session,
        accounts=accounts,
        authorization=authorization,
        meeting=meeting,
        activity=activity,
        entries=entries,
        actor=actor,
        source=EntrySource("json"),
        dry_run=False,
        now=moment,
    )


async def enter_sheet(
    *,
    session: AsyncSession,
    accounts: httpx.AsyncClient,
    authorization: str,
    session_id: uuid.UUID,
    filename: str,
    content: bytes,
    staff_path: str,
    actor: Principal,
    dry_run: bool,
    now: datetime | None = None,
) -> AttendanceEntryResult:
    """Enter the session's attendance from a sheet (.xlsx or .csv); every row gets a result
    with its row number. Headers: see :mod:`credits.attendance.sheet`."""
    moment = now or datetime.now(UTC)
    meeting, activity = await _covered_session(session, session_id, staff_path, now=moment)
    if len(content) > MAX_SHEET_BYTES:
        raise UnreadableSheet(
            f"The sheet is larger than {MAX_SHEET_BYTES} bytes; split it.",
            detail_zh="文件过大，请拆分后再上传。",
        )
    try:
        rows = list(
            read_sheet(
                filename,
                content,
                headers=attendance_sheet.HEADERS,
                required=attendance_sheet.REQUIRED,
                refused=attendance_sheet.REFUSED,
            )
        )
    except SheetError as exc:
        raise _unreadable(str(exc), exc.zh) from None
    if not rows:
        raise UnreadableSheet("The sheet has no data rows.", detail_zh="表格中没有数据行。")
    if len(rows) > MAX_ENTRIES:
        raise UnreadableSheet(
            f"The sheet has {len(rows)} rows; at most {MAX_ENTRIES} a session. Split it.",
            detail_zh=f"每场次最多录入{MAX_ENTRIES}行，请拆分表格。",
        )
    entries = attendance_sheet.entries_from_sheet(rows, session_start=aware_utc(meeting.starts_at))
    source = EntrySource("sheet", filename, hashlib.sha256(content).hexdigest())
    return await _enter(
        session=session,
        accounts=accounts,
        authorization=authorization,
        meeting=meeting,
        activity=activity,
        entries=entries,
        actor=actor,
        source=source,
        dry_run=dry_run,
        now=moment,
    )


def _unreadable(why: str, why_zh: str | None = None) -> UnreadableSheet:
    return UnreadableSheet(
        f"The file cannot be read as an attendance sheet: {why}.",
        detail_zh=f"文件无法读取：{why_zh}。"
        if why_zh
        else "文件无法读取，请检查格式（.xlsx 或 .csv）和表头（如 学习账号、签到时间、"
        "签退时间、学时(分钟)）。",
    )


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment is not None else None


def _where(entry: rules.Entry, index: int) -> tuple[str, str]:
    if entry.row is not None:
        return f"row {entry.row}", f"第{entry.row}行"
    return f"entry {index}", f"序号为{index}的条目"


async def _enter(
    *,
    session: AsyncSession,
    accounts: httpx.AsyncClient,
    authorization: str,
    meeting: ActivitySession,
    activity: Activity,
    entries: list[rules.Entry],
    actor: Principal,
    source: EntrySource,
    dry_run: bool,
    now: datetime,
) -> AttendanceEntryResult:
    if not dry_run:
        # one entry per session at a time; a racing QR check-in is met by ON CONFLICT below
        await session.execute(
            select(ActivitySession).where(col(ActivitySession.id) == meeting.id).with_for_update()
        )
    starts, ends = aware_utc(meeting.starts_at), aware_utc(meeting.ends_at)
    results: list[AttendanceRowResult | None] = [None] * len(entries)

    def result(index: int, status: Status, **fields: Any) -> None:
        entry = entries[index]
        results[index] = AttendanceRowResult(
            index=index,
            row=entry.row,
            learner=entry.learner or None,
            name=entry.name,
            status=status,
            **fields,
        )

    def refuse(index: int, *refusals: rules.Refusal) -> None:
        errors = [
            AttendanceRowError(field=r.field, reason=r.reason, reason_zh=r.reason_zh)
            for r in refusals
        ]
        result(index, "rejected", errors=errors)

    candidates: dict[int, rules.Entry] = {}
    first: dict[str, int] = {}
    for index, entry in enumerate(entries):
        problems = list(entry.refusals)
        if not entry.learner:
            problems.insert(
                0, rules.Refusal("learner", "no learning account number", "缺少学习账号")
            )
        elif not rules.is_account_number(entry.learner):
            problems.insert(
                0, rules.Refusal("learner", "not a learning account number", "学习账号格式错误")
            )
        elif entry.learner in first:
            where, where_zh = _where(entries[first[entry.learner]], first[entry.learner])
            problems.insert(0, rules.Refusal("learner", f"repeats {where}", f"与{where_zh}重复"))
        else:
            first[entry.learner] = index
        if problems:
            refuse(index, *problems)
        else:
            candidates[index] = entry

    learners = await lookup_learners(
        accounts, authorization, sorted({e.learner for e in candidates.values()})
    )
    known_ids = [found[0] for found in learners.values()]
    present = select(
        col(Attendance.learner_id),
        col(Attendance.record_id),
        col(Attendance.id),
        col(Attendance.checked_in_at),
    ).where(col(Attendance.session_id) == meeting.id, col(Attendance.learner_id).in_(known_ids))
    if not dry_run:
        present = present.with_for_update()  # a QR check-out of an open check-in waits for us
    recorded: dict[uuid.UUID, int] = {}
    # checked in by QR code and never checked out: the staff entry completes the check-in
    open_check_ins: dict[uuid.UUID, tuple[uuid.UUID, datetime]] = {}
    for learner_id, record_id, attendance_id, checked_in_at in (
        await session.execute(present)
    ).all():
        if record_id is not None:
            recorded[learner_id] = record_id
        else:
            open_check_ins[learner_id] = (attendance_id, aware_utc(checked_in_at))
    accepted: list[tuple[int, uuid.UUID, rules.Counted]] = []
    for index, entry in candidates.items():
        found = learners.get(entry.learner)
        if found is None:
            refuse(
                index,
                rules.Refusal("learner", "unknown learning account number", "找不到该学习账号"),
            )
            continue
        learner_id, status = found
        if learner_id in recorded:
            result(index, "duplicate", record_id=recorded[learner_id])
            continue
        if status != ACTIVE:
            refuse(
                index,
                rules.Refusal(
                    "learner",
                    f"the learning account is {status}",
                    f"该学习账号{STATUS_ZH.get(status, '不可用')}",
                ),
            )
            continue
        counted = rules.count(
            session_start=starts,
            session_end=ends,
            planned_minutes=meeting.planned_minutes,
            checked_in_at=entry.checked_in_at
            or (open_check_ins[learner_id][1] if learner_id in open_check_ins else None),
            checked_out_at=entry.checked_out_at,
            minutes=entry.minutes,
            now=now,
        )
        if isinstance(counted, rules.Refusal):
            refuse(index, counted)
            continue
        if learner_id in open_check_ins and counted.ended_at <= open_check_ins[learner_id][1]:
            # the entry completes the QR check-in: its departure cannot precede the scan
            scanned = open_check_ins[learner_id][1].astimezone(attendance_sheet.CHINA)
            refuse(
                index,
                rules.Refusal(
                    "checked_out_at",
                    f"check-out must be after the QR code check-in at {scanned:%Y-%m-%d %H:%M}"
                    " Beijing time",
                    f"签退时间应晚于扫码签到时间（{scanned:%Y-%m-%d %H:%M}）",
                ),
            )
            continue
        accepted.append((index, learner_id, counted))

    if dry_run:
        for index, _, counted in accepted:
            result(index, "created", minutes=counted.minutes)
    elif accepted:
        written = await _write(
            session=session,
            meeting=meeting,
            activity=activity,
            entries=entries,
            accepted=accepted,
            open_check_ins=open_check_ins,
            actor=actor,
            source=source,
            now=now,
        )
        for index, status, record_id, minutes in written:
            result(index, status, record_id=record_id, minutes=minutes)
    final = [r for r in results if r is not None]
    assert len(final) == len(entries)
    return AttendanceEntryResult(
        session_id=meeting.id,
        dry_run=dry_run,
        file=source.file,
        total=len(final),
        created=sum(r.status == "created" for r in final),
        duplicates=sum(r.status == "duplicate" for r in final),
        rejected=sum(r.status == "rejected" for r in final),
        results=final,
    )


async def _write(
    *,
    session: AsyncSession,
    meeting: ActivitySession,
    activity: Activity,
    entries: list[rules.Entry],
    accepted: list[tuple[int, uuid.UUID, rules.Counted]],
    open_check_ins: dict[uuid.UUID, tuple[uuid.UUID, datetime]],
    actor: Principal,
    source: EntrySource,
    now: datetime,
) -> list[Written]:
    """Attendance rows first (a concurrent QR check-in wins the unique key and makes the row a
    duplicate), then the learning records of those inserted, then the links between them.

    A learner's open QR check-in (no check-out) is completed instead: its attendance row gets
    the departure and the record; no second row is inserted.
    """
    starts = aware_utc(meeting.starts_at)
    attendance_ids = {
        index: open_check_ins[learner_id][0] if learner_id in open_check_ins else uuid.uuid4()
        for index, learner_id, _ in accepted
    }
    # every instant is stored as UTC: SQLite keeps a timestamp's digits and drops its offset
    rows = [
        {
            "id": attendance_ids[index],
            "session_id": meeting.id,
            "learner_id": learner_id,
            "checked_in_at": _utc(entries[index].checked_in_at) or starts,
            "checked_out_at": _utc(entries[index].checked_out_at),
        }
        for index, learner_id, _ in accepted
        if learner_id not in open_check_ins
    ]
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(Attendance)
        .on_conflict_do_nothing(index_elements=["session_id", "learner_id"])
        .returning(col(Attendance.id))
    )
    inserted = set((await session.execute(statement, rows)).scalars()) if rows else set()
    inserted |= {attendance_id for attendance_id, _ in open_check_ins.values()}
    made: list[tuple[int, uuid.UUID, LearningRecord]] = []
    late: dict[uuid.UUID, int] = {}
    for index, learner_id, counted in accepted:
        attendance_id = attendance_ids[index]
        if attendance_id not in inserted:
            late[learner_id] = index
            continue
        entry = entries[index]
        evidence: dict[str, Any] = {
            "entered_by": actor.subject,
            "entered_by_roles": list(actor.roles),
            "entered_by_unit": actor.unit,
            "entered_at": now.isoformat(),
            "via": source.via,
            "attendance_id": str(attendance_id),
            # as given (a sheet's Beijing time keeps its +08:00)
            "checked_in_at": entry.checked_in_at.isoformat() if entry.checked_in_at else None,
            "checked_out_at": entry.checked_out_at.isoformat() if entry.checked_out_at else None,
            "minutes_given": entry.minutes,
        }
        if source.via == "sheet":
            evidence |= {"file": source.file, "file_sha256": source.sha256, "row": entry.row}
        if learner_id in open_check_ins:
            evidence["completes_check_in_at"] = open_check_ins[learner_id][1].isoformat()
        made.append(
            (
                index,
                attendance_id,
                LearningRecord(
                    learner_id=learner_id,
                    activity_id=activity.id,
                    session_id=meeting.id,
                    category_code=activity.category_code,
                    mode=activity.mode,
                    host_unit_path=activity.host_unit_path,
                    source="staff_entry",
                    started_at=counted.started_at.astimezone(UTC),
                    ended_at=counted.ended_at.astimezone(UTC),
                    minutes=counted.minutes,
                    evidence=evidence,
                    # offline attendance entered by staff waits for the school's or college's check
                    status="pending",
                    status_changed_at=now,
                    status_changed_by=actor.subject,
                    created_at=now,
                ),
            )
        )
    session.add_all([record for _, _, record in made])
    await session.flush()
    links = [
        {"id": attendance_id, "record_id": record.id}
        | ({"checked_out_at": record.ended_at} if record.learner_id in open_check_ins else {})
        for _, attendance_id, record in made
    ]
    for completes in (False, True):  # one executemany per shape of row
        batch = [link for link in links if ("checked_out_at" in link) == completes]
        if batch:
            await session.execute(update(Attendance), batch)
    written: list[Written] = [(i, "created", r.id, r.minutes) for i, _, r in made]
    if late:  # recorded meanwhile (a QR check-in): say which record is there
        there = dict(
            (
                await session.execute(
                    select(col(Attendance.learner_id), col(Attendance.record_id)).where(
                        col(Attendance.session_id) == meeting.id,
                        col(Attendance.learner_id).in_(list(late)),
                    )
                )
            ).all()
        )
        written += [(i, "duplicate", there.get(learner), None) for learner, i in late.items()]
    return written

"""Routes of attendance: staff open a session's check-in code, residents check in and out,
staff enter a whole session's attendance (JSON or the learning point's sheet), and a learner's
check-ins are listed for them and for staff covering them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from credits.attendance import service, staff_entry
from credits.attendance.entries import Entry
from credits.attendance.schemas import (
    AttendanceEntryRequest,
    AttendanceEntryResult,
    AttendancePublic,
)
from credits.audit import service as audit
from credits.learners import VisibleLearner
from credits.records.schemas import RecordPublic
from credits.records.service import to_public
from kernel.access import WRITING_STAFF, require_resident, require_staff
from kernel.auth import CurrentPrincipal
from kernel.db import SessionDep
from kernel.pagination import Page, PageDep
from kernel.problems import NotFound
from kernel.text import account_number

router = APIRouter(prefix="/api/v1", tags=["attendance"])


class CheckInCodePublic(BaseModel):
    """The code to show as a QR image, and when it works."""

    session_id: uuid.UUID
    code: str
    not_before: datetime
    expires_at: datetime


class CodeSubmission(BaseModel):
    """What the resident's app read from the QR image."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=10, max_length=512)


class CheckedIn(BaseModel):
    """A check-in."""

    session_id: uuid.UUID
    checked_in_at: datetime


@router.post("/sessions/{session_id}/check-in-code", response_model=CheckInCodePublic)
async def open_check_in(
    session_id: uuid.UUID, request: Request, principal: CurrentPrincipal, session: SessionDep
) -> CheckInCodePublic:
    """A signed check-in code for the session (staff of the hosting unit or above)."""
    path = require_staff(principal, WRITING_STAFF)
    meeting, activity = await service.session_and_activity(session, session_id)
    if not activity.host_unit_path.startswith(path):
        raise NotFound(f"No session {session_id}.", detail_zh="找不到该场次。")
    settings = request.app.state.settings
    code, not_before, expires = service.issue_code(
        request.app.state.checkin_secret, meeting, settings.checkin_opens_minutes
    )
    return CheckInCodePublic(
        session_id=meeting.id, code=code, not_before=not_before, expires_at=expires
    )


@router.post("/sessions/{session_id}/check-in", response_model=CheckedIn, status_code=201)
async def check_in(
    session_id: uuid.UUID,
    body: CodeSubmission,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> CheckedIn:
    """The resident checks in with the code from the session's QR image."""
    learner = uuid.UUID(require_resident(principal))
    attendance = await service.check_in(
        session=session,
        secret=request.app.state.checkin_secret,
        session_id=session_id,
        code=body.code,
        learner_id=learner,
    )
    audit.record(
        session,
        actor=principal,
        action="attendance.check_in",
        target_type="session",
        target_id=str(session_id),
        after={"learner": str(learner)},
    )
    await session.commit()
    return CheckedIn(session_id=session_id, checked_in_at=attendance.checked_in_at)


@router.post("/sessions/{session_id}/check-out", response_model=RecordPublic)
async def check_out(
    session_id: uuid.UUID,
    body: CodeSubmission,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> RecordPublic:
    """The resident checks out; the answer is the learning record it made. The session's code
    checks out until shortly after the session ends (the minutes stop at its end). A
    check-out that would count no whole minute (before the session begins, or within a minute
    of checking in: a second scan by mistake) is a 409 `nothing-attended-yet`, and the check-in
    stays open for the real departure."""
    learner = uuid.UUID(require_resident(principal))
    record = await service.check_out(
        session=session,
        secret=request.app.state.checkin_secret,
        session_id=session_id,
        code=body.code,
        learner_id=learner,
        grace_seconds=request.app.state.settings.checkout_grace_minutes * 60,
    )
    audit.record(
        session,
        actor=principal,
        action="attendance.check_out",
        target_type="learning_record",
        target_id=str(record.id),
        after=to_public(record),
    )
    await session.commit()
    return to_public(record)


@router.post("/sessions/{session_id}/attendance", response_model=AttendanceEntryResult)
async def enter_attendance(
    session_id: uuid.UUID,
    body: AttendanceEntryRequest,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> AttendanceEntryResult:
    """Staff covering the activity's host unit enter the session's attendance at once.

    Each entry names a resident by learning account number, with optional ``minutes`` (default:
    the session's planned minutes) and ``checked_in_at``/``checked_out_at``; only the part
    inside the session counts. Every entry gets a result: ``created`` (an attendance and a
    learning record pending verification), ``duplicate`` (the resident is already recorded at
    this session: checked out by QR code, or entered before; a QR check-in never checked out is
    completed by the entry, counted from its arrival) or ``rejected`` (with the field and the reason
    in English and Chinese); good entries are kept. The session must have started.
    """
    path = require_staff(principal, WRITING_STAFF)
    entries = [
        Entry(
            learner=account_number(item.learner),
            minutes=item.minutes,
            checked_in_at=item.checked_in_at,
            checked_out_at=item.checked_out_at,
        )
        for item in body.entries
    ]
    result = await staff_entry.enter_attendance(
        session=session,
        accounts=request.app.state.accounts,
        authorization=request.headers["authorization"],
        session_id=session_id,
        entries=entries,
        staff_path=path,
        actor=principal,
    )
    audit.record(
        session,
        actor=principal,
        action="attendance.enter",
        target_type="session",
        target_id=str(session_id),
        after={
            "total": result.total,
            "created": result.created,
            "duplicates": result.duplicates,
            "rejected": result.rejected,
        },
    )
    await session.commit()
    return result


@router.post("/sessions/{session_id}/attendance/imports", response_model=AttendanceEntryResult)
async def import_attendance(
    session_id: uuid.UUID,
    file: UploadFile,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    dry_run: Annotated[bool, Query(description="check only; nothing is written")] = True,
) -> AttendanceEntryResult:
    """Enter the session's attendance from the learning point's sheet (.xlsx or .csv).

    Headers (Chinese, as on the sheets): 学习账号 (or 学号, 账号; required), 姓名 (shown back,
    not stored), 签到时间, 签退时间 (Beijing time; a time alone is on the session's date),
    学时(分钟). Run with ``dry_run=true`` (the default) to see every row's result, then with
    ``dry_run=false`` to write the good rows. Each result carries the sheet's row number;
    uploading the same sheet again changes nothing. Same rules as the JSON entry.
    """
    path = require_staff(principal, WRITING_STAFF)
    content = await file.read(staff_entry.MAX_SHEET_BYTES + 1)
    result = await staff_entry.enter_sheet(
        session=session,
        accounts=request.app.state.accounts,
        authorization=request.headers["authorization"],
        session_id=session_id,
        filename=file.filename or "",
        content=content,
        staff_path=path,
        actor=principal,
        dry_run=dry_run,
    )
    if not dry_run:
        audit.record(
            session,
            actor=principal,
            action="attendance.import",
            target_type="session",
            target_id=str(session_id),
            after={
                "file": result.file,
                "total": result.total,
                "created": result.created,
                "duplicates": result.duplicates,
                "rejected": result.rejected,
            },
        )
        await session.commit()
    return result


@router.get("/me/attendance", response_model=Page[AttendancePublic])
async def my_attendance(
    principal: CurrentPrincipal, session: SessionDep, page: PageDep
) -> Page[AttendancePublic]:
    """The resident's check-ins (考勤), latest first, with the record each produced."""
    learner = uuid.UUID(require_resident(principal))
    return await service.attendance_of(session=session, learner_id=learner, page=page)


@router.get("/learners/{learner_id}/attendance", response_model=Page[AttendancePublic])
async def learner_attendance(
    learner: VisibleLearner, session: SessionDep, page: PageDep
) -> Page[AttendancePublic]:
    """A learner's check-ins, latest first (staff covering the learner, auditors)."""
    return await service.attendance_of(session=session, learner_id=learner, page=page)

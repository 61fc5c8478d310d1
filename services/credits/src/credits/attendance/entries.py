"""Staff-entered attendance rows and how much of a session each counts: pure rules, no I/O.

A row names the resident by learning account number and may give check-in and check-out times
and a number of minutes, all optional:

- presence runs from check-in (default: the session's start) to check-out (default: its end,
  or now while the session runs), and only the part inside the session counts, as with a QR
  check-in;
- presence that does not overlap the session by a minute or more, a check-out not after the
  check-in, a time in the future, or one with no UTC instant (stored times are UTC) is refused;
- minutes default to the session's planned minutes, shortened to the presence counted; minutes
  given must be a positive whole number no larger than the presence counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

CLOCK_SKEW = timedelta(minutes=2)
# 6-digit district code, 7-digit sequence, check character (the accounts service owns the rule)
ACCOUNT_NUMBER = re.compile(r"^[0-9]{13}[0-9X]$")  # ASCII: \d also takes "٤"


@dataclass(frozen=True)
class Counted:
    """What the row counts: the part of the session attended, and its minutes."""

    started_at: datetime
    ended_at: datetime
    minutes: int


@dataclass(frozen=True)
class Refusal:
    """Why a row cannot count, in English and Chinese, and which field is wrong."""

    field: str
    reason: str
    reason_zh: str


@dataclass
class Entry:
    """One resident's attendance as staff entered it (a JSON entry or a sheet row).

    ``row`` is the sheet row number (the header is row 1), None for JSON entries; ``name`` is
    the name written on the sheet, echoed back to help the staff and never stored.
    ``refusals`` holds what was wrong with the row's cells before any rule was applied.
    """

    learner: str
    checked_in_at: datetime | None = None
    checked_out_at: datetime | None = None
    minutes: int | None = None
    row: int | None = None
    name: str | None = None
    refusals: list[Refusal] = field(default_factory=list)


def is_account_number(text: str) -> bool:
    """Whether ``text`` has the shape of a learning account number (the check is the owner's)."""
    return bool(ACCOUNT_NUMBER.match(text))


def count(
    *,
    session_start: datetime,
    session_end: datetime,
    planned_minutes: int,
    checked_in_at: datetime | None,
    checked_out_at: datetime | None,
    minutes: int | None,
    now: datetime,
) -> Counted | Refusal:
    """The attendance one row counts, or why it cannot count (see the module's rules)."""
    for name, moment, zh in (
        ("checked_in_at", checked_in_at, "签到时间"),
        ("checked_out_at", checked_out_at, "签退时间"),
    ):
        if moment is None:
            continue
        if moment > now + CLOCK_SKEW:
            return Refusal(name, "the time is in the future", f"{zh}晚于当前时间")
        try:
            moment.astimezone(UTC)  # stored as UTC: year 1 east of Greenwich has no UTC form
        except OverflowError:
            return Refusal(name, "the time is out of range", f"{zh}超出范围")
    if checked_in_at is not None and checked_out_at is not None:
        if checked_out_at <= checked_in_at:
            return Refusal(
                "checked_out_at", "check-out must be after check-in", "签退时间应晚于签到时间"
            )
    start = max(session_start, checked_in_at or session_start)
    # no check-out given: present to the end, or to now while the session runs (an entry made
    # during the class counts what has been attended, never minutes still to come)
    end = min(session_end, checked_out_at or min(session_end, now))
    running = checked_out_at is None and now < session_end
    if end <= start:
        return Refusal(
            "checked_in_at" if checked_in_at is not None else "checked_out_at",
            "the times given do not overlap the session",
            "签到、签退时间不在本场次时间内",
        )
    present = int((end - start).total_seconds() // 60)
    if present < 1:
        return Refusal(
            "checked_in_at" if checked_in_at is not None else "checked_out_at",
            "less than one minute within the session",
            "在本场次内的时长不足1分钟",
        )
    if minutes is None:
        return Counted(start, end, min(planned_minutes, present))
    if minutes <= 0:
        return Refusal(
            "minutes", "minutes must be a positive whole number", "学时（分钟）应为正整数"
        )
    if minutes > present:
        if running:
            return Refusal(
                "minutes",
                f"the session has not ended: at most {present} minutes so far",
                f"本场次尚未结束，目前最多{present}分钟",
            )
        if checked_in_at is None and checked_out_at is None:
            return Refusal(
                "minutes",
                f"more minutes than the session lasted ({present})",
                f"学时超过本场次时长（{present}分钟）",
            )
        return Refusal(
            "minutes",
            f"more minutes than the presence within the session ({present})",
            f"学时超过签到至签退期间在本场次内的时长（{present}分钟）",
        )
    return Counted(start, end, minutes)

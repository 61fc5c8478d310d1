"""The attendance sheets learning points keep (.xlsx or .csv, Chinese headers), as entries.

Pure: rows from :mod:`kernel.sheets` in, :class:`~credits.attendance.entries.Entry` out. Accepted
headers (spaces and full-width brackets do not matter):

=================  ======================================================
field              headers
=================  ======================================================
learner (required) 学习账号, 学习账号编号, 学号, 账号
name               姓名 (shown back in the results; never stored)
checked_in_at      签到时间
checked_out_at     签退时间
minutes            学时(分钟), 学习时长(分钟), 时长(分钟), 分钟数
=================  ======================================================

Times are Beijing time unless they carry an offset: ``2026-11-25 09:05``, ``2026/11/25 9:05``,
an Excel date-time cell, or a time alone (``9:05``, an Excel time cell) on the session's date.
Minutes are a whole number, optionally followed by 分钟 or 分. A column headed 学时, 时长 or
学习时长 without "(分钟)" is refused: 学时 often means class periods, not minutes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from credits.attendance.entries import Entry, Refusal
from kernel.sheets import BEIJING, SheetRow, moment_cell
from kernel.text import account_number

CHINA = BEIJING  # Beijing time, no daylight saving

HEADERS: dict[str, str] = {
    "学习账号": "learner",
    "学习账号编号": "learner",
    "学号": "learner",
    "账号": "learner",
    "姓名": "name",
    # not a bare 签到/签退: on paper sheets those columns hold signatures or ticks, not times
    "签到时间": "checked_in_at",
    "签退时间": "checked_out_at",
    "学时(分钟)": "minutes",
    "学习时长(分钟)": "minutes",
    "时长(分钟)": "minutes",
    "分钟数": "minutes",
}
REQUIRED = {"learner": "学习账号"}
_UNITLESS = (
    "the column {0} does not say its unit: head it {0}(分钟) and give minutes",
    "“{0}”列未注明单位：请把表头改为“{0}(分钟)”并填写分钟数",
)
REFUSED = {
    title: (_UNITLESS[0].format(title), _UNITLESS[1].format(title.split("(")[0]))
    for title in ("学时", "时长", "学习时长", "学时(小时)")
}

_MINUTES = re.compile(r"^(\d+)(?:\.0+)?\s*(?:分钟|分)?$")


def parse_minutes(text: str) -> int | None:
    """A sheet's minutes cell as a whole number.

    Raises:
        ValueError: the cell is not a whole number of minutes.
    """
    value = text.strip()
    if not value:
        return None
    found = _MINUTES.match(value)
    if found is None:
        raise ValueError(value)
    return int(found.group(1))


def entries_from_sheet(rows: Iterable[SheetRow], *, session_start: datetime) -> list[Entry]:
    """Each data row as an entry, with what was wrong with its cells.

    A time alone is read on the Beijing date the session starts on.
    """
    day = session_start.astimezone(CHINA).date()
    entries = []
    for row in rows:
        cells = row.fields
        entry = Entry(
            learner=account_number(cells.get("learner", "")),
            row=row.number,
            name=cells.get("name", "").strip() or None,
        )
        for field, zh in (("checked_in_at", "签到时间"), ("checked_out_at", "签退时间")):
            try:
                setattr(entry, field, moment_cell(cells.get(field, ""), day=day))
            except ValueError:
                entry.refusals.append(
                    Refusal(field, f"not a time: {cells[field]!r}", f"{zh}格式无法识别")
                )
        try:
            entry.minutes = parse_minutes(cells.get("minutes", ""))
        except ValueError:
            entry.refusals.append(
                Refusal(
                    "minutes",
                    f"not a whole number of minutes: {cells['minutes']!r}",
                    "学时（分钟）应为整数",
                )
            )
        entries.append(entry)
    return entries

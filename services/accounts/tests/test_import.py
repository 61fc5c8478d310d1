"""Bulk import of residents: dry run with every bad row, commit, safe to repeat."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import httpx
from openpyxl import Workbook
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from accounts.learners.models import LearningAccount
from accounts.network.models import Unit
from kernel.clock import aware_utc
from testkit.people import id_number, phone

from .conftest import bearer
from .test_learners import WANGCUN, village

HEADER = [
    "姓名",
    "身份证号",
    "手机号",
    "村(社区)编码",
    "人群类别",
    "同意版本",
    "同意时间",
    "同意方式",
]


def _rows(residence: str) -> tuple[list[list[str]], dict[str, int]]:
    good_a, good_b = id_number(), id_number()
    bad = good_a[:17] + ("1" if good_a[17] != "1" else "2")
    child = id_number(date(date.today().year - 8, 3, 3))
    rows = [
        [
            "张桂兰",
            good_a,
            phone(),
            residence,
            "老年人、农村居民",
            "2026-01",
            "2026-10-01",
            "纸质",
        ],  # row 2
        ["李强", good_b, "", residence, "退役士兵", "2026-01", "2026/10/02", "APP"],  # row 3
        ["错号", bad, "", residence, "", "2026-01", "2026-10-01", "纸质"],  # row 4: checksum
        [
            "重复",
            good_a,
            "",
            residence,
            "",
            "2026-01",
            "2026-10-01",
            "纸质",
        ],  # row 5: duplicate of 2
        ["外村", id_number(), "", "999999999999", "", "2026-01", "2026-10-01", "纸质"],  # row 6
        ["无同意", id_number(), "", residence, "", "", "", "纸质"],  # row 7: no consent
        [
            "小明",
            child,
            "",
            residence,
            "青少年",
            "2026-01",
            "2026-10-01",
            "纸质",
        ],  # row 8: no guardian
        [
            "怪类",
            id_number(),
            "12345",
            residence,
            "火星人",
            "2026-01",
            "2026-10-01",
            "纸质",
        ],  # row 9
    ]
    return rows, {"good_a": 2, "good_b": 3}


def _csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")


def _xlsx(rows: list[list[str]], merged: tuple[str, ...] = ()) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    for cells in merged:
        sheet.merge_cells(cells)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


async def _upload(
    client: httpx.AsyncClient, token: str, name: str, content: bytes, dry_run: bool
) -> dict:
    response = await client.post(
        "/api/v1/learning-accounts/imports",
        params={"dry_run": str(dry_run).lower()},
        files={"file": (name, content)},
        headers=bearer(token),
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _count(session: AsyncSession) -> int:
    return int(
        (await session.execute(select(func.count()).select_from(LearningAccount))).scalar_one()
    )


async def test_dry_run_names_every_bad_row_and_writes_nothing(
    session_client, staff_factory
) -> None:
    client, session = session_client
    token = await staff_factory("school_staff", WANGCUN)
    rows, _ = _rows(await village(client, WANGCUN))
    before = await _count(session)
    report = await _upload(client, token, "居民.csv", _csv(rows), dry_run=True)
    assert (report["total"], report["created"], report["rejected"]) == (8, 2, 6)
    reasons = {(p["row"], p["field"]) for p in report["problems"]}
    assert reasons == {
        (4, "id_number"),
        (5, "id_number"),
        (6, "residence_unit"),
        (7, "consent"),
        (8, "guardian"),
        (9, "phone"),
        (9, "groups"),
    }
    duplicate = next(p for p in report["problems"] if p["row"] == 5)
    assert duplicate["reason"] == "duplicate of row 2" and "第 2 行" in duplicate["reason_zh"]
    assert await _count(session) == before


async def test_commit_creates_good_rows_and_a_second_run_changes_nothing(
    session_client, staff_factory
) -> None:
    client, session = session_client
    token = await staff_factory("school_staff", WANGCUN)
    rows, _ = _rows(await village(client, WANGCUN))
    before = await _count(session)
    first = await _upload(client, token, "居民.xlsx", _xlsx(rows), dry_run=False)
    assert (first["created"], first["updated"], first["rejected"]) == (2, 0, 6)
    assert await _count(session) == before + 2
    again = await _upload(client, token, "居民.xlsx", _xlsx(rows), dry_run=False)
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)
    assert await _count(session) == before + 2
    rows[1][4] = "退役士兵、志愿者"  # 志愿者 is a role, not a group: refused
    rows[0][0] = "张桂兰（改）"
    third = await _upload(client, token, "居民.csv", _csv(rows), dry_run=False)
    assert (third["created"], third["updated"]) == (0, 1)
    assert any(p["row"] == 3 and p["field"] == "groups" for p in third["problems"])
    assert await _count(session) == before + 2
    listed = await client.get(
        "/api/v1/learning-accounts", params={"limit": 100}, headers=bearer(token)
    )
    names = {a["name"] for a in listed.json()["items"]}
    assert "张桂兰（改）" in names


async def test_a_roster_with_the_village_and_consent_merged_down_imports_every_row(
    session_client, staff_factory
) -> None:
    """Rosters kept by hand merge the village and the consent session over their rows: every
    row under a merged cell reads its value."""
    client, session = session_client
    token = await staff_factory("school_staff", WANGCUN)
    residence = await village(client, WANGCUN)
    rows = [
        ["赵秀英", id_number(), "", residence, "老年人", "2026-01", "2026-10-01", "纸质"],
        ["钱建国", id_number(), "", "", "", "", "", ""],
        ["孙美华", id_number(), "", "", "农村居民", "", "", ""],
    ]
    # rows 2-4 under the merged village, consent version, time and channel (columns D, F-H)
    content = _xlsx(rows, merged=("D2:D4", "F2:F4", "G2:G4", "H2:H4"))
    before = await _count(session)
    report = await _upload(client, token, "花名册.xlsx", content, dry_run=False)
    assert (report["created"], report["rejected"], report["problems"]) == (3, 0, [])
    assert await _count(session) == before + 3
    listed = await client.get(
        "/api/v1/learning-accounts", params={"limit": 100}, headers=bearer(token)
    )
    homes = {a["name"]: a["residence_unit"] for a in listed.json()["items"]}
    assert [homes[name] for name in ("赵秀英", "钱建国", "孙美华")] == [residence] * 3


async def test_a_sheet_without_required_columns_is_refused(session_client, staff_factory) -> None:
    client, _ = session_client
    token = await staff_factory("school_staff", WANGCUN)
    response = await client.post(
        "/api/v1/learning-accounts/imports",
        files={"file": ("x.csv", "姓名,电话\n张三,13800000000\n".encode())},
        headers=bearer(token),
    )
    assert response.status_code == 422
    assert response.json()["type"].endswith("/unreadable-sheet")
    assert "身份证号" in response.json()["detail"]


def _sheet_csv(header: list[str], rows: list[list[str]], *, delimiter: str = ",") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("gb18030")  # plain "CSV" from Excel on Chinese Windows


async def test_consent_times_as_excel_writes_them_are_read_in_beijing_time(
    session_client, staff_factory
) -> None:
    """Excel on Chinese Windows writes a date cell to CSV as 2026/10/1 9:30; people type
    2026年10月2日. Both were "missing consent", and a time without an offset was stored as UTC
    (eight hours late). An unreadable time is said to be unreadable, not missing."""
    client, session = session_client
    token = await staff_factory("school_staff", WANGCUN)
    residence = await village(client, WANGCUN)
    numbers = [id_number() for _ in range(4)]
    rows = [
        ["周一", numbers[0], "", residence, "", "2026-01", "2026/10/1 9:30", "纸质"],
        ["周二", numbers[1], "", residence, "", "2026-01", "2026年10月2日", "纸质"],
        ["周三", numbers[2], "", residence, "", "2026-01", "2026-10-03T08:00:00+08:00", "APP"],
        ["周四", numbers[3], "", residence, "", "2026-01", "十月一日", "纸质"],
    ]
    report = await _upload(client, token, "名册.csv", _sheet_csv(HEADER, rows), dry_run=False)
    assert (report["created"], report["rejected"]) == (3, 1), report
    (refused,) = report["problems"]
    assert (refused["row"], refused["field"]) == (5, "consent")
    assert "十月一日" in refused["reason"] and "无法识别" in refused["reason_zh"]
    stored = dict(
        (
            await session.execute(
                select(LearningAccount.name, LearningAccount.consent_at).where(
                    col(LearningAccount.name).in_(["周一", "周二", "周三"])
                )
            )
        ).all()
    )
    as_utc = {name: aware_utc(moment) for name, moment in stored.items()}
    assert as_utc == {
        "周一": datetime(2026, 10, 1, 1, 30, tzinfo=UTC),
        "周二": datetime(2026, 10, 1, 16, 0, tzinfo=UTC),  # midnight in Beijing
        "周三": datetime(2026, 10, 3, 0, 0, tzinfo=UTC),
    }


async def test_an_id_number_excel_turned_into_a_number_says_to_make_the_column_text(
    session_client, staff_factory
) -> None:
    """An 18-digit ID number typed into a General cell keeps 15 digits (the sheet shows
    4.10711E+17, or a number whose last digits are wrong): it was refused as a wrong check
    digit, which sends the person checking a number they see as right."""
    client, _ = session_client
    token = await staff_factory("school_staff", WANGCUN)
    residence = await village(client, WANGCUN)
    typed = id_number()
    as_number = float(typed[:17] + ("0" if typed[17] == "X" else typed[17]))
    book = _xlsx([["吴一", as_number, "", residence, "", "2026-01", "2026-10-01", "纸质"]])  # type: ignore[list-item]
    saved_as_csv = _csv(
        [["吴二", "4.10711E+17", "", residence, "", "2026-01", "2026-10-01", "纸质"]]
    )
    for name, content in (("名册.xlsx", book), ("名册.csv", saved_as_csv)):
        report = await _upload(client, token, name, content, dry_run=True)
        (problem,) = report["problems"]
        assert problem["field"] == "id_number", problem
        assert "Text" in problem["reason"] and "文本" in problem["reason_zh"], problem


async def test_sheets_that_cannot_be_read_as_meant_say_how_to_mend_them(
    session_client, staff_factory
) -> None:
    """Two columns for one field (手机号 and, further right, a family's 联系电话): the last one
    was taken silently. A title row above the header: "lacks required columns" though they are
    there. A semicolon-separated CSV: the same. Now the first two say what to change, and
    semicolons are read."""
    client, _ = session_client
    token = await staff_factory("school_staff", WANGCUN)
    residence = await village(client, WANGCUN)
    row = ["郑一", id_number(), "13912345678", residence, "", "2026-01", "2026-10-01", "纸质"]
    twice = _sheet_csv([*HEADER, "联系电话"], [[*row, "13711112222"]])
    titled = _sheet_csv(["王村镇2026年居民名册"], [HEADER, row])
    url = "/api/v1/learning-accounts/imports"
    for content, reason, reason_zh in (
        (twice, "手机号 and 联系电话", "请删除其中一列"),
        (titled, "row 2", "表头须在第1行"),
    ):
        response = await client.post(
            url, files={"file": ("名册.csv", content)}, headers=bearer(token)
        )
        assert response.status_code == 422, response.text
        assert reason in response.json()["detail"], response.text
        assert reason_zh in response.json()["detail_zh"], response.text
    semicolons = _sheet_csv(HEADER, [row], delimiter=";")
    report = await _upload(client, token, "名册.csv", semicolons, dry_run=True)
    assert (report["created"], report["problems"]) == (1, []), report


async def test_a_row_naming_a_town_or_a_closed_point_says_so(session_client, staff_factory) -> None:
    """Both were "unknown village, or not in your unit", which sends staff looking for a typo."""
    client, session = session_client
    token = await staff_factory("school_staff", WANGCUN)
    closed = await village(client, WANGCUN, index=1)
    await session.execute(update(Unit).where(col(Unit.key) == closed).values(status="closed"))
    await session.commit()
    rows = [
        [name, id_number(), "", unit, "", "2026-01", "2026-10-01", "纸质"]
        for name, unit in (("孙一", WANGCUN), ("孙二", closed), ("孙三", "999999999999"))
    ]
    report = await _upload(client, token, "名册.csv", _csv(rows), dry_run=True)
    reasons = {p["row"]: (p["field"], p["reason_zh"]) for p in report["problems"]}
    assert reasons[2][0] == "residence_unit" and "上级单位" in reasons[2][1], reasons
    assert "已停用" in reasons[3][1], reasons
    assert "不存在或不在您的管理范围内" in reasons[4][1], reasons


async def test_a_sheet_changes_groups_and_roles_only_where_it_gives_them(
    session_client, staff_factory
) -> None:
    """A sheet without a 角色 column (or a blank cell) wiped a volunteer's roles, reported as
    "updated", while a blank phone cell kept the phone. Now nothing is changed that the sheet
    does not give; a cell that gives roles or groups still changes them."""
    client, session = session_client
    token = await staff_factory("school_staff", WANGCUN)
    residence = await village(client, WANGCUN)
    number = id_number()
    first = [["周志", number, "", residence, "老年人", "2026-01", "2026-10-01", "纸质"]]
    await _upload(client, token, "名册.csv", _csv(first), dry_run=False)
    account = (
        await session.execute(select(LearningAccount).where(col(LearningAccount.name) == "周志"))
    ).scalar_one()
    patched = await client.patch(
        f"/api/v1/learning-accounts/{account.id}",
        json={"roles": ["volunteer"], "reason": "登记志愿者"},
        headers=bearer(token),
    )
    assert patched.status_code == 200, patched.text

    async def shown() -> tuple[list[str], list[str]]:
        got = await client.get(f"/api/v1/learning-accounts/{account.id}", headers=bearer(token))
        return got.json()["groups"], got.json()["roles"]

    without_roles = _sheet_csv(
        ["姓名", "身份证号", "村(社区)编码", "同意版本", "同意时间"],
        [["周志", number, residence, "2026-01", "2026-10-01"]],
    )
    report = await _upload(client, token, "名册.csv", without_roles, dry_run=False)
    assert (report["updated"], report["unchanged"]) == (0, 1), report
    assert await shown() == (["elderly"], ["volunteer"])
    blank = [["周志", number, "", residence, "", "2026-01", "2026-10-01", "纸质"]]
    report = await _upload(client, token, "名册.csv", _csv(blank), dry_run=False)
    assert report["unchanged"] == 1 and await shown() == (["elderly"], ["volunteer"])
    row = ["周志", number, "", residence, "农村居民", "2026-01", "2026-10-01", "纸质", "兼职教师"]
    given = _sheet_csv([*HEADER, "角色"], [row])
    report = await _upload(client, token, "名册.csv", given, dry_run=False)
    assert report["updated"] == 1 and await shown() == (["rural_residents"], ["part_time_teacher"])

"""Bulk import of residents: dry run with every bad row, commit, safe to repeat."""

from __future__ import annotations

import csv
import io
from datetime import date

import httpx
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.learners.models import LearningAccount
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

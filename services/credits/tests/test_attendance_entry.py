"""Staff enter a session's attendance at once (JSON or a sheet): per-row results, good rows kept,
duplicates never stored twice, minutes bounded by the session, records pending verification."""

from __future__ import annotations

import io
import uuid
import zipfile
from datetime import UTC, datetime, timedelta

import httpx
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook
from sqlalchemy import func, select

from credits.attendance import entries as rules
from credits.attendance.sheet import CHINA
from credits.records.models import Attendance, LearningRecord
from testkit.http import bearer

from .conftest import arrived_earlier, new_learner

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _yesterday_morning() -> tuple[datetime, datetime]:
    """09:00-11:00 Beijing time yesterday: over, and never across midnight."""
    day = datetime.now(CHINA).date() - timedelta(days=1)
    start = datetime.combine(day, datetime.min.time(), CHINA).replace(hour=9)
    return start, start + timedelta(hours=2)


async def _activity(client: httpx.AsyncClient, token: str) -> dict:
    start, end = _yesterday_morning()
    now = datetime.now(UTC)
    body = {
        "title": "太极拳提高班",
        "kind": "training_class",
        "category": "tai_chi",
        "mode": "offline",
        "host_unit": "410711100",
        "sessions": [
            {
                "starts_at": start.isoformat(),
                "ends_at": end.isoformat(),
                "planned_minutes": 90,
            },
            {
                "starts_at": (now - timedelta(minutes=30)).isoformat(),
                "ends_at": (now + timedelta(minutes=60)).isoformat(),
            },
            {
                "starts_at": (now + timedelta(days=2)).isoformat(),
                "ends_at": (now + timedelta(days=2, hours=1)).isoformat(),
            },
        ],
    }
    response = await client.post("/api/v1/activities", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    return dict(response.json())


def _staff(issue_token, **claims: str):  # type: ignore[no-untyped-def]
    return issue_token("staff", role="learning_point_staff", unit="410711100", **claims)


async def _count(db, model, session_id: str) -> int:  # type: ignore[no-untyped-def]
    query = select(func.count()).select_from(model).where(model.session_id == uuid.UUID(session_id))
    return int((await db.execute(query)).scalar_one())


def _xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


async def test_json_entry_keeps_good_rows_and_says_why_each_bad_one_failed(
    session_client, issue_token
) -> None:
    client, db = session_client
    staff_id = str(uuid.uuid4())
    staff = _staff(issue_token, subject=staff_id)
    activity = await _activity(client, staff)
    session_id = activity["sessions"][0]["id"]
    start, end = _yesterday_morning()
    (a, a_id), (b, _), (c, _), (d, _) = (new_learner() for _ in range(4))
    closed, _ = new_learner("closed")
    entries = [
        {"learner": a},  # 0: planned minutes
        {"learner": b.lower(), "minutes": 60},  # 1
        {  # 2: stayed past the end: only the session's part counts
            "learner": c,
            "checked_in_at": (start + timedelta(minutes=30)).isoformat(),
            "checked_out_at": (end + timedelta(minutes=30)).isoformat(),
        },
        {  # 3: came early, left after 45 minutes of the session
            "learner": d,
            "checked_in_at": (start - timedelta(minutes=10)).isoformat(),
            "checked_out_at": (start + timedelta(minutes=45)).isoformat(),
        },
        {"learner": "41071100000000"},  # 4 unknown
        {"learner": closed},  # 5 closed account
        {"learner": new_learner()[0], "minutes": 200},  # 6 longer than the session
        {  # 7 before the session
            "learner": new_learner()[0],
            "checked_in_at": (start - timedelta(hours=3)).isoformat(),
            "checked_out_at": (start - timedelta(hours=2)).isoformat(),
        },
        {  # 8 out before in
            "learner": new_learner()[0],
            "checked_in_at": (start + timedelta(minutes=50)).isoformat(),
            "checked_out_at": (start + timedelta(minutes=20)).isoformat(),
        },
        {"learner": "12345"},  # 9 not an account number
        {"learner": a, "minutes": 30},  # 10 repeats entry 0
        {"learner": new_learner()[0], "minutes": 0},  # 11
    ]
    response = await client.post(
        f"/api/v1/sessions/{session_id}/attendance",
        json={"entries": entries},
        headers=bearer(staff),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["total"], body["created"], body["duplicates"], body["rejected"]) == (12, 4, 0, 8)
    results = body["results"]
    assert [r["index"] for r in results] == list(range(12))
    assert [r["minutes"] for r in results[:4]] == [90, 60, 90, 45]
    assert all(r["status"] == "created" and r["row"] is None for r in results[:4])
    reasons = {
        i: (r["errors"][0]["field"], r["errors"][0]["reason"])
        for i, r in enumerate(results)
        if r["errors"]
    }
    assert reasons == {
        4: ("learner", "unknown learning account number"),
        5: ("learner", "the learning account is closed"),
        6: ("minutes", "more minutes than the session lasted (120)"),
        7: ("checked_in_at", "the times given do not overlap the session"),
        8: ("checked_out_at", "check-out must be after check-in"),
        9: ("learner", "not a learning account number"),
        10: ("learner", "repeats entry 0"),
        11: ("minutes", "minutes must be a positive whole number"),
    }
    assert results[5]["errors"][0]["reason_zh"] == "该学习账号已注销"
    assert results[6]["errors"][0]["reason_zh"] == "学时超过本场次时长（120分钟）"

    records = {
        r.id: r
        for r in (
            await db.execute(
                select(LearningRecord).where(LearningRecord.session_id == uuid.UUID(session_id))
            )
        ).scalars()
    }
    assert set(records) == {r["record_id"] for r in results[:4]}
    first = records[results[0]["record_id"]]
    assert (first.source, first.status, first.learner_id) == ("staff_entry", "pending", a_id)
    assert first.status_changed_by == staff_id
    assert first.evidence["entered_by"] == staff_id and first.evidence["via"] == "json"
    assert first.evidence["minutes_given"] is None
    assert first.category_code == "tai_chi" and first.host_unit_path == "/410711/410711100/"
    assert (first.started_at.replace(tzinfo=UTC), first.ended_at.replace(tzinfo=UTC)) == (
        start,
        end,
    )
    third = records[results[2]["record_id"]]
    assert third.started_at.replace(tzinfo=UTC) == start + timedelta(minutes=30)
    assert third.ended_at.replace(tzinfo=UTC) == end
    attendances = (
        (await db.execute(select(Attendance).where(Attendance.session_id == uuid.UUID(session_id))))
        .scalars()
        .all()
    )
    assert {a.record_id for a in attendances} == set(records)
    assert {str(a.id) for a in attendances} == {
        r.evidence["attendance_id"] for r in records.values()
    }


async def test_an_open_qr_check_in_is_completed_a_finished_one_is_a_duplicate_and_again_no_op(
    session_client, issue_token
) -> None:
    client, db = session_client
    staff = _staff(issue_token)
    activity = await _activity(client, staff)
    running = activity["sessions"][1]["id"]
    (scanned, scanned_id), (listed, listed_id), (left, left_id) = (new_learner() for _ in range(3))
    code = (
        await client.post(f"/api/v1/sessions/{running}/check-in-code", headers=bearer(staff))
    ).json()["code"]
    for learner_id in (scanned_id, left_id):
        checked = await client.post(
            f"/api/v1/sessions/{running}/check-in",
            json={"code": code},
            headers=bearer(issue_token("resident", subject=str(learner_id))),
        )
        assert checked.status_code == 201
    await arrived_earlier(db, running, left_id, minutes=20)
    await arrived_earlier(db, running, scanned_id, minutes=20)
    out = await client.post(
        f"/api/v1/sessions/{running}/check-out",
        json={"code": code},
        headers=bearer(issue_token("resident", subject=str(left_id))),
    )
    assert out.status_code == 200, out.text
    url = f"/api/v1/sessions/{running}/attendance"
    body = {"entries": [{"learner": scanned}, {"learner": listed}, {"learner": left}]}
    first = (await client.post(url, json=body, headers=bearer(staff))).json()
    assert [r["status"] for r in first["results"]] == ["created", "created", "duplicate"]
    assert first["results"][2]["record_id"] == out.json()["id"]  # the QR check-out's record
    # the session began 30 minutes ago and runs another hour: what was attended so far
    # counts (the planned 90 minutes were counted before, an hour of them still to come)
    assert 30 <= first["results"][1]["minutes"] <= 31
    assert 20 <= first["results"][0]["minutes"] <= 21  # from the QR arrival to now
    # the open check-in's row now carries the departure and the staff entry's record
    completed = (
        await db.execute(
            select(Attendance).where(
                Attendance.session_id == uuid.UUID(running), Attendance.learner_id == scanned_id
            )
        )
    ).scalar_one()
    await db.refresh(completed)
    record = await db.get(LearningRecord, first["results"][0]["record_id"])
    assert record is not None
    assert completed.record_id == record.id and completed.checked_out_at is not None
    assert (record.source, record.status) == ("staff_entry", "pending")
    assert record.evidence["attendance_id"] == str(completed.id)
    assert (
        record.evidence["completes_check_in_at"]
        == completed.checked_in_at.replace(tzinfo=UTC).isoformat()
    )
    assert record.started_at == completed.checked_in_at  # counted from the QR arrival
    again = (await client.post(url, json=body, headers=bearer(staff))).json()
    assert [r["status"] for r in again["results"]] == ["duplicate"] * 3
    assert [r["record_id"] for r in again["results"]] == [r["record_id"] for r in first["results"]]
    assert await _count(db, Attendance, running) == 3
    assert await _count(db, LearningRecord, running) == 3
    # the resident entered by staff cannot then check out by QR code into a second record
    for learner_id in (scanned_id, listed_id):
        late = await client.post(
            f"/api/v1/sessions/{running}/check-out",
            json={"code": code},
            headers=bearer(issue_token("resident", subject=str(learner_id))),
        )
        assert late.status_code == 409 and late.json()["detail_zh"] == "您已签退。"


async def test_sheet_upload_dry_run_then_commit_with_row_numbers_and_reupload_is_a_no_op(
    session_client, issue_token
) -> None:
    client, db = session_client
    staff = _staff(issue_token)
    activity = await _activity(client, staff)
    session_id = activity["sessions"][0]["id"]
    start, _ = _yesterday_morning()
    local = start.astimezone(CHINA).replace(tzinfo=None)  # as Excel keeps it: no offset
    (a, _), (b, _), (c, _), (d, _) = (new_learner() for _ in range(4))
    content = _xlsx(
        [
            ["序号", "学号", "姓名", "签到时间", "签退时间", "学时（分钟）", "备注"],
            [1, a, "张三", local + timedelta(minutes=5), None, None, None],  # row 2
            [2, b, "李四", "9:10", "10:40", None, "仅时间"],  # row 3
            [None, None, None, None, None, None, None],  # row 4, blank
            [3, "41071100000000", "王五", None, None, None, None],  # row 5
            [4, c, "赵六", None, None, "45分钟", None],  # row 6
            [5, d, "钱七", "九点", None, None, None],  # row 7
            [6, a, "张三", None, None, None, "重复"],  # row 8
        ]
    )
    url = f"/api/v1/sessions/{session_id}/attendance/imports"
    files = {"file": ("签到表.xlsx", content, XLSX)}
    dry = await client.post(url, files=files, headers=bearer(staff))
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert body["dry_run"] is True and body["file"] == "签到表.xlsx"
    assert (body["total"], body["created"], body["rejected"]) == (6, 3, 3)
    assert [r["row"] for r in body["results"]] == [2, 3, 5, 6, 7, 8]
    assert [r["name"] for r in body["results"]][:2] == ["张三", "李四"]
    assert [r["minutes"] for r in body["results"] if r["status"] == "created"] == [90, 90, 45]
    assert all(r["record_id"] is None for r in body["results"])
    assert await _count(db, Attendance, session_id) == 0

    written = await client.post(
        url, files=files, params={"dry_run": "false"}, headers=bearer(staff)
    )
    assert written.status_code == 200, written.text
    results = {r["row"]: r for r in written.json()["results"]}
    assert [results[n]["status"] for n in (2, 3, 5, 6, 7, 8)] == [
        "created",
        "created",
        "rejected",
        "created",
        "rejected",
        "rejected",
    ]
    assert results[5]["errors"] == [
        {
            "field": "learner",
            "reason": "unknown learning account number",
            "reason_zh": "找不到该学习账号",
        }
    ]
    assert results[7]["errors"][0]["field"] == "checked_in_at"
    assert results[7]["errors"][0]["reason_zh"] == "签到时间格式无法识别"
    assert results[8]["errors"][0]["reason"] == "repeats row 2"
    assert results[8]["errors"][0]["reason_zh"] == "与第2行重复"
    record = await db.get(LearningRecord, results[3]["record_id"])
    assert record is not None
    assert record.started_at.replace(tzinfo=UTC) == start + timedelta(minutes=10)
    assert record.minutes == 90  # 9:10-10:40 is 90 minutes, the planned time
    assert record.evidence["file"] == "签到表.xlsx" and record.evidence["row"] == 3
    assert len(record.evidence["file_sha256"]) == 64
    assert "李四" not in str(record.evidence)  # the sheet's names are never stored

    again = (
        await client.post(url, files=files, params={"dry_run": "false"}, headers=bearer(staff))
    ).json()
    assert (again["created"], again["duplicates"], again["rejected"]) == (0, 3, 3)
    assert await _count(db, LearningRecord, session_id) == 3


async def test_a_gb18030_csv_is_read_and_unusable_sheets_are_refused(
    session_client, issue_token
) -> None:
    client, _ = session_client
    staff = _staff(issue_token)
    session_id = (await _activity(client, staff))["sessions"][0]["id"]
    url = f"/api/v1/sessions/{session_id}/attendance/imports"
    number, _ = new_learner()
    # a bare 签到 column holds ticks or signatures on paper sheets: it is not read as a time
    csv = f"学习账号,姓名,签到,学时(分钟)\n{number},孙大爷,√,60\n".encode("gb18030")
    read = await client.post(
        url, files={"file": ("考勤.csv", csv, "text/csv")}, headers=bearer(staff)
    )
    assert read.status_code == 200, read.text
    assert read.json()["results"][0]["status"] == "created"
    assert read.json()["results"][0]["minutes"] == 60 and read.json()["dry_run"] is True
    for filename, content, words, words_zh in (
        ("a.csv", "学号,学时\n1,2\n".encode(), "学时(分钟)", "“学时(分钟)”"),
        ("a.csv", "姓名,签到时间\n张三,9:00\n".encode(), "学习账号", "缺少必填列：学习账号"),
        ("a.csv", "学习账号\n".encode(), "no data rows", "没有数据行"),
        ("a.xls", b"\xd0\xcf\x11\xe0", ".xlsx and .csv", "只能导入 .xlsx 或 .csv"),
        ("a.xlsx", b"PK broken", "not a readable .xlsx", "无法读取该 .xlsx"),
    ):
        refused = await client.post(
            url,
            files={"file": (filename, content, "application/octet-stream")},
            headers=bearer(staff),
        )
        assert refused.status_code == 422, (filename, refused.text)
        assert refused.json()["type"].endswith("/unreadable-sheet")
        assert words in refused.json()["detail"]
        assert words_zh in refused.json()["detail_zh"], refused.text  # each says its own


async def test_only_covering_staff_enter_attendance_and_only_once_the_session_started(
    session_client, issue_token
) -> None:
    client, _ = session_client
    staff = _staff(issue_token)
    activity = await _activity(client, staff)
    done, _, later = (s["id"] for s in activity["sessions"])
    body = {"entries": [{"learner": new_learner()[0]}]}
    files = {"file": ("a.csv", f"学号\n{new_learner()[0]}\n".encode(), "text/csv")}
    elsewhere = issue_token("staff", role="school_staff", unit="410711101")
    for token, expected in (
        (elsewhere, 404),
        (issue_token("resident"), 403),
        (issue_token("partner", client_id="mooc-a"), 403),
        (issue_token("staff", role="auditor", unit="410711"), 403),
    ):
        json_entry = await client.post(
            f"/api/v1/sessions/{done}/attendance", json=body, headers=bearer(token)
        )
        upload = await client.post(
            f"/api/v1/sessions/{done}/attendance/imports", files=files, headers=bearer(token)
        )
        assert (json_entry.status_code, upload.status_code) == (expected, expected)
    college = issue_token("staff", role="college_staff", unit="410711")  # covers every town
    covered = await client.post(
        f"/api/v1/sessions/{done}/attendance", json=body, headers=bearer(college)
    )
    assert covered.status_code == 200 and covered.json()["created"] == 1
    early = await client.post(
        f"/api/v1/sessions/{later}/attendance", json=body, headers=bearer(staff)
    )
    assert early.status_code == 409 and early.json()["type"].endswith("/session-not-started")
    assert early.json()["detail_zh"] == "本场次尚未开始，不能录入考勤。"
    missing = await client.post(
        f"/api/v1/sessions/{uuid.uuid4()}/attendance", json=body, headers=bearer(staff)
    )
    assert missing.status_code == 404
    for bad in ({"entries": []}, {"entries": [{"learner": "x", "who": 1}]}, {"rows": []}):
        response = await client.post(
            f"/api/v1/sessions/{done}/attendance", json=bad, headers=bearer(staff)
        )
        assert response.status_code == 422, bad


async def test_staff_entered_records_wait_for_verification_by_the_school(
    session_client, issue_token
) -> None:
    client, _ = session_client
    staff = _staff(issue_token)
    session_id = (await _activity(client, staff))["sessions"][0]["id"]
    number, learner_id = new_learner()
    entered = await client.post(
        f"/api/v1/sessions/{session_id}/attendance",
        json={"entries": [{"learner": number}]},
        headers=bearer(staff),
    )
    record_id = entered.json()["results"][0]["record_id"]
    resident = issue_token("resident", subject=str(learner_id))
    assert (await client.get("/api/v1/me/hours", headers=bearer(resident))).json()[
        "total_minutes"
    ] == 0  # pending records do not count yet
    change = {"status": "verified", "reason": "签到表核对无误"}
    url = f"/api/v1/learning-records/{record_id}/status"
    assert (await client.post(url, json=change, headers=bearer(staff))).status_code == 403
    school = issue_token("staff", role="school_staff", unit="410711100")
    verified = await client.post(url, json=change, headers=bearer(school))
    assert verified.status_code == 200 and verified.json()["status"] == "verified"
    hours = (await client.get("/api/v1/me/hours", headers=bearer(resident))).json()
    assert hours["total_minutes"] == 90


@given(
    length=st.integers(min_value=1, max_value=600),
    arrive=st.integers(min_value=-120, max_value=700),
    stay=st.integers(min_value=1, max_value=800),
    minutes=st.none() | st.integers(min_value=-5, max_value=800),
    give_in=st.booleans(),
    give_out=st.booleans(),
    entered=st.integers(min_value=-60, max_value=2000),
)
def test_counted_minutes_never_exceed_the_session_nor_leave_its_times(
    length: int,
    arrive: int,
    stay: int,
    minutes: int | None,
    give_in: bool,
    give_out: bool,
    entered: int,
) -> None:
    """Whatever is given, and whenever it is entered (during the session too): the stretch
    counted lies in the session and in the past, and its minutes fit it."""
    start = datetime(2026, 11, 20, 1, tzinfo=UTC)
    end = start + timedelta(minutes=length)
    planned = max(1, length - 15)
    checked_in = start + timedelta(minutes=arrive)
    now = start + timedelta(minutes=entered)
    counted = rules.count(
        session_start=start,
        session_end=end,
        planned_minutes=planned,
        checked_in_at=checked_in if give_in else None,
        checked_out_at=checked_in + timedelta(minutes=stay) if give_out else None,
        minutes=minutes,
        now=now,
    )
    if isinstance(counted, rules.Counted):
        assert start <= counted.started_at < counted.ended_at <= min(end, now + rules.CLOCK_SKEW)
        assert (
            1
            <= counted.minutes
            <= min(length, (counted.ended_at - counted.started_at).seconds // 60)
        )
        assert minutes is not None or counted.minutes <= planned


async def test_a_time_no_utc_instant_can_hold_is_a_rejected_row_and_good_rows_are_kept(
    session_client, issue_token
) -> None:
    client, db = session_client
    staff = _staff(issue_token)
    session_id = (await _activity(client, staff))["sessions"][0]["id"]
    (good, _), (odd, _), (good_too, _), (odd_too, _) = (new_learner() for _ in range(4))
    year_one = "0001-01-01T00:30:00+08:00"  # year 0 in UTC: no instant we can store
    entered = await client.post(
        f"/api/v1/sessions/{session_id}/attendance",
        json={"entries": [{"learner": good}, {"learner": odd, "checked_in_at": year_one}]},
        headers=bearer(staff),
    )
    assert entered.status_code == 200, entered.text
    results = entered.json()["results"]
    assert [r["status"] for r in results] == ["created", "rejected"]
    assert results[1]["errors"] == [
        {
            "field": "checked_in_at",
            "reason": "the time is out of range",
            "reason_zh": "签到时间超出范围",
        }
    ]
    sheet = f"学号,签到时间\n{good_too},\n{odd_too},0001-01-01 00:30\n".encode()
    uploaded = await client.post(
        f"/api/v1/sessions/{session_id}/attendance/imports",
        params={"dry_run": "false"},
        files={"file": ("a.csv", sheet, "text/csv")},
        headers=bearer(staff),
    )
    assert uploaded.status_code == 200, uploaded.text
    assert [(r["row"], r["status"]) for r in uploaded.json()["results"]] == [
        (2, "created"),
        (3, "rejected"),
    ]
    assert uploaded.json()["results"][1]["errors"][0]["field"] == "checked_in_at"
    assert await _count(db, LearningRecord, session_id) == 2


async def test_an_entry_leaving_before_an_open_qr_check_in_is_a_rejected_row(
    session_client, issue_token
) -> None:
    client, db = session_client
    staff = _staff(issue_token)
    running = (await _activity(client, staff))["sessions"][1]
    (scanned, scanned_id), (listed, _) = new_learner(), new_learner()
    code = (
        await client.post(f"/api/v1/sessions/{running['id']}/check-in-code", headers=bearer(staff))
    ).json()["code"]
    checked = await client.post(
        f"/api/v1/sessions/{running['id']}/check-in",
        json={"code": code},
        headers=bearer(issue_token("resident", subject=str(scanned_id))),
    )
    assert checked.status_code == 201
    # the sheet says 10 minutes from the start; the resident scanned in 30 minutes after it
    start = datetime.fromisoformat(running["starts_at"])
    early = {
        "checked_in_at": start.isoformat(),
        "checked_out_at": (start + timedelta(minutes=10)).isoformat(),
    }
    entered = await client.post(
        f"/api/v1/sessions/{running['id']}/attendance",
        json={"entries": [{"learner": scanned, **early}, {"learner": listed, **early}]},
        headers=bearer(staff),
    )
    assert entered.status_code == 200, entered.text
    results = entered.json()["results"]
    assert [r["status"] for r in results] == ["rejected", "created"]
    error = results[0]["errors"][0]
    assert error["field"] == "checked_out_at"
    assert error["reason"].startswith("check-out must be after the QR code check-in at ")
    assert error["reason_zh"].startswith("签退时间应晚于扫码签到时间")
    assert await _count(db, LearningRecord, running["id"]) == 1
    still_open = (
        await db.execute(
            select(Attendance).where(
                Attendance.session_id == uuid.UUID(running["id"]),
                Attendance.learner_id == scanned_id,
            )
        )
    ).scalar_one()
    assert (still_open.record_id, still_open.checked_out_at) == (None, None)


def _with_broken_first_sheet(content: bytes) -> bytes:
    """The .xlsx with its first worksheet's XML cut in half: the workbook opens, rows fail."""
    source, out = zipfile.ZipFile(io.BytesIO(content)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data[: len(data) // 2]
            target.writestr(item, data)
    return out.getvalue()


async def test_sheets_that_break_while_their_rows_are_read_are_refused_not_a_500(
    session_client, issue_token
) -> None:
    client, _ = session_client
    staff = _staff(issue_token)
    session_id = (await _activity(client, staff))["sessions"][0]["id"]
    number = new_learner()[0]
    huge_cell = f"学号,姓名\n{number},{'长' * 200_000}\n".encode()  # past the CSV field limit
    broken = _with_broken_first_sheet(_xlsx([["学号"], [number]]))
    for filename, content in (("a.csv", huge_cell), ("a.xlsx", broken)):
        refused = await client.post(
            f"/api/v1/sessions/{session_id}/attendance/imports",
            files={"file": (filename, content, "application/octet-stream")},
            headers=bearer(staff),
        )
        assert refused.status_code == 422, (filename, refused.text)
        assert refused.json()["type"].endswith("/unreadable-sheet")
        assert refused.json()["detail_zh"].startswith("文件无法读取")


def test_minutes_given_during_the_session_are_at_most_those_attended_so_far() -> None:
    start = datetime(2026, 11, 20, 1, tzinfo=UTC)
    during = {
        "session_start": start,
        "session_end": start + timedelta(minutes=120),
        "planned_minutes": 90,
        "checked_in_at": None,
        "checked_out_at": None,
        "now": start + timedelta(minutes=40),
    }
    refused = rules.count(**during, minutes=90)  # type: ignore[arg-type]
    assert isinstance(refused, rules.Refusal)
    assert refused.reason == "the session has not ended: at most 40 minutes so far"
    assert refused.reason_zh == "本场次尚未结束，目前最多40分钟"
    counted = rules.count(**during, minutes=None)  # type: ignore[arg-type]
    assert isinstance(counted, rules.Counted) and counted.minutes == 40

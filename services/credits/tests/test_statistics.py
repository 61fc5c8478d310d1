"""Statistics and learning stars on PostgreSQL and SQLite, on a small data set whose every
figure is computed by hand below; the downloads are opened and read back."""

from __future__ import annotations

import asyncio
import csv
import importlib.util
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from fastapi import FastAPI
from openpyxl import load_workbook
from sqlalchemy import delete, func, text, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import col, select

from credits import SERVICE_ROOT
from credits.audit.models import AuditEntry
from credits.certification.models import Certification
from credits.config import Settings
from credits.conversion.models import Conversion
from credits.incentives.models import VolunteerService
from credits.ledger import settlement
from credits.ledger.models import CreditSource
from credits.main import create_app
from credits.records.models import Attendance
from credits.statistics import groups, stars
from credits.statistics.keeping import Fresh, KeptReports
from credits.statistics.models import KeptReport
from credits.statistics.period import CHINA
from credits.statistics.sheets import KEPT_ZH
from kernel.auditstore import digest
from kernel.db import make_engine, make_sessionmaker
from kernel.settings import normalise_database_url
from testkit.apps import running
from testkit.fixtures import BACKENDS, migrated_database
from testkit.http import bearer

from .conftest import (
    FAILING,
    GROUP_LOOKUPS,
    LEARNER_GROUPS,
    LEARNER_HOMES,
    REGISTRATIONS,
    UNREACHABLE,
    _seed,
    certified,
    install_test_neighbours,
)

# The figures below are of this data set alone: the module gets databases of its own, since
# tests elsewhere commit records (concurrency tests cannot roll back) that a district's or a
# town's report would count.


@pytest.fixture(scope="module", params=BACKENDS)
def credits_db(request: pytest.FixtureRequest) -> str:
    return migrated_database(
        request, backend=request.param, service="credits", service_root=SERVICE_ROOT, seed=_seed
    )


@pytest.fixture(scope="module")
async def credits_app(
    credits_db: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FastAPI]:
    settings = Settings(
        database_url=credits_db,
        data_dir=tmp_path_factory.mktemp("statistics-data"),
        log_level="WARNING",
        accrual_interval_seconds=0,
    )
    async with running(create_app(settings)) as app:
        yield app


@pytest.fixture(scope="module")
def issue_token(credits_app: FastAPI):  # type: ignore[no-untyped-def]
    return install_test_neighbours(credits_app)


TOWN = "/410711/410711100/"
POINT = "/410711/410711100/410711100201/"
OTHER_TOWN = "/410711/410711101/"
DISTRICT = "/410711/"
MARCH = datetime(2026, 3, 2, 1, tzinfo=UTC)
LAW_ZH = "法治教育"


@pytest.fixture
async def known(session_client, factory):  # type: ignore[no-untyped-def]
    """The data set.

    Activities: A1 law offline at the town, sessions on 2 and 9 March 2026; A2 digital skills
    online at the town's learning point; A3 law offline at the other town, one session on
    2 March; A4 law online at the district college; A5 law offline at the town (L6's).

    Records (offline: 6 minutes a hundredth, online: 9 minutes a hundredth):
      L1: A1 verified 120 min (20), A2 verified 54 min (6), A4 verified 45 min (5)
      L2: A1 QR check-in pending 90 min (15, check-ins count unverified);
          A1 staff entry pending 100 min (does not count: waits for a check)
      L3: A2 verified 27 min at 00:30 Beijing on 1 January 2026 (16:30 UTC the day before: in
          2026) (3); A2 verified 27 min at 00:30 Beijing on 1 January 2027 (not in 2026)
      L4: A3 verified 198 min (33)
      L5: A1 voided 300 min (does not count)
      L6: A5 3 x 600 min verified (300), then converts 200 (approved 1 June 2026)
    Check-ins: A1 first session L1 and L2, second session L1; A3's session nobody.
    Volunteer service at the town: V1 400 + 300 min in 2026 and 500 in December 2025,
    V2 120 min in 2026.
    Groups (accounts'): L1 elderly, L2 elderly and youth, L3 youth, L4 elderly, L5 disabled;
    L6 none.
    Homes (accounts'): L1 the town's learning point; L2, L4 and L5 the town; L3 and L6 the
    other town. So the town's participants (its residents who learned anywhere) are L1, L2 and
    L4, and its learners (who learned at its activities) L1, L2, L3 and L6.
    """
    client, db = session_client
    a1, a1_sessions = await factory.activity(unit="410711100", sessions=2, start=MARCH)
    a2, _ = await factory.activity(unit="410711100201", category="digital_skills", mode="online")
    a3, a3_sessions = await factory.activity(unit="410711101", sessions=1, start=MARCH)
    a4, _ = await factory.activity(unit="410711", mode="online")
    ln = [uuid.uuid4() for _ in range(6)]
    l1, l2, l3, l4, l5, l6 = ln
    for learner, in_groups, home in (
        (l1, ["elderly"], POINT),
        (l2, ["elderly", "youth"], TOWN),
        (l3, ["youth"], OTHER_TOWN),
        (l4, ["elderly"], TOWN),
        (l5, ["disabled"], TOWN),
        (l6, [], OTHER_TOWN),
    ):
        LEARNER_GROUPS[str(learner)] = in_groups
        LEARNER_HOMES[str(learner)] = home
    await factory.records(l1, a1, minutes=120, status="verified", host_path=TOWN)
    await factory.records(
        l1,
        a2,
        minutes=54,
        status="verified",
        mode="online",
        category="digital_skills",
        host_path=POINT,
        start=datetime(2026, 4, 1, 2, tzinfo=UTC),
    )
    await factory.records(
        l1,
        a4,
        minutes=45,
        status="verified",
        mode="online",
        host_path=DISTRICT,
        start=datetime(2026, 4, 2, 2, tzinfo=UTC),
    )
    await factory.records(l2, a1, minutes=90, source="check_in", host_path=TOWN)
    await factory.records(
        l2, a1, minutes=100, host_path=TOWN, start=datetime(2026, 3, 9, 1, tzinfo=UTC)
    )
    for start in (
        datetime(2025, 12, 31, 16, 30, tzinfo=UTC),
        datetime(2026, 12, 31, 16, 30, tzinfo=UTC),
    ):
        await factory.records(
            l3,
            a2,
            minutes=27,
            status="verified",
            mode="online",
            category="digital_skills",
            host_path=POINT,
            start=start,
        )
    await factory.records(l4, a3, minutes=198, status="verified", host_path=OTHER_TOWN)
    (voided,) = await factory.records(l5, a1, minutes=300, status="voided", host_path=TOWN)
    a5, _ = await factory.activity(unit="410711100")
    await factory.records(l6, a5, count=3, minutes=600, status="verified", host_path=TOWN)
    for session_id, learner in ((a1_sessions[0], l1), (a1_sessions[0], l2), (a1_sessions[1], l1)):
        db.add(Attendance(session_id=session_id, learner_id=learner, checked_in_at=MARCH))
    # L5 checked in, and the record was voided since (someone scanned for them): not attendance
    db.add(
        Attendance(session_id=a1_sessions[1], learner_id=l5, checked_in_at=MARCH, record_id=voided)
    )
    v1, v2 = uuid.uuid4(), uuid.uuid4()
    for n, (who, day, minutes) in enumerate(
        (
            (v1, date(2026, 5, 1), 400),
            (v1, date(2026, 6, 1), 300),
            (v1, date(2025, 12, 20), 500),
            (v2, date(2026, 5, 2), 120),
        )
    ):
        db.add(
            VolunteerService(
                learner_id=who,
                kind="lecture",
                unit="410711100",
                unit_path=TOWN,
                activity_id=a1,
                occasion=f"activity:{n}",
                served_on=day,
                minutes=minutes,
                recorded_by="test",
            )
        )
    await db.commit()
    await settlement.settle(db, ln, actor="test")
    await db.commit()
    resident = factory.issue_token("resident", subject=str(l6), unit="410711100")
    applied = await client.post(
        "/api/v1/conversions",
        json={"target": "ou_course_credit", "units": 1},
        headers=bearer(resident),
    )
    assert applied.status_code == 201, applied.text
    college = factory.issue_token("staff", role="college_staff", unit="410711")
    approved = await client.post(
        f"/api/v1/conversions/{applied.json()['id']}/decision",
        json={"decision": "approve", "reason": "ok"},
        headers=bearer(college) | {"Idempotency-Key": "stats-1"},
    )
    assert approved.status_code == 200, approved.text
    conversion = (
        await db.execute(select(Conversion).where(col(Conversion.learner_id) == l6))
    ).scalar_one()
    conversion.decided_at = datetime(2026, 6, 1, 2, tzinfo=UTC)
    await db.commit()
    REGISTRATIONS["410711100"] = {
        "registered": 30,
        "active": 29,
        "registered_in_period": 12,
        "by_group": {"elderly": 7, "youth": 4},
    }
    REGISTRATIONS["410711"] = {
        "registered": 80,
        "active": 78,
        "registered_in_period": 20,
        "by_group": {"elderly": 9},
    }
    return {"a1": a1, "a3": a3, "a1_sessions": a1_sessions, "learners": ln}


async def _report(client, token: str, unit: str, **params: str):  # type: ignore[no-untyped-def]
    return await client.get(
        f"/api/v1/statistics/{unit}",
        params={"from": "2026-01-01", "to": "2026-12-31", **params},
        headers=bearer(token),
    )


async def test_town_report_counts_what_was_learned_there(client, issue_token, known) -> None:
    staff = issue_token("staff", role="school_staff", unit="410711100")
    response = await _report(client, staff, "410711100")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["unit"] == {"key": "410711100", "name": "王村镇社区教育学校", "path": TOWN}
    # residents L1 (at the learning point), L2 and L4 (at the other town) learned; L5's
    # record was voided; L3 and L6 learned here but live in the other town
    assert report["participants"] == 3
    assert report["population"] == 400
    assert report["participation"] == {
        "numerator": 3,
        "denominator": 400,
        "rate": 0.0075,
        "denominator_source": report["population_source"],
    }
    # L1, L2, L3, L6 learned at the town or its learning point; L4 elsewhere, L5 voided
    assert report["learners"] == 4
    assert report["registrations"]["registered"] == 30
    assert report["real_name_registration"]["rate"] == pytest.approx(30 / 400)
    lines = {(h["category"], h["mode"]): h for h in report["hours_by_category_mode"]}
    assert set(lines) == {("law", "offline"), ("digital_skills", "online")}
    # 120 (L1) + 90 (L2's check-in) + 3 x 600 (L6)
    assert (lines["law", "offline"]["minutes"], lines["law", "offline"]["records"]) == (2010, 5)
    assert lines["law", "offline"]["learners"] == 3
    assert lines["law", "offline"]["hours"] == 33.5
    assert lines["law", "offline"]["category_name"] == LAW_ZH
    # 54 (L1) + 27 (L3, 1 January Beijing time)
    assert (
        lines["digital_skills", "online"]["minutes"],
        lines["digital_skills", "online"]["learners"],
    ) == (81, 2)
    assert report["total_minutes"] == 2091
    credits = report["credits"]
    assert credits["issued_for_hours_hundredths"] == 20 + 15 + 6 + 3 + 300
    assert credits["issued_hundredths"] == 344
    assert (credits["converted_hundredths"], credits["conversions"]) == (200, 1)
    assert credits["converted_net_hundredths"] == 200
    assert report["volunteers"] == [
        {
            "year": 2026,
            "volunteers": 2,
            "minutes": 820,
            "hours": 13.67,
            "target_minutes": 600,
            "volunteers_meeting_target": 1,
        }
    ]
    activities = report["activities"]
    assert (activities["activities"], activities["sessions"], activities["attendance"]) == (1, 2, 3)
    assert (activities["attendance_per_session"], activities["max_attendance"]) == (1.5, 2)
    assert [s["attendance"] for s in report["sessions"]] == [2, 1]


async def test_district_report_adds_every_town_and_the_college(client, issue_token, known) -> None:
    auditor = issue_token("staff", role="auditor", unit="410711")
    report = (await _report(client, auditor, "410711")).json()
    # every learner lives in the district and learned there, but L5 (voided)
    assert (report["participants"], report["learners"]) == (5, 5)
    assert report["participation"]["rate"] == pytest.approx(5 / 1000)
    lines = {(h["category"], h["mode"]): h["minutes"] for h in report["hours_by_category_mode"]}
    assert lines == {
        ("law", "offline"): 2208,
        ("law", "online"): 45,
        ("digital_skills", "online"): 81,
    }
    assert report["credits"]["issued_hundredths"] == 344 + 33 + 5
    activities = report["activities"]
    assert (activities["activities"], activities["sessions"], activities["attendance"]) == (2, 3, 3)
    assert activities["attendance_per_session"] == 1.0


async def test_period_days_are_beijing_days(client, issue_token, known) -> None:
    staff = issue_token("staff", role="district_admin", unit="410711")
    # 1 January 2027 Beijing time is 31 December 2026 UTC: in 2027's report, not 2026's
    report = (
        await client.get(
            "/api/v1/statistics/410711100201",
            params={"from": "2027-01-01", "to": "2027-01-01"},
            headers=bearer(staff),
        )
    ).json()
    # L3 learned at the learning point, and lives in the other town; L1 lives at the point
    # and learned nothing that day
    assert report["total_minutes"] == 27
    assert (report["learners"], report["participants"]) == (1, 0)
    assert report["population"] is None and report["participation"]["rate"] is None
    december = (
        await client.get(
            "/api/v1/statistics/410711100",
            params={"from": "2025-12-01", "to": "2026-12-31"},
            headers=bearer(staff),
        )
    ).json()
    assert [
        (v["year"], v["volunteers"], v["minutes"], v["volunteers_meeting_target"])
        for v in december["volunteers"]
    ] == [(2025, 1, 500, 0), (2026, 2, 820, 1)]


async def test_staff_see_only_their_unit_and_below(session_client, issue_token, known) -> None:
    client, db = session_client
    point = issue_token("staff", role="learning_point_staff", unit="410711100201")
    other = await _report(client, point, "410711100")
    assert other.status_code == 403
    assert other.headers["content-type"].startswith("application/problem+json")
    assert other.json()["type"].endswith("/statistics-not-visible") and other.json()["detail_zh"]
    assert (await _report(client, point, "410711100201")).status_code == 200
    resident = issue_token("resident", unit="410711100")
    assert (await _report(client, resident, "410711100")).status_code == 403
    stars = await client.get("/api/v1/statistics/410711100/learning-stars", headers=bearer(point))
    assert stars.status_code == 403
    unknown = await _report(client, issue_token("staff", role="auditor"), "999999")
    assert unknown.status_code == 404 and unknown.json()["type"].endswith("/unit-not-found")
    # the refusals are in the trail beside the answered report, each with its reason
    trail = (
        await db.execute(
            select(
                AuditEntry.action,
                AuditEntry.target_id,
                AuditEntry.actor_kind,
                AuditEntry.actor_unit,
                AuditEntry.outcome,
                AuditEntry.reason,
            )
            .where(col(AuditEntry.action).startswith("statistics."))
            .order_by(col(AuditEntry.seq))
        )
    ).all()
    assert [row[:5] for row in trail] == [
        ("statistics.report", "410711100", "staff", "410711100201", "refused"),
        ("statistics.report", "410711100201", "staff", "410711100201", "ok"),
        ("statistics.report", "410711100", "resident", "410711100", "refused"),
        ("statistics.learning_stars", "410711100", "staff", "410711100201", "refused"),
        ("statistics.report", "999999", "staff", "410711", "not_found"),
    ]
    assert "not yours to see" in trail[0][5] and "No unit" in trail[4][5]


async def test_a_backwards_period_is_refused(client, issue_token, known) -> None:
    admin = issue_token("staff", role="district_admin")
    response = await client.get(
        "/api/v1/statistics/410711",
        params={"from": "2026-02-01", "to": "2026-01-01"},
        headers=bearer(admin),
    )
    assert response.status_code == 422 and response.json()["type"].endswith("/invalid-period")


async def test_the_report_downloads_as_a_workbook_and_as_csv(client, issue_token, known) -> None:
    staff = issue_token("staff", role="school_staff", unit="410711100")
    xlsx = await _report(client, staff, "410711100", format="xlsx")
    assert xlsx.status_code == 200
    assert "filename*=UTF-8''%E7%BB%9F%E8%AE%A1_410711100" in xlsx.headers["content-disposition"]
    book = load_workbook(io.BytesIO(xlsx.content), read_only=True)
    assert book.sheetnames == ["汇总", "学时", "按人群学时", "人群", "志愿服务", "场次考勤"]
    summary = {row[0]: row[1] for row in book["汇总"].iter_rows(min_row=2, values_only=True)}
    assert summary["参与人数"] == 3 and summary["参与率(%)"] == 0.75
    assert summary["学习人数"] == 4
    assert summary["实名注册率(%)"] == 7.5 and summary["发放学分"] == 3.44
    assert summary["转换学分"] == 2 and summary["场均签到人次"] == 1.5
    hours = list(book["学时"].iter_rows(values_only=True))
    assert hours[0] == ("类别代码", "类别", "方式", "学时(小时)", "分钟数", "记录数", "学习者人数")
    assert {(r[0], r[2], r[4]) for r in hours[1:]} == {
        ("law", "线下", 2010),
        ("digital_skills", "线上", 81),
    }
    registered = list(book["人群"].iter_rows(min_row=2, values_only=True))
    assert registered == [("elderly", "老年人", 7), ("youth", "青少年", 4)]
    by_group = list(book["按人群学时"].iter_rows(values_only=True))
    assert by_group[0] == ("人群", "人群名称", "学习者数", "学时", "记录数")
    assert by_group[1:3] == [("elderly", "老年人", 2, 4.4, 3), ("youth", "青少年", 2, 1.95, 2)]
    assert by_group[3] == ("disabled", "残疾人", 0, 0, 0) and len(by_group) == 9
    volunteers = list(book["志愿服务"].iter_rows(values_only=True))
    assert volunteers[1] == (2026, 2, 13.67, 10, 1)
    sessions = list(book["场次考勤"].iter_rows(min_row=2, values_only=True))
    assert [(r[3], r[5]) for r in sessions] == [
        (datetime(2026, 3, 2, 9), 2),
        (datetime(2026, 3, 9, 9), 1),
    ]
    for sheet, header in (
        ("summary", "指标"),
        ("hours", "类别代码"),
        ("hours_by_group", "人群"),
        ("sessions", "场次编号"),
    ):
        response = await _report(client, staff, "410711100", format="csv", sheet=sheet)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert response.content.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert rows[0][0] == header
    summary_csv = await _report(client, staff, "410711100", format="csv")
    rows = {r[0]: r[1] for r in csv.reader(io.StringIO(summary_csv.content.decode("utf-8-sig")))}
    assert rows["参与人数"] == "3" and rows["学习人数"] == "4" and rows["举办场次数"] == "2"
    assert "暂缺" not in rows
    group_csv = await _report(client, staff, "410711100", format="csv", sheet="hours_by_group")
    lines = list(csv.reader(io.StringIO(group_csv.content.decode("utf-8-sig"))))
    assert lines[1:3] == [
        ["elderly", "老年人", "2", "4.4", "3"],
        ["youth", "青少年", "2", "1.95", "2"],
    ]


# --- hours by learner group -----------------------------------------------------------------


def _by_group(report: dict) -> dict[str, tuple[int, int, int]]:  # type: ignore[type-arg]
    return {
        g["group"]: (g["learners"], g["minutes"], g["records"]) for g in report["hours_by_group"]
    }


async def test_hours_by_group_sum_the_learners_of_each_group(client, issue_token, known) -> None:
    staff = issue_token("staff", role="school_staff", unit="410711100")
    GROUP_LOOKUPS.clear()
    town = (await _report(client, staff, "410711100")).json()
    assert GROUP_LOOKUPS == [4]  # the four learners, in one lookup
    # at the town in 2026: L1 120 + 54 (2 records), L2 90 (its staff entry waits), L3 27, L6 1800
    assert _by_group(town) == {
        "elderly": (2, 264, 3),  # L1, L2
        "youth": (2, 117, 2),  # L2, L3
        "disabled": (0, 0, 0),  # L5's record was voided
        "unemployed": (0, 0, 0), "migrant_workers": (0, 0, 0), "rural_residents": (0, 0, 0),
        "veterans": (0, 0, 0), "left_behind": (0, 0, 0),
    }  # fmt: skip
    elderly = town["hours_by_group"][0]
    assert (elderly["group_name"], elderly["hours"]) == ("老年人", 4.4)
    assert town["missing"] == []
    auditor = issue_token("staff", role="auditor", unit="410711")
    district = _by_group((await _report(client, auditor, "410711")).json())
    # L1 adds 45 min online at the college; L4 (elderly) 198 min at the other town
    assert district["elderly"] == (3, 120 + 54 + 45 + 90 + 198, 5)
    assert district["youth"] == (2, 117, 2)
    # nobody learned in 2025: a lookup of nobody (for the residents), every group nought
    GROUP_LOOKUPS.clear()
    empty = await client.get(
        "/api/v1/statistics/410711100",
        params={"from": "2025-01-01", "to": "2025-06-30"},
        headers=bearer(staff),
    )
    assert GROUP_LOOKUPS == [0] and empty.json()["participants"] == 0
    assert set(_by_group(empty.json()).values()) == {(0, 0, 0)}


async def test_many_participants_are_looked_up_in_chunks(
    client, issue_token, known, monkeypatch
) -> None:
    monkeypatch.setattr(groups, "LOOKUP_CHUNK", 3)
    auditor = issue_token("staff", role="auditor", unit="410711")
    GROUP_LOOKUPS.clear()
    report = (await _report(client, auditor, "410711")).json()
    assert GROUP_LOOKUPS == [3, 2]  # five learners
    district = _by_group(report)
    assert district["elderly"] == (3, 507, 5) and district["youth"] == (2, 117, 2)
    # the residents listed add up over the chunks; one is unlisted only if no chunk listed it
    assert (report["participants"], report["learners"]) == (5, 5)
    GROUP_LOOKUPS.clear()
    town = (await _report(client, issue_token("staff", role="auditor"), "410711100")).json()
    assert GROUP_LOOKUPS == [3, 1] and (town["participants"], town["learners"]) == (3, 4)


async def test_without_accounts_the_report_says_participants_and_hours_by_group_are_missing(
    client, issue_token, known, credits_app
) -> None:
    staff = issue_token("staff", role="school_staff", unit="410711100")
    UNREACHABLE.add("/api/v1/learner-groups/lookup")
    try:
        response = await _report(client, staff, "410711100")
        xlsx = await _report(client, staff, "410711100", format="xlsx")
        group_csv = await _report(client, staff, "410711100", format="csv", sheet="hours_by_group")
    finally:
        UNREACHABLE.discard("/api/v1/learner-groups/lookup")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["hours_by_group"] is None
    assert report["participants"] is None and report["participation"]["rate"] is None
    assert [m["figure"] for m in report["missing"]] == ["participants", "hours_by_group"]
    assert all(m["reason"] and m["reason_zh"] for m in report["missing"])
    # the rest of the report is whole
    assert report["learners"] == 4 and report["total_minutes"] == 2091
    book = load_workbook(io.BytesIO(xlsx.content), read_only=True)
    rows = list(book["按人群学时"].iter_rows(min_row=2, values_only=True))
    assert len(rows) == 1 and rows[0][0] == "暂缺" and "人群" in rows[0][1]
    summary_rows = list(book["汇总"].iter_rows(min_row=2, values_only=True))
    assert [r[1] for r in summary_rows if r[0] == "暂缺"] == ["参与人数、参与率", "按人群学时"]
    assert [r[1] for r in summary_rows if r[0] == "参与人数"] == [None]
    lines = list(csv.reader(io.StringIO(group_csv.content.decode("utf-8-sig"))))
    assert lines[1][0] == "暂缺"
    # so is a credits service without the service call key (accounts would refuse it), and
    # one whose key accounts does not share (the stand-in checks the signature)
    for key in (None, bytes(32)):
        kept, credits_app.state.service_key = credits_app.state.service_key, key
        try:
            keyless = (await _report(client, staff, "410711100")).json()
        finally:
            credits_app.state.service_key = kept
        assert keyless["hours_by_group"] is None and keyless["participants"] is None, key
        assert [m["figure"] for m in keyless["missing"]] == ["participants", "hours_by_group"]
    # an error status from the lookup is the same: null and said
    for status in (500, 403):
        FAILING["/api/v1/learner-groups/lookup"] = status
        try:
            failed = (await _report(client, staff, "410711100")).json()
        finally:
            FAILING.clear()
        assert failed["hours_by_group"] is None and failed["participants"] is None
        assert [m["figure"] for m in failed["missing"]] == ["participants", "hours_by_group"]
    # the unit itself (whether the caller may see it) cannot be read: no report at all
    UNREACHABLE.add("/api/v1/units/410711100")
    try:
        down = await _report(client, staff, "410711100")
    finally:
        UNREACHABLE.discard("/api/v1/units/410711100")
    assert down.status_code == 503
    assert down.headers["content-type"].startswith("application/problem+json")
    assert down.json()["detail_zh"]


# --- learning stars ---------------------------------------------------------------------------


@pytest.fixture
async def star_data(session_client, factory):  # type: ignore[no-untyped-def]
    """At the town: S1 1800 min (300), S2 2400 (400), S3 1800 (300, tied with S1), S4 1200
    (under the 30 hours). S5: 1800 min at the other town and 600 at the town (both law, one
    year: 400): the other town's candidate, where most of their time was. All in 2026."""
    _, db = session_client
    town, _ = await factory.activity(unit="410711100")
    other, _ = await factory.activity(unit="410711101")
    s = [uuid.uuid4() for _ in range(5)]
    for learner, count in zip(s[:4], (3, 4, 3, 2), strict=True):
        await factory.records(
            learner, town, count=count, minutes=600, status="verified", host_path=TOWN
        )
    await factory.records(
        s[4], other, count=3, minutes=600, status="verified", host_path=OTHER_TOWN
    )
    await factory.records(
        s[4],
        town,
        minutes=600,
        status="verified",
        host_path=TOWN,
        start=datetime(2026, 5, 1, 1, tzinfo=UTC),
    )
    await settlement.settle(db, s, actor="test")
    await db.commit()
    return s


async def test_stars_rank_by_credits_then_hours_and_ties_share_a_place(
    session_client, star_data
) -> None:
    _, db = session_client
    s1, s2, s3, _s4, s5 = star_data
    shipped = stars.load_rule()
    one = stars.StarRule("t1", shipped.min_minutes, 1, 2, {})
    top = await stars.candidates(db, unit_path=DISTRICT, year=2026, rule=one)
    assert [(c.town, c.rank, c.learner_id, c.credits_hundredths, c.minutes) for c in top] == [
        ("410711100", 1, s2, 400, 2400),
        ("410711101", 1, s5, 400, 2400),
    ]
    two = stars.StarRule("t2", shipped.min_minutes, 2, 2, {})
    town = await stars.candidates(db, unit_path=TOWN, year=2026, rule=two)
    assert [(c.rank, c.learner_id) for c in town] == [(1, s2), *sorted([(2, s1), (2, s3)])]
    assert await stars.candidates(db, unit_path=TOWN, year=2025, rule=two) == []


async def test_stars_come_with_the_rule_and_download(client, issue_token, star_data) -> None:
    s1, s2, s3, s4, s5 = star_data
    staff = issue_token("staff", role="college_staff", unit="410711")
    response = await client.get(
        "/api/v1/statistics/410711/learning-stars", params={"year": 2026}, headers=bearer(staff)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (
        body["rule_version"] == "muye-learning-star-2026.1" and body["rule"]["top_per_town"] == 10
    )
    listed = [(c["town"], c["town_name"], c["rank"], c["learner_id"]) for c in body["candidates"]]
    assert listed[0] == ("410711100", "王村镇社区教育学校", 1, str(s2))
    assert str(s4) not in {c["learner_id"] for c in body["candidates"]}
    assert listed[-1] == ("410711101", "牧野镇社区教育学校", 1, str(s5))
    assert len(listed) == 4
    xlsx = await client.get(
        "/api/v1/statistics/410711/learning-stars",
        params={"year": 2026, "format": "xlsx"},
        headers=bearer(staff),
    )
    rows = list(load_workbook(io.BytesIO(xlsx.content)).active.iter_rows(values_only=True))
    assert rows[0] == (
        "镇/街道代码",
        "镇/街道",
        "名次",
        "学习者编号",
        "年度学分",
        "年度学时(小时)",
        "规则版本",
        "数据截至(北京时间)",
        "数据说明",
    )
    # a quick ranking is not kept: the download was ranked when it was asked for
    read_at = rows[1][7]
    assert _at(body["as_of"]).astimezone(CHINA).replace(tzinfo=None, microsecond=0) <= read_at
    assert read_at <= datetime.now(CHINA).replace(tzinfo=None)
    assert rows[1][:7] + rows[1][8:] == (
        "410711100",
        "王村镇社区教育学校",
        1,
        str(s2),
        4,
        40,
        "muye-learning-star-2026.1",
        "实时统计",
    )
    csv_rows = list(
        csv.reader(
            io.StringIO(
                (
                    await client.get(
                        "/api/v1/statistics/410711/learning-stars",
                        params={"year": 2026, "format": "csv"},
                        headers=bearer(staff),
                    )
                ).content.decode("utf-8-sig")
            )
        )
    )
    assert csv_rows[0][1] == "镇/街道" and len(csv_rows) == 5
    point = issue_token("staff", role="learning_point_staff", unit="410711100201")
    refused = await client.get("/api/v1/statistics/410711/learning-stars", headers=bearer(point))
    assert refused.status_code == 403


async def test_completion_awards_count_for_the_host_unit(
    session_client, factory, issue_token
) -> None:
    """Four weekly sessions attended in full: 4 x 120 min (80) and the 0.5-credit award (50)."""
    client, db = session_client
    learner = uuid.uuid4()
    course, sessions = await factory.activity(unit="410711100201", sessions=4, start=MARCH)
    await factory.records(
        learner,
        course,
        count=4,
        minutes=120,
        status="verified",
        host_path=POINT,
        sessions=sessions,
        every=timedelta(days=7),
    )
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    staff = issue_token("staff", role="learning_point_staff", unit="410711100201")
    credits = (await _report(client, staff, "410711100201")).json()["credits"]
    assert credits["issued_for_hours_hundredths"] == 80
    assert credits["issued_for_completion_hundredths"] == 50
    assert credits["issued_hundredths"] == 130
    elsewhere = issue_token("staff", role="school_staff", unit="410711101")
    other = (await _report(client, elsewhere, "410711101")).json()["credits"]
    assert other["issued_hundredths"] == 0


def _unit_path_migration() -> ModuleType:
    """The migration that gave provenance lines their unit, loaded from its file."""
    path = SERVICE_ROOT / "alembic" / "versions" / "2026_11_25_credit_source_unit_path.py"
    spec = importlib.util.spec_from_file_location("credit_source_unit_path", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_each_provenance_line_names_its_unit_and_the_migration_fills_old_lines(
    session_client, factory, issue_token
) -> None:
    """Hours and completion lines count under the host unit (reversals too), a certification's
    under the learner's; lines written before the column are filled the same way."""
    client, db = session_client
    learner = uuid.uuid4()
    course, sessions = await factory.activity(unit="410711100201", sessions=4, start=MARCH)
    records = await factory.records(
        learner,
        course,
        count=4,
        minutes=120,
        status="verified",
        host_path=POINT,
        sessions=sessions,
        every=timedelta(days=7),
    )
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    await db.execute(
        text("UPDATE learning_record SET status = 'voided' WHERE id = :id"), {"id": records[0]}
    )
    await settlement.settle(db, [learner], actor="test")  # the hours and the award go back
    await db.commit()
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    cid = await certified(client, issue_token, resident)
    home = (
        await db.execute(
            select(Certification.learner_unit_path).where(col(Certification.id) == uuid.UUID(cid))
        )
    ).scalar_one()

    def lines_of() -> Any:
        return (
            select(CreditSource.id, CreditSource.key, CreditSource.amount_hundredths)
            .add_columns(CreditSource.unit_path)
            .where(col(CreditSource.learner_id) == learner)
            .order_by(col(CreditSource.id))
        )

    written = (await db.execute(lines_of())).all()
    kinds = {(key.split(":")[0], amount > 0, unit) for _, key, amount, unit in written}
    assert kinds == {
        ("hours", True, POINT),
        ("hours", False, POINT),  # the voided record's hours taken back
        ("completion", True, POINT),
        ("completion", False, POINT),  # three of four sessions left: no award
        ("certification", True, home),
    }
    # as the lines were before the column: the migration's statements fill them again
    migration, dialect = _unit_path_migration(), db.get_bind().dialect.name
    for statement in migration.LIFT_GUARD[dialect]:
        await db.execute(text(statement))
    await db.execute(text("UPDATE credit_source SET unit_path = NULL"))
    for statement in (*migration.BACKFILL[dialect], *migration.RESTORE_GUARD[dialect]):
        await db.execute(text(statement))
    assert (await db.execute(lines_of())).all() == written
    with pytest.raises(DBAPIError, match="append only"):  # the guard is back
        await db.execute(text("UPDATE credit_source SET unit_path = NULL"))
    await db.rollback()


# --- kept reports -----------------------------------------------------------------------------


@pytest.fixture
def keep_every_report(credits_app: FastAPI):  # type: ignore[no-untyped-def]
    """Keep every report, however quickly it was read (the district's take seconds at full
    size; these small ones take milliseconds)."""
    before = credits_app.state.kept_reports
    credits_app.state.kept_reports = KeptReports(keep_after=0, keep_for=600)
    yield credits_app.state.kept_reports
    credits_app.state.kept_reports = before


def _at(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


def _iso(moment: str) -> str:
    return _at(moment).isoformat()


def _figures(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in ("kept", "registrations")}


async def test_a_reading_kept_in_an_earlier_shape_is_not_given(
    session_client, issue_token, known, keep_every_report
) -> None:
    """Kept figures are of the shape they were read in: a reading kept before ``participants``
    became residents (and ``learners`` was added) is never given as today's report."""
    client, db = session_client
    db.add(
        KeptReport(
            kind="report",
            unit_path=TOWN,
            period="2026-01-01..2026-12-31",
            as_of=datetime.now(UTC),
            seconds=9.0,
            figures={"participants": 4},
        )
    )
    await db.commit()
    staff = issue_token("staff", role="school_staff", unit="410711100")
    response = await _report(client, staff, "410711100")
    assert response.status_code == 200, response.text
    assert (response.json()["kept"], response.json()["participants"]) == (False, 3)


async def test_a_kept_report_is_given_again_until_it_is_old_or_fresh_is_asked(
    session_client, issue_token, known, factory, keep_every_report
) -> None:
    _, db = session_client
    client = session_client[0]
    staff = issue_token("staff", role="school_staff", unit="410711100")
    first = (await _report(client, staff, "410711100")).json()
    assert (first["kept"], first["learners"], first["total_minutes"]) == (False, 4, 2091)
    assert abs(datetime.now(UTC) - datetime.fromisoformat(first["as_of"])) < timedelta(minutes=1)
    # a new learner at the town after the first reading
    newcomer = uuid.uuid4()
    LEARNER_GROUPS[str(newcomer)] = ["youth"]
    await factory.records(newcomer, known["a1"], minutes=60, status="verified", host_path=TOWN)
    await db.commit()
    # the registrations are asked of accounts every time, kept figures or not
    REGISTRATIONS["410711100"] = dict(REGISTRATIONS["410711100"], registered=31)
    again = (await _report(client, staff, "410711100")).json()
    assert again["kept"] is True
    assert _figures(again) | {"real_name_registration": None} == _figures(first) | {
        "real_name_registration": None
    }
    assert again["learners"] == 4  # the newcomer is not in what was kept
    assert again["registrations"]["registered"] == 31
    assert again["real_name_registration"]["rate"] == pytest.approx(31 / 400)
    # the workbook says which it is and when it was read
    book = load_workbook(
        io.BytesIO((await _report(client, staff, "410711100", format="xlsx")).content),
        read_only=True,
    )
    summary = {r[0]: (r[1], r[2]) for r in book["汇总"].iter_rows(min_row=2, values_only=True)}
    read_at, said = summary["数据截至(北京时间)"]
    assert read_at == datetime.fromisoformat(first["as_of"]).astimezone(CHINA).replace(
        tzinfo=None, microsecond=read_at.microsecond
    )
    assert "保存" in said
    # fresh: read now, and what it read is kept in turn
    fresh = (await _report(client, staff, "410711100", fresh="true")).json()
    assert (fresh["kept"], fresh["learners"], fresh["total_minutes"]) == (False, 5, 2151)
    assert _at(fresh["as_of"]) > _at(first["as_of"])
    after = (await _report(client, staff, "410711100")).json()
    assert (after["kept"], after["as_of"], after["learners"]) == (True, fresh["as_of"], 5)
    # another period, another unit: other reports
    half = (await _report(client, staff, "410711100", to="2026-06-30")).json()
    point = (await _report(client, staff, "410711100201")).json()
    assert half["kept"] is False and point["kept"] is False
    # kept figures as old as the keeping time are read again
    await db.execute(update(KeptReport).values(as_of=datetime.now(UTC) - timedelta(seconds=600)))
    await db.commit()
    old = (await _report(client, staff, "410711100")).json()
    assert (old["kept"], old["learners"]) == (False, 5)
    assert _at(old["as_of"]) > _at(after["as_of"])
    # the audit trail says what each answer was: kept figures and their time, or a reading
    entries = (
        (
            await db.execute(
                select(AuditEntry.after_digest)
                .where(col(AuditEntry.action) == "statistics.report")
                .order_by(col(AuditEntry.seq))
            )
        )
        .scalars()
        .all()
    )
    period = {"from": "2026-01-01", "to": "2026-12-31", "format": "json"}
    assert entries[-1] == digest(period | {"as_of": _iso(old["as_of"]), "kept": False})
    assert digest(period | {"as_of": _iso(fresh["as_of"]), "kept": True}) in entries


async def test_a_report_lacking_a_figure_is_not_kept(
    session_client, issue_token, known, keep_every_report
) -> None:
    client, db = session_client
    staff = issue_token("staff", role="school_staff", unit="410711100")
    UNREACHABLE.add("/api/v1/learner-groups/lookup")
    try:
        lacking = (await _report(client, staff, "410711100")).json()
    finally:
        UNREACHABLE.discard("/api/v1/learner-groups/lookup")
    assert lacking["hours_by_group"] is None and lacking["kept"] is False
    whole = (await _report(client, staff, "410711100")).json()
    assert whole["kept"] is False and whole["hours_by_group"] is not None
    assert whole["missing"] == []
    assert (await _report(client, staff, "410711100")).json()["kept"] is True


async def test_a_quick_report_is_not_kept(session_client, issue_token, known) -> None:
    client, db = session_client
    staff = issue_token("staff", role="school_staff", unit="410711100")
    answers = [(await _report(client, staff, "410711100")).json() for _ in range(2)]
    assert [a["kept"] for a in answers] == [False, False]
    assert _at(answers[1]["as_of"]) > _at(answers[0]["as_of"])
    assert (await db.execute(select(func.count()).select_from(KeptReport))).scalar_one() == 0


async def test_kept_learning_stars(client, issue_token, star_data, keep_every_report) -> None:
    staff = issue_token("staff", role="school_staff", unit="410711100")

    async def ask(**params: str) -> dict[str, Any]:
        response = await client.get(
            "/api/v1/statistics/410711100/learning-stars",
            params={"year": "2026", **params},
            headers=bearer(staff),
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    first, again, fresh = await ask(), await ask(), await ask(fresh="true")
    assert first["candidates"] and again["candidates"] == first["candidates"]
    assert (first["kept"], again["kept"], fresh["kept"]) == (False, True, False)
    assert again["as_of"] == first["as_of"]
    assert _at(fresh["as_of"]) > _at(first["as_of"])
    assert fresh["candidates"] == first["candidates"]
    # the download of a kept ranking says so on every row, with the time it was read
    sheet = await client.get(
        "/api/v1/statistics/410711100/learning-stars",
        params={"year": "2026", "format": "csv"},
        headers=bearer(staff),
    )
    rows = list(csv.reader(io.StringIO(sheet.content.decode("utf-8-sig"))))
    assert rows[0][-2:] == ["数据截至(北京时间)", "数据说明"]
    assert len(rows) == len(fresh["candidates"]) + 1
    read_at = _at(fresh["as_of"]).astimezone(CHINA).replace(tzinfo=None, microsecond=0)
    assert {(r[-2], r[-1]) for r in rows[1:]} == {(str(read_at), KEPT_ZH)}


async def test_two_processes_asking_at_once_read_once_on_postgresql(credits_db: str) -> None:
    # two KeptReports (two credits processes: no asyncio lock in common), two sessions; on
    # PostgreSQL the database's advisory lock makes the second wait and find the first's
    # reading. SQLite is one file behind one process: the asyncio lock is all there is.
    if not credits_db.startswith("postgresql"):
        pytest.skip("an advisory lock across processes is PostgreSQL's")
    engine = make_engine(normalise_database_url(credits_db))
    sessions = make_sessionmaker(engine)
    reads: list[int] = []

    async def compute() -> Fresh:
        reads.append(1)
        await asyncio.sleep(0.2)
        return Fresh({"reading": len(reads)}, keepable=True)

    async def ask(keeping: KeptReports, period: str) -> Any:
        async with sessions() as session:
            return await keeping.read(session, "report", "/two/", period, compute)

    one = KeptReports(keep_after=0, keep_for=600)
    other = KeptReports(keep_after=0, keep_for=600)
    try:
        first, second = await asyncio.gather(ask(one, "2026"), ask(other, "2026"))
        assert reads == [1]
        assert sorted((first.kept, second.kept)) == [False, True]
        assert first.figures == second.figures == {"reading": 1}
        # other reports are read each, in whichever process is asked
        await asyncio.gather(ask(one, "2025"), ask(other, "2024"))
        assert len(reads) == 3
    finally:
        async with sessions() as session:
            await session.execute(delete(KeptReport).where(col(KeptReport.unit_path) == "/two/"))
            await session.commit()
        await engine.dispose()


async def test_the_same_report_asked_at_once_is_read_once(credits_db: str) -> None:
    # two requests, two sessions of their own: the second finds the first's reading committed
    engine = make_engine(normalise_database_url(credits_db))
    sessions = make_sessionmaker(engine)
    reads: list[int] = []

    async def compute() -> Fresh:
        reads.append(1)
        await asyncio.sleep(0.05)
        return Fresh({"reading": len(reads)}, keepable=True)

    keeping = KeptReports(keep_after=0, keep_for=600)

    async def ask(period: str, keeping: KeptReports = keeping) -> Any:
        async with sessions() as session:
            return await keeping.read(session, "report", "/test/", period, compute)

    try:
        one, two = await asyncio.gather(ask("2026"), ask("2026"))
        assert reads == [1]
        # which of the two reads depends on which the event loop lets in first
        assert sorted((one.kept, two.kept)) == [False, True]
        assert one.figures == two.figures == {"reading": 1}
        assert one.as_of == two.as_of
        # a keeping time of 0 keeps nothing: every request reads
        never = KeptReports(keep_after=0, keep_for=0)
        answers = [await ask("2027", never) for _ in range(2)]
        assert [a.figures["reading"] for a in answers] == [2, 3]
        assert not any(a.kept for a in answers)
    finally:
        async with sessions() as session:
            await session.execute(delete(KeptReport).where(col(KeptReport.unit_path) == "/test/"))
            await session.commit()
        await engine.dispose()


async def test_a_period_beyond_any_calendar_is_refused_not_a_500(client, issue_token) -> None:
    admin = issue_token("staff", role="district_admin")
    for first, last in (("0001-01-01", "2026-01-01"), ("2026-01-01", "9999-12-31")):
        response = await client.get(
            "/api/v1/statistics/410711", params={"from": first, "to": last}, headers=bearer(admin)
        )
        assert response.status_code == 422, (first, last, response.text)
        assert response.json()["type"].endswith("/invalid-period")
        assert response.json()["detail_zh"]


async def test_a_towns_stars_are_the_districts_stars_of_that_town(session_client, factory) -> None:
    """A learner is the candidate of the town where most of their year's minutes were, and
    counts all of them, whichever unit is asked: X has 1800 min at the town and 2400 at the
    other town (the other town's); Y has 1500 at the town and 300 at the college (the town's,
    1800 in all)."""
    _, db = session_client
    town, _ = await factory.activity(unit="410711100")
    other, _ = await factory.activity(unit="410711101")
    college, _ = await factory.activity(unit="410711")
    x, y = uuid.uuid4(), uuid.uuid4()
    await factory.records(x, town, count=3, minutes=600, status="verified", host_path=TOWN)
    await factory.records(x, other, count=4, minutes=600, status="verified", host_path=OTHER_TOWN)
    await factory.records(y, town, count=3, minutes=500, status="verified", host_path=TOWN)
    await factory.records(
        y, college, minutes=300, status="verified", host_path=DISTRICT, mode="online"
    )
    await settlement.settle(db, [x, y], actor="test")
    await db.commit()
    rule = stars.load_rule()

    def listed(found: list[Any]) -> set[tuple[str, uuid.UUID, int]]:
        return {(c.town, c.learner_id, c.minutes) for c in found}

    district = listed(await stars.candidates(db, unit_path=DISTRICT, year=2026, rule=rule))
    assert district == {("410711101", x, 4200), ("410711100", y, 1800)}
    assert listed(await stars.candidates(db, unit_path=TOWN, year=2026, rule=rule)) == {
        ("410711100", y, 1800)
    }
    assert listed(await stars.candidates(db, unit_path=OTHER_TOWN, year=2026, rule=rule)) == {
        ("410711101", x, 4200)
    }

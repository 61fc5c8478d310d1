"""Odd input to learning accounts, the residents' import, staff and the network: each is a
problem (or a refused row) a person can act on, never a 500, and one bad row never costs the
good ones. On PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import SERVICE_ROOT
from accounts.config import Settings
from accounts.learners.models import LearningAccount
from accounts.learners.router import MAX_SHEET_BYTES
from accounts.main import create_app
from accounts.network.service import load_network, muye_network
from accounts.staff.service import ensure_staff
from kernel.clock import aware_utc
from kernel.pagination import encode_cursor
from kernel.sheets import BEIJING
from testkit.apps import running
from testkit.fixtures import BACKENDS, migrated_database
from testkit.people import id_number

from .conftest import bearer, sign_in
from .test_import import HEADER, _count, _csv, _upload
from .test_learners import CONSENT, MUYE_TOWN, WANGCUN, new_account, village


def _row(residence: str, **fields: str) -> list[str]:
    values = {
        "姓名": "张桂兰",
        "身份证号": id_number(),
        "手机号": "",
        "村(社区)编码": residence,
        "人群类别": "",
        "同意版本": "2026-01",
        "同意时间": "2026-10-01",
        "同意方式": "纸质",
    }
    values.update(fields)
    return [values[h] for h in HEADER]


async def test_overlong_consent_version_or_guardian_is_a_refused_row(
    session_client, staff_factory
) -> None:
    """The columns hold 20 and 60 characters: PostgreSQL refused the whole insert (a 500 that
    lost the good rows too)."""
    client, session = session_client
    token = await staff_factory("school_staff", WANGCUN)
    residence = await village(client, WANGCUN)
    before = await _count(session)
    rows = [
        _row(residence),
        _row(residence, 同意版本="v" * 21),
    ]
    header_and_guardian = [*HEADER, "监护人", "监护人同意时间"]
    content = _csv(rows).decode("utf-8-sig").splitlines()
    content[0] = ",".join(header_and_guardian)
    content[1] += ",,"
    content[2] += ",,"
    content.append(",".join([*_row(residence), "监" * 61, "2026-10-01"]))
    report = await _upload(
        client, token, "居民.csv", "\n".join(content).encode("utf-8-sig"), dry_run=False
    )
    assert (report["created"], report["rejected"]) == (1, 2), report
    assert {(p["row"], p["field"]) for p in report["problems"]} == {
        (3, "consent"),
        (4, "guardian"),
    }
    assert all(p["reason_zh"] for p in report["problems"])
    assert await _count(session) == before + 1


async def test_a_control_character_in_a_name_is_refused(session_client, staff_factory) -> None:
    """PostgreSQL text cannot hold NUL: a name with one was a 500 (for a sheet, the whole
    import's), its row's values in the log line."""
    client, session = session_client
    token = await staff_factory("school_staff", WANGCUN)
    residence = await village(client, WANGCUN)
    opened = await client.post(
        "/api/v1/learning-accounts",
        json=new_account(residence, name="王\x00秀英"),
        headers=bearer(token),
    )
    assert opened.status_code == 422, opened.text
    assert opened.json()["errors"][0]["location"] == ["body", "name"]
    before = await _count(session)
    rows = [
        _row(residence),
        _row(residence, 姓名="张\x00三"),
        _row(residence, 姓名="李\u200b四\x07"),
    ]
    report = await _upload(client, token, "居民.csv", _csv(rows), dry_run=False)
    assert (report["created"], report["rejected"]) == (1, 2), report
    assert {(p["row"], p["field"]) for p in report["problems"]} == {(3, "name"), (4, "name")}
    assert await _count(session) == before + 1


async def test_a_control_character_in_a_staff_name_is_refused(
    session_client, staff_factory
) -> None:
    client, _ = session_client
    college = await staff_factory("college_staff", "410711")
    created = await client.post(
        "/api/v1/staff",
        json={
            "username": "nul.name",
            "display_name": "李\x00老师",
            "password": "a-long-password",
            "role": "school_staff",
            "unit": WANGCUN,
        },
        headers=bearer(college),
    )
    assert created.status_code == 422, created.text
    assert created.json()["errors"][0]["location"] == ["body", "display_name"]


async def test_a_sheet_over_the_size_limit_is_refused_in_both_languages(
    session_client, staff_factory
) -> None:
    client, _ = session_client
    token = await staff_factory("school_staff", WANGCUN)
    response = await client.post(
        "/api/v1/learning-accounts/imports",
        files={"file": ("居民.csv", b"," * (MAX_SHEET_BYTES + 1))},
        headers=bearer(token),
    )
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith("/unreadable-sheet")
    assert "split" in response.json()["detail"] and "拆分" in response.json()["detail_zh"]


async def test_a_huge_csv_cell_is_a_sheet_problem(session_client, staff_factory) -> None:
    """Python's csv module stops at a field of 128 KiB with csv.Error: that was a 500 (now a
    SheetError in kernel.sheets)."""
    client, _ = session_client
    token = await staff_factory("school_staff", WANGCUN)
    residence = await village(client, WANGCUN)
    content = _csv([_row(residence), _row(residence, 人群类别="老" * 200_000)])
    response = await client.post(
        "/api/v1/learning-accounts/imports",
        files={"file": ("居民.csv", content)},
        headers=bearer(token),
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/unreadable-sheet")
    assert response.json()["detail_zh"]


def _broken_xlsx() -> bytes:
    """A workbook whose package opens but whose first sheet's XML is cut short."""
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(HEADER)
    saved = io.BytesIO()
    book.save(saved)
    broken = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(saved.getvalue())) as source,
        zipfile.ZipFile(broken, "w") as target,
    ):
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data[: len(data) // 2]
            target.writestr(item, data)
    return broken.getvalue()


async def test_a_broken_xlsx_is_a_sheet_problem(session_client, staff_factory) -> None:
    client, _ = session_client
    token = await staff_factory("school_staff", WANGCUN)
    response = await client.post(
        "/api/v1/learning-accounts/imports",
        files={"file": ("居民.xlsx", _broken_xlsx())},
        headers=bearer(token),
    )
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith("/unreadable-sheet")


async def test_college_staff_of_a_town_cannot_appoint_an_auditor(
    session_client, staff_factory
) -> None:
    """An auditor reads every unit's statistics and every audit trail: appointed by college
    staff bound to one town, the appointee saw what the appointer may not."""
    client, _ = session_client
    town_college = await staff_factory("college_staff", WANGCUN)
    # what the appointer may not see
    elsewhere = await client.get(
        f"/api/v1/units/{MUYE_TOWN}/registrations",
        params={"from": "2026-01-01", "to": "2026-12-31"},
        headers=bearer(town_college),
    )
    assert elsewhere.status_code == 403
    appointed = await client.post(
        "/api/v1/staff",
        json={
            "username": "town.auditor",
            "display_name": "审计",
            "password": "a-long-password",
            "role": "auditor",
            "unit": WANGCUN,
        },
        headers=bearer(town_college),
    )
    assert appointed.status_code == 403, appointed.text
    assert appointed.headers["content-type"] == "application/problem+json"
    assert appointed.json()["detail_zh"]
    # college staff of the whole district still can
    college = await staff_factory("college_staff", "410711")
    by_college = await client.post(
        "/api/v1/staff",
        json={
            "username": "district.auditor",
            "display_name": "审计",
            "password": "a-long-password",
            "role": "auditor",
            "unit": WANGCUN,
        },
        headers=bearer(college),
    )
    assert by_college.status_code == 201, by_college.text
    token = (await sign_in(client, "district.auditor", "a-long-password"))["access_token"]
    assert (
        await client.get(
            f"/api/v1/units/{MUYE_TOWN}/registrations",
            params={"from": "2026-01-01", "to": "2026-12-31"},
            headers=bearer(token),
        )
    ).status_code == 200


async def test_altered_cursors_are_400_problems(session_client, staff_factory) -> None:
    """Cursors are not signed: one holding NUL, a number or a list reached the database (a
    500 on PostgreSQL)."""
    client, _ = session_client
    college = await staff_factory("college_staff", "410711")
    for route, key in (
        ("/api/v1/learning-accounts", "after"),
        ("/api/v1/staff", "after"),
        ("/api/v1/units", "path"),
    ):
        for value in ("\x00", 7, ["/410711/"]):
            response = await client.get(
                route, params={"cursor": encode_cursor({key: value})}, headers=bearer(college)
            )
            assert response.status_code == 400, (route, value, response.text)
            assert response.json()["type"].endswith("/invalid-cursor")
            assert response.json()["detail_zh"] == "翻页位置无效，请从第一页重新查看。"


async def test_a_lookup_of_malformed_numbers_finds_none(session_client, staff_factory) -> None:
    client, _ = session_client
    college = await staff_factory("college_staff", "410711")
    response = await client.post(
        "/api/v1/learning-accounts/lookup",
        json={"account_numbers": ["4107110000001\x00", "x" * 5000]},
        headers=bearer(college),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"found": []}


async def test_a_new_consent_version_on_a_sheet_brings_its_time_and_channel(
    session_client, staff_factory
) -> None:
    """An update took the sheet's consent version but kept the old consent's time and channel,
    so the account claimed consent to a version at a moment before it was given."""
    client, session = session_client
    token = await staff_factory("school_staff", WANGCUN)
    residence = await village(client, WANGCUN)
    number = id_number()
    first = _row(residence, 身份证号=number)
    await _upload(client, token, "居民.csv", _csv([first]), dry_run=False)
    renewed = _row(
        residence, 身份证号=number, 同意版本="2027-01", 同意时间="2027-01-05", 同意方式="APP"
    )
    report = await _upload(client, token, "居民.csv", _csv([renewed]), dry_run=False)
    assert report["updated"] == 1, report
    account = (
        await session.execute(
            select(LearningAccount).where(
                LearningAccount.consent_version == "2027-01"  # type: ignore[arg-type]
            )
        )
    ).scalar_one()
    await session.refresh(account)
    given = aware_utc(account.consent_at).astimezone(BEIJING)  # a date alone: Beijing midnight
    assert (given.isoformat(), account.consent_channel) == ("2027-01-05T00:00:00+08:00", "app")


async def test_an_update_with_a_control_character_in_the_name_is_refused(
    session_client, staff_factory
) -> None:
    client, _ = session_client
    token = await staff_factory("school_staff", WANGCUN)
    opened = await client.post(
        "/api/v1/learning-accounts",
        json=new_account(await village(client, WANGCUN), consent=CONSENT),
        headers=bearer(token),
    )
    assert opened.status_code == 201
    changed = await client.patch(
        f"/api/v1/learning-accounts/{opened.json()['id']}",
        json={"name": "王\x00", "reason": "typo"},
        headers=bearer(token),
    )
    assert changed.status_code == 422, changed.text


SCHOOL = {
    "username": "wangcun-school",
    "display_name": "王村学校",
    "password": "concurrent-import-pass",
    "role": "school_staff",
    "unit_key": WANGCUN,
}


async def _seed(session: AsyncSession) -> None:
    await load_network(session=session, data=muye_network())
    await ensure_staff(session=session, **SCHOOL)


@pytest.fixture(params=BACKENDS)
def committed_db(request: pytest.FixtureRequest) -> str:
    """A database of its own: these requests really commit, side by side."""
    return migrated_database(
        request,
        backend=request.param,
        service="accounts_race",
        service_root=SERVICE_ROOT,
        seed=_seed,
    )


async def test_imports_and_registrations_racing_make_each_resident_once(
    committed_db: str, tmp_path: Path
) -> None:
    """Two imports of one sheet (and a registration of one of its residents) at once: on
    PostgreSQL both imports read "not registered", and the second insert was a unique
    violation, a 500 that lost the whole sheet."""
    settings = Settings(database_url=committed_db, data_dir=tmp_path, log_level="WARNING")
    async with running(create_app(settings)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            token = (await sign_in(client, SCHOOL["username"], SCHOOL["password"]))["access_token"]
            residence = await village(client, WANGCUN)
            numbers = [id_number() for _ in range(20)]
            sheet = _csv([_row(residence, 身份证号=n) for n in numbers])

            async def upload() -> httpx.Response:
                return await client.post(
                    "/api/v1/learning-accounts/imports",
                    params={"dry_run": "false"},
                    files={"file": ("居民.csv", sheet)},
                    headers=bearer(token),
                )

            async def register() -> httpx.Response:
                return await client.post(
                    "/api/v1/learning-accounts",
                    json=new_account(residence, id_number=numbers[0]),
                    headers=bearer(token),
                )

            answers = await asyncio.gather(upload(), upload(), register(), register())
            assert [a.status_code for a in answers[:2]] == [200, 200], [a.text for a in answers]
            assert sorted(a.status_code for a in answers[2:]) in ([201, 409], [409, 409])
            created = sum(a.json()["created"] for a in answers[:2])
            created += sum(a.status_code == 201 for a in answers[2:])
            assert created == len(numbers)
            listed = await client.get(
                "/api/v1/learning-accounts", params={"limit": 100}, headers=bearer(token)
            )
            assert len(listed.json()["items"]) == len(numbers)
            numbers_seen = {a["account_number"] for a in listed.json()["items"]}
            assert len(numbers_seen) == len(numbers)


async def test_nul_in_a_unit_key_or_level_is_no_500(session_client, staff_factory) -> None:
    """PostgreSQL text cannot hold NUL: a key or level holding one reached the database.

    A filter holding a control character is refused by name, as the credits service refuses
    its filters: an empty page would read as "no such units" when the query was garbled.
    """
    client, _ = session_client
    college = await staff_factory("college_staff", "410711")
    for route, params, status in (
        ("/api/v1/units", {"under": "4107\x00"}, 422),
        ("/api/v1/units", {"level": "town\x00"}, 422),
        ("/api/v1/units", {"level": "town\u202e"}, 422),
        ("/api/v1/units/4107%00", {}, 404),
        ("/api/v1/learning-accounts", {"under": "4107\x00"}, 422),
        ("/api/v1/units/4107%00/registrations", {"from": "2026-01-01", "to": "2026-01-02"}, 404),
    ):
        response = await client.get(route, params=params, headers=bearer(college))
        assert response.status_code == status, (route, params, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        if status == 422:
            (name,) = params
            assert name in response.text, response.text
    listed = await client.get(
        "/api/v1/units", params={"level": "town_school"}, headers=bearer(college)
    )
    assert listed.status_code == 200 and listed.json()["items"], listed.text


COLLEGE = {
    "username": "college-appointer",
    "display_name": "学院",
    "password": "concurrent-staff-pass",
    "role": "college_staff",
    "unit_key": "410711",
}


async def test_one_username_created_twice_at_once_is_one_staff_user_and_a_409(
    committed_db: str, tmp_path: Path
) -> None:
    """Both requests found the name free; the second insert was a unique violation (a 500)."""
    settings = Settings(database_url=committed_db, data_dir=tmp_path, log_level="WARNING")
    async with running(create_app(settings)) as app:
        async with AsyncSession(app.state.engine) as session:
            await ensure_staff(session=session, **COLLEGE)
            await session.commit()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            token = (await sign_in(client, COLLEGE["username"], COLLEGE["password"]))[
                "access_token"
            ]
            body = {
                "username": "twin-staff",
                "display_name": "双胞胎",
                "password": "twin-staff-pass",
                "role": "learning_point_staff",
                "unit": WANGCUN,
            }
            answers = await asyncio.gather(
                *(client.post("/api/v1/staff", json=body, headers=bearer(token)) for _ in range(3))
            )
            assert sorted(a.status_code for a in answers) == [201, 409, 409], [
                a.text for a in answers
            ]
            assert all(
                a.headers["content-type"] == "application/problem+json"
                for a in answers
                if a.status_code == 409
            )
            assert (await sign_in(client, "twin-staff", "twin-staff-pass"))["access_token"]

"""Staff management: managers add staff within their own units, and it is audited."""

from __future__ import annotations

from sqlalchemy import text

from .conftest import bearer, sign_in
from .test_learners import MUYE_TOWN, WANGCUN


def _staff(role: str, unit: str, username: str) -> dict:
    return {
        "username": username,
        "display_name": "李老师",
        "password": "a-long-password",
        "role": role,
        "unit": unit,
    }


async def test_college_staff_add_staff_below_them_and_it_is_audited(
    session_client, staff_factory
) -> None:
    client, session = session_client
    college = await staff_factory("college_staff", "410711")
    created = await client.post(
        "/api/v1/staff", json=_staff("school_staff", WANGCUN, "wangcun.li"), headers=bearer(college)
    )
    assert created.status_code == 201, created.text
    assert created.json()["unit"] == WANGCUN
    token = (await sign_in(client, "wangcun.li", "a-long-password"))["access_token"]
    me = (await client.get("/api/v1/me", headers=bearer(token))).json()
    assert me["roles"] == ["school_staff"] and me["unit_key"] == WANGCUN
    audited = await session.execute(
        text(
            "SELECT actor_role FROM audit_entry"
            " WHERE action = 'staff_user.create' AND target_id = :t"
        ),
        {"t": created.json()["id"]},
    )
    assert audited.scalar_one() == "college_staff"
    taken = await client.post(
        "/api/v1/staff", json=_staff("auditor", WANGCUN, "wangcun.li"), headers=bearer(college)
    )
    assert taken.status_code == 409


async def test_staff_cannot_be_placed_outside_the_managers_unit_or_above_their_rank(
    session_client, staff_factory
) -> None:
    client, _ = session_client
    college = await staff_factory("college_staff", "410711")
    school = await staff_factory("school_staff", WANGCUN)
    admin_by_college = await client.post(
        "/api/v1/staff",
        json=_staff("district_admin", "410711", "boss.two"),
        headers=bearer(college),
    )
    assert admin_by_college.status_code == 403
    by_school = await client.post(
        "/api/v1/staff",
        json=_staff("learning_point_staff", WANGCUN, "lp.one"),
        headers=bearer(school),
    )
    assert by_school.status_code == 403
    await staff_factory("school_staff", MUYE_TOWN)
    auditor = await staff_factory("auditor", WANGCUN)
    listing = await client.get("/api/v1/staff", params={"limit": 100}, headers=bearer(auditor))
    assert listing.status_code == 200
    units = {s["unit"] for s in listing.json()["items"]}
    assert WANGCUN in units and MUYE_TOWN not in units and "410711" not in units

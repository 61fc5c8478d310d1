"""Statistics end to end through the gateway on real processes and PostgreSQL: a learning
point's report before and after one verified session of learning by an elderly resident (hours
by group come from the accounts service's group lookup, which the gateway does not route) and
one by a neighbour of theirs at another learning point (participants are the point's residents
wherever they learned, as the accounts service says who lives there), the workbook read back,
and who may see which unit. The stack is shared with other tests, so
figures are compared as differences, except where only this test writes (its own activity's
session)."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from openpyxl import load_workbook

from accounts.cli import DEMO_STAFF
from devstack.stack import Stack
from testkit.http import bearer, new_resident, password_token

TOWN = "410711400"  # the industrial park's school: its first learning point hosts the learning


def _staff(gateway: httpx.Client, admin: str, role: str, unit: str) -> str:
    username = f"s-{role[:10]}-{uuid.uuid4().hex[:6]}"
    created = gateway.post(
        "/api/v1/staff",
        json={
            "username": username,
            "display_name": role,
            "password": "statistics-staff-pass",
            "role": role,
            "unit": unit,
        },
        headers=bearer(admin),
    )
    assert created.status_code == 201, created.text
    return password_token(gateway, username, "statistics-staff-pass")


def test_a_verified_session_shows_in_the_learning_points_statistics(
    gateway: httpx.Client, stack: Stack
) -> None:
    admin = password_token(gateway, DEMO_STAFF["username"], DEMO_STAFF["password"])
    points = gateway.get("/api/v1/units", params={"under": TOWN, "level": "learning_point"})
    point, elsewhere = (u["key"] for u in points.json()["items"][:2])
    account = new_resident(
        gateway, admin, town=TOWN, password="stats-resident-pass", groups=["elderly"]
    )
    point_staff = _staff(gateway, admin, "learning_point_staff", point)
    school = _staff(gateway, admin, "school_staff", TOWN)
    other_point = _staff(gateway, admin, "learning_point_staff", elsewhere)
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()
    period = {"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()}
    url = f"/api/v1/statistics/{point}"

    # a neighbour, living at the same learning point, who learns at the other one
    neighbour = new_resident(gateway, admin, town=TOWN, password="stats-resident-pass")
    other_url = f"/api/v1/statistics/{elsewhere}"

    before = gateway.get(url, params=period, headers=bearer(point_staff))
    assert before.status_code == 200, before.text
    assert before.json()["registrations"]["registered"] >= 1  # the resident opened above
    other_before = gateway.get(other_url, params=period, headers=bearer(other_point)).json()

    now = datetime.now(UTC).replace(microsecond=0)
    for host, learner, staff in (
        (point, account, point_staff),
        (elsewhere, neighbour, other_point),
    ):
        activity = gateway.post(
            "/api/v1/activities",
            json={
                "title": "统计测试：太极拳",
                "kind": "course",
                "category": "tai_chi",
                "mode": "offline",
                "host_unit": host,
                "sessions": [
                    {
                        "starts_at": (now - timedelta(hours=3)).isoformat(),
                        "ends_at": (now - timedelta(hours=2)).isoformat(),
                    }
                ],
            },
            headers=bearer(admin),
        ).json()
        entered = gateway.post(
            f"/api/v1/sessions/{activity['sessions'][0]['id']}/attendance",
            json={"entries": [{"learner": learner["account_number"]}]},
            headers=bearer(staff),
        )
        assert entered.status_code == 200, entered.text
        record = entered.json()["results"][0]["record_id"]
        verified = gateway.post(
            f"/api/v1/learning-records/{record}/status",
            json={"status": "verified", "reason": "核对无误"},
            headers=bearer(school),
        )
        assert verified.status_code == 200, verified.text
        if host == point:
            ours_id = activity["id"]

    # fresh: read now whatever may be kept (a learning point's report takes milliseconds and
    # is not kept; fresh says so however loaded the machine running this is)
    answer = gateway.get(url, params={**period, "fresh": "true"}, headers=bearer(school))
    assert answer.status_code == 200, answer.text
    after, old = answer.json(), before.json()
    assert after["kept"] is False
    assert datetime.fromisoformat(after["as_of"]) > datetime.fromisoformat(old["as_of"])
    # both residents of the point learned; one of them at the point's own activity
    assert after["participants"] == old["participants"] + 2
    assert after["learners"] == old["learners"] + 1
    other_after = gateway.get(
        other_url, params={**period, "fresh": "true"}, headers=bearer(other_point)
    ).json()
    assert other_after["learners"] == other_before["learners"] + 1
    assert other_after["participants"] == other_before["participants"]  # lives at the first
    assert after["total_minutes"] == old["total_minutes"] + 60
    tai_chi = {(h["category"], h["mode"]): h["minutes"] for h in after["hours_by_category_mode"]}
    old_tai_chi = {(h["category"], h["mode"]): h["minutes"] for h in old["hours_by_category_mode"]}
    assert tai_chi["tai_chi", "offline"] == old_tai_chi.get(("tai_chi", "offline"), 0) + 60
    assert after["activities"]["sessions"] == old["activities"]["sessions"] + 1
    ours = [s for s in after["sessions"] if s["activity_id"] == ours_id]
    assert [(s["attendance"], s["planned_minutes"]) for s in ours] == [(1, 60)]
    # the resident is elderly: one more elderly learner, their record and its hour
    assert after["missing"] == [] and old["missing"] == []
    by_group = {g["group"]: g for g in after["hours_by_group"]}
    old_by_group = {g["group"]: g for g in old["hours_by_group"]}
    elderly, old_elderly = by_group["elderly"], old_by_group["elderly"]
    assert elderly["group_name"] == "老年人"
    assert elderly["learners"] == old_elderly["learners"] + 1
    assert elderly["minutes"] == old_elderly["minutes"] + 60
    assert elderly["records"] == old_elderly["records"] + 1
    assert by_group["youth"]["minutes"] == old_by_group["youth"]["minutes"]
    population = after["population"]
    assert after["participation"]["rate"] == round(after["participants"] / population, 6)
    registered = after["registrations"]["registered"]
    assert after["real_name_registration"]["rate"] == round(registered / population, 6)

    workbook = gateway.get(url, params={**period, "format": "xlsx"}, headers=bearer(admin))
    assert workbook.status_code == 200, workbook.text
    assert workbook.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    book = load_workbook(io.BytesIO(workbook.content), read_only=True)
    summary = {r[0]: r[1] for r in book["汇总"].iter_rows(min_row=2, values_only=True)}
    assert (summary["参与人数"], summary["学习人数"]) == (after["participants"], after["learners"])
    assert summary["实名注册人数"] == registered
    groups = {r[0]: r for r in book["按人群学时"].iter_rows(min_row=2, values_only=True)}
    assert groups["elderly"] == (
        "elderly",
        "老年人",
        elderly["learners"],
        elderly["hours"],
        elderly["records"],
    )
    csv_file = gateway.get(url, params={**period, "format": "csv"}, headers=bearer(school))
    assert csv_file.content.decode("utf-8-sig").splitlines()[0] == "指标,数值,说明"

    # staff see their own unit and below; auditors and district admins any; residents none
    refused = gateway.get(url, params=period, headers=bearer(other_point))
    assert refused.status_code == 403 and refused.json()["type"].endswith("/statistics-not-visible")
    assert gateway.get(f"/api/v1/statistics/{TOWN}", headers=bearer(point_staff)).status_code == 403
    assert (
        gateway.get(
            url,
            headers=bearer(
                password_token(gateway, account["account_number"], "stats-resident-pass")
            ),
        ).status_code
        == 403
    )
    assert gateway.get(url).status_code == 401
    # the group lookup is the credits service's, inside: the gateway does not route it
    lookup = gateway.post(
        "/api/v1/learner-groups/lookup",
        json={"unit": point, "learners": [account["id"]]},
        headers=bearer(admin),
    )
    assert lookup.status_code == 404
    # and inside, a staff token alone does not open it: only the credits service's signed call
    accounts = stack.config.url(stack.config.accounts_port)
    inside = httpx.post(
        f"{accounts}/api/v1/learner-groups/lookup",
        json={"unit": point, "learners": [account["id"]]},
        headers=bearer(admin),
    )
    assert inside.status_code == 403
    assert inside.json()["type"].endswith("/service-signature-required")
    auditor = _staff(gateway, admin, "auditor", "410711")
    district = gateway.get("/api/v1/statistics/410711", params=period, headers=bearer(auditor))
    assert district.status_code == 200 and district.json()["participants"] >= 1
    # every report and every export is in the credits service's audit trail
    unit_key = url.rstrip("/").rsplit("/", 1)[-1]
    trail = gateway.get(
        "/api/v1/audit/credits/entries",
        params={"target_id": unit_key, "limit": 100},
        headers=bearer(auditor),
    ).json()["items"]
    exports = [e for e in trail if e["action"] == "statistics.export"]
    assert len(exports) == 2  # the workbook and the CSV
    assert any(e["action"] == "statistics.report" for e in trail)
    registrations = gateway.get(
        f"/api/v1/units/{TOWN}/registrations", params=period, headers=bearer(other_point)
    )
    assert registrations.status_code == 403

    stars = gateway.get(f"/api/v1/statistics/{TOWN}/learning-stars", headers=bearer(school))
    assert stars.status_code == 200, stars.text
    assert stars.json()["rule_version"] == "muye-learning-star-2026.1"

"""Learning accounts: validation, personal data sealed at rest, who sees what."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
from sqlalchemy import text

from accounts import accountno
from testkit.people import id_number, phone

from .conftest import bearer, sign_in

WANGCUN, MUYE_TOWN = "410711100", "410711101"
CONSENT = {"version": "2026-01", "at": "2026-11-01T09:00:00+08:00", "channel": "paper"}


async def village(client: httpx.AsyncClient, town: str, index: int = 0) -> str:
    response = await client.get("/api/v1/units", params={"under": town, "level": "learning_point"})
    return str(response.json()["items"][index]["key"])


def new_account(residence: str, **overrides: object) -> dict:
    body: dict = {
        "name": "王秀英",
        "id_number": id_number(),
        "phone": phone(),
        "residence_unit": residence,
        "groups": ["elderly", "rural_residents"],
        "consent": CONSENT,
        "password": "resident-pass-1",
    }
    body.update(overrides)
    return body


async def test_staff_open_an_account_and_see_it_masked(session_client, staff_factory) -> None:
    client, _ = session_client
    token = await staff_factory("learning_point_staff", WANGCUN)
    number, mobile = id_number(date(1958, 3, 9), sequence=27), phone()
    body = new_account(await village(client, WANGCUN), id_number=number, phone=mobile)
    response = await client.post("/api/v1/learning-accounts", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    account = response.json()
    assert account["id_number_masked"] == number[:6] + "*" * 10 + number[-2:]
    assert account["phone_masked"] == mobile[:3] + "****" + mobile[-4:]
    assert account["birth_date"] == "1958-03-09"
    assert account["gender"] == "male"  # sequence 027 is odd
    assert accountno.is_valid(account["account_number"])
    assert account["account_number"].startswith("410711")
    assert number not in response.text and mobile not in response.text


async def test_raw_database_holds_no_plain_id_or_phone(session_client, staff_factory) -> None:
    client, session = session_client
    token = await staff_factory("school_staff", WANGCUN)
    number, mobile = id_number(), phone()
    body = new_account(await village(client, WANGCUN), id_number=number, phone=mobile)
    assert (
        await client.post("/api/v1/learning-accounts", json=body, headers=bearer(token))
    ).status_code == 201
    dumped = []
    for table in ("learning_account", "audit_entry"):
        rows = (await session.execute(text(f"SELECT * FROM {table}"))).all()
        assert rows
        dumped.extend(repr(value) for row in rows for value in row)
        dumped.extend(value.hex() for row in rows for value in row if isinstance(value, bytes))
    everything = "\n".join(dumped)
    for secret in (number, number[6:14], mobile, mobile.encode().hex(), number.encode().hex()):
        assert secret not in everything


async def test_same_id_number_never_registers_twice(session_client, staff_factory) -> None:
    client, _ = session_client
    token = await staff_factory("school_staff", WANGCUN)
    residence = await village(client, WANGCUN)
    number = id_number()
    first = await client.post(
        "/api/v1/learning-accounts",
        json=new_account(residence, id_number=number),
        headers=bearer(token),
    )
    assert first.status_code == 201
    again = await client.post(
        "/api/v1/learning-accounts",
        json=new_account(residence, id_number=f" {number.lower()} ", phone=phone()),
        headers=bearer(token),
    )
    assert again.status_code == 409
    assert again.json()["type"].endswith("/duplicate-account")
    assert again.json()["detail_zh"]


async def test_bad_checksum_is_refused_with_a_reason(session_client, staff_factory) -> None:
    client, _ = session_client
    token = await staff_factory("school_staff", WANGCUN)
    good = id_number()
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    response = await client.post(
        "/api/v1/learning-accounts",
        json=new_account(await village(client, WANGCUN), id_number=bad),
        headers=bearer(token),
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"].endswith("/invalid-id-number")
    assert problem["reason"] == "the check character does not match"
    assert problem["detail_zh"] == "身份证号码校验位错误"


async def test_under_14_needs_a_guardian(session_client, staff_factory) -> None:
    client, _ = session_client
    token = await staff_factory("school_staff", WANGCUN)
    residence = await village(client, WANGCUN)
    child = id_number(date(date.today().year - 10, 1, 1))
    refused = await client.post(
        "/api/v1/learning-accounts",
        json=new_account(residence, id_number=child),
        headers=bearer(token),
    )
    assert refused.status_code == 422
    assert refused.json()["type"].endswith("/guardian-consent-required")
    guardian = {"name": "王建国", "consent_at": datetime.now(UTC).isoformat()}
    accepted = await client.post(
        "/api/v1/learning-accounts",
        json=new_account(residence, id_number=child, guardian=guardian, groups=["youth"]),
        headers=bearer(token),
    )
    assert accepted.status_code == 201


async def test_residence_must_be_a_learning_point_in_the_staff_unit(
    session_client, staff_factory
) -> None:
    client, _ = session_client
    token = await staff_factory("school_staff", WANGCUN)
    for residence, expected in (
        ("999999999999", 422),
        (WANGCUN, 422),
        (await village(client, MUYE_TOWN), 422),
    ):
        response = await client.post(
            "/api/v1/learning-accounts", json=new_account(residence), headers=bearer(token)
        )
        assert response.status_code == expected, residence
        assert response.json()["type"].endswith("/unknown-residence-unit")


async def test_body_cannot_set_status_or_owner(session_client, staff_factory) -> None:
    client, _ = session_client
    token = await staff_factory("school_staff", WANGCUN)
    body = new_account(
        await village(client, WANGCUN), status="frozen", account_number="41071100000012"
    )
    response = await client.post("/api/v1/learning-accounts", json=body, headers=bearer(token))
    assert response.status_code == 422
    assert {tuple(e["location"]) for e in response.json()["errors"]} == {
        ("body", "status"),
        ("body", "account_number"),
    }


async def test_staff_of_another_town_and_other_residents_see_nothing(
    session_client, staff_factory
) -> None:
    client, _ = session_client
    wangcun = await staff_factory("school_staff", WANGCUN)
    other_town = await staff_factory("school_staff", MUYE_TOWN)
    college = await staff_factory("auditor", "410711")
    residence = await village(client, WANGCUN)
    mine = (
        await client.post(
            "/api/v1/learning-accounts", json=new_account(residence), headers=bearer(wangcun)
        )
    ).json()
    other = (
        await client.post(
            "/api/v1/learning-accounts",
            json=new_account(residence, phone=phone()),
            headers=bearer(wangcun),
        )
    ).json()
    url = f"/api/v1/learning-accounts/{mine['id']}"
    assert (await client.get(url, headers=bearer(other_town))).status_code == 404
    assert (await client.get(url, headers=bearer(college))).status_code == 200  # auditors read
    assert (
        await client.post(
            f"{url}/status", json={"status": "frozen", "reason": "x"}, headers=bearer(college)
        )
    ).status_code == 403  # and never write
    resident = (await sign_in(client, mine["account_number"], "resident-pass-1"))["access_token"]
    assert (await client.get(url, headers=bearer(resident))).status_code == 200
    assert (
        await client.get(f"/api/v1/learning-accounts/{other['id']}", headers=bearer(resident))
    ).status_code == 404
    assert (
        await client.get("/api/v1/learning-accounts", headers=bearer(resident))
    ).status_code == 403
    own = await client.get("/api/v1/me/account", headers=bearer(resident))
    assert own.json()["id"] == mine["id"]
    listing = await client.get(
        "/api/v1/learning-accounts", params={"under": residence}, headers=bearer(wangcun)
    )
    assert {a["id"] for a in listing.json()["items"]} >= {mine["id"], other["id"]}
    foreign = await client.get(
        "/api/v1/learning-accounts", params={"under": residence}, headers=bearer(other_town)
    )
    assert foreign.status_code == 404


async def test_reveal_is_for_college_staff_and_is_audited(session_client, staff_factory) -> None:
    client, session = session_client
    point = await staff_factory("learning_point_staff", WANGCUN)
    college = await staff_factory("college_staff", "410711")
    number, mobile = id_number(), phone()
    created = (
        await client.post(
            "/api/v1/learning-accounts",
            json=new_account(await village(client, WANGCUN), id_number=number, phone=mobile),
            headers=bearer(point),
        )
    ).json()
    url = f"/api/v1/learning-accounts/{created['id']}/reveal"
    reason = {"reason": "核对证书信息 checking a certificate"}
    assert (await client.post(url, json=reason, headers=bearer(point))).status_code == 403
    revealed = await client.post(url, json=reason, headers=bearer(college))
    assert revealed.status_code == 200
    assert revealed.json() == {"id": created["id"], "id_number": number, "phone": mobile}
    entries = (
        await session.execute(
            text("SELECT action, reason FROM audit_entry WHERE target_id = :t ORDER BY id"),
            {"t": created["id"]},
        )
    ).all()
    assert [e[0] for e in entries] == ["learning_account.create", "learning_account.reveal"]
    assert entries[1][1] == reason["reason"]


async def test_frozen_resident_cannot_sign_in_and_update_is_audited(
    session_client, staff_factory
) -> None:
    client, session = session_client
    staff = await staff_factory("school_staff", WANGCUN)
    created = (
        await client.post(
            "/api/v1/learning-accounts",
            json=new_account(await village(client, WANGCUN)),
            headers=bearer(staff),
        )
    ).json()
    url = f"/api/v1/learning-accounts/{created['id']}"
    patched = await client.patch(
        url, json={"groups": ["veterans"], "reason": "corrected at the desk"}, headers=bearer(staff)
    )
    assert patched.json()["groups"] == ["veterans"]
    frozen = await client.post(
        f"{url}/status",
        json={"status": "frozen", "reason": "resident asked"},
        headers=bearer(staff),
    )
    assert frozen.json()["status"] == "frozen"
    refused = await client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": created["account_number"],
            "password": "resident-pass-1",
        },
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    actions = (
        (
            await session.execute(
                text("SELECT action FROM audit_entry WHERE target_id = :t"), {"t": created["id"]}
            )
        )
        .scalars()
        .all()
    )
    assert set(actions) == {
        "learning_account.create",
        "learning_account.update",
        "learning_account.status.frozen",
        "sign_in.failed",  # every refused sign-in is audited, a frozen account's too
    }

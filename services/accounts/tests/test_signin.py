"""Sign-in for residents, staff and partners; lockout; refresh rotation; revocation."""

from __future__ import annotations

import base64

import httpx
from sqlalchemy import text

from accounts.cli import DEMO_STAFF
from testkit.people import phone

from .conftest import bearer, sign_in
from .test_learners import WANGCUN, new_account, village


async def _resident(client: httpx.AsyncClient, staff_token: str, **overrides: object) -> dict:
    body = new_account(await village(client, WANGCUN), **overrides)
    response = await client.post(
        "/api/v1/learning-accounts", json=body, headers=bearer(staff_token)
    )
    assert response.status_code == 201, response.text
    return {**response.json(), "phone": body["phone"]}


async def test_resident_signs_in_by_account_number_or_phone(session_client, staff_factory) -> None:
    client, _ = session_client
    resident = await _resident(client, await staff_factory("school_staff", WANGCUN))
    for username in (resident["account_number"], resident["phone"]):
        tokens = await sign_in(client, username, "resident-pass-1")
        me = (await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))).json()
        assert me["kind"] == "resident" and me["subject"] == resident["id"]
        assert "resident" in me["roles"]


async def test_a_phone_shared_by_two_residents_must_use_the_account_number(
    session_client, staff_factory
) -> None:
    client, _ = session_client
    staff = await staff_factory("school_staff", WANGCUN)
    shared = phone()
    first = await _resident(client, staff, phone=shared)
    await _resident(client, staff, phone=shared)
    refused = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": shared, "password": "resident-pass-1"},
    )
    assert refused.status_code == 400
    assert (await sign_in(client, first["account_number"], "resident-pass-1"))["access_token"]


async def test_repeated_failures_lock_the_account_for_a_while(
    session_client, staff_factory
) -> None:
    client, _ = session_client
    resident = await _resident(client, await staff_factory("school_staff", WANGCUN))
    form = {"grant_type": "password", "username": resident["account_number"]}
    for _ in range(5):
        wrong = await client.post("/auth/token", data={**form, "password": "wrong-password"})
        assert wrong.status_code == 400
    locked = await client.post("/auth/token", data={**form, "password": "resident-pass-1"})
    assert locked.status_code == 429
    assert locked.json()["type"].endswith("/account-locked")
    assert int(locked.headers["retry-after"]) > 60


async def test_refresh_rotates_and_reuse_revokes_the_family(client: httpx.AsyncClient) -> None:
    first = await sign_in(client, DEMO_STAFF["username"], DEMO_STAFF["password"])
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = await client.post("/auth/token", data=refresh)
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    reused = await client.post("/auth/token", data=refresh)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    # told why in Chinese too, not "wrong username or password" (nobody typed one)
    assert "已被使用过" in reused.json()["detail_zh"], reused.text
    # the thief's reuse also ends the legitimate chain
    after = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": second.json()["refresh_token"]},
    )
    assert after.status_code == 400
    assert after.json()["detail_zh"] == "登录已失效，请重新登录。", after.text


async def test_revoked_refresh_token_stops_working(client: httpx.AsyncClient) -> None:
    tokens = await sign_in(client, DEMO_STAFF["username"], DEMO_STAFF["password"])
    assert (
        await client.post("/auth/revoke", data={"token": tokens["refresh_token"]})
    ).status_code == 200
    assert (await client.post("/auth/revoke", data={"token": "never-issued"})).status_code == 200
    used = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert used.status_code == 400


async def test_partner_client_credentials_form_basic_and_rotation(
    client: httpx.AsyncClient, session_client
) -> None:
    admin = (await sign_in(client, DEMO_STAFF["username"], DEMO_STAFF["password"]))["access_token"]
    registered = await client.post(
        "/api/v1/partner-clients",
        json={
            "client_id": "henan-mooc",
            "name": "河南终身学习平台",
            "unit": "410711",
            "scopes": ["records:write"],
        },
        headers=bearer(admin),
    )
    assert registered.status_code == 201, registered.text
    secret = registered.json()["client_secret"]
    form = await client.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "henan-mooc",
            "client_secret": secret,
        },
    )
    assert form.status_code == 200 and "refresh_token" not in form.json()
    assert form.json()["scope"] == "records:write"
    basic = base64.b64encode(f"henan-mooc:{secret}".encode()).decode()
    via_basic = await client.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    me = (await client.get("/api/v1/me", headers=bearer(via_basic.json()["access_token"]))).json()
    assert me["kind"] == "partner" and me["roles"] == ["partner"]
    wider = await client.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "henan-mooc",
            "client_secret": secret,
            "scope": "records:read",
        },
    )
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    # a sign-in failure as a wrong secret is: a partner probing for more is on the trail
    probed = await session_client[1].execute(
        text(
            "SELECT outcome, reason FROM audit_entry"
            " WHERE action = 'sign_in.failed' AND target_id = 'henan-mooc'"
        )
    )
    assert [tuple(r) for r in probed] == [("invalid_scope", "asked for records:read")]
    rotated = await client.post("/api/v1/partner-clients/henan-mooc/secret", headers=bearer(admin))
    assert rotated.status_code == 200
    old = await client.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "henan-mooc",
            "client_secret": secret,
        },
    )
    assert old.status_code == 401 and old.json()["error"] == "invalid_client"
    assert "muye" in old.headers["www-authenticate"]

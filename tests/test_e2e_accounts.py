"""Accounts end to end: a resident, a staff member and a partner sign in through the gateway
and each uses their token; the services refuse what the gateway would refuse."""

from __future__ import annotations

import uuid

import httpx

from accounts.cli import DEMO_STAFF
from devstack.stack import Stack
from testkit.http import bearer
from testkit.people import id_number, phone


def _token(gateway: httpx.Client, **form: str) -> str:
    response = gateway.post("/auth/token", data=form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_resident_staff_and_partner_each_sign_in_and_use_their_token(
    gateway: httpx.Client, stack: Stack
) -> None:
    staff = _token(
        gateway,
        grant_type="password",
        username=DEMO_STAFF["username"],
        password=DEMO_STAFF["password"],
    )
    villages = gateway.get(
        "/api/v1/units", params={"under": "410711101", "level": "learning_point"}
    )
    residence = villages.json()["items"][0]["key"]
    created = gateway.post(
        "/api/v1/learning-accounts",
        json={
            "name": "刘玉梅",
            "id_number": id_number(),
            "phone": phone(),
            "residence_unit": residence,
            "groups": ["elderly"],
            "consent": {
                "version": "2026-01",
                "at": "2026-11-20T10:00:00+08:00",
                "channel": "paper",
            },
            "password": "e2e-resident-pass",
        },
        headers=bearer(staff),
    )
    assert created.status_code == 201, created.text
    account = created.json()

    resident = _token(
        gateway,
        grant_type="password",
        username=account["account_number"],
        password="e2e-resident-pass",
    )
    own = gateway.get("/api/v1/me/account", headers=bearer(resident))
    assert own.status_code == 200 and own.json()["id"] == account["id"]
    assert gateway.get("/api/v1/learning-accounts", headers=bearer(resident)).status_code == 403

    client_id = f"partner-{uuid.uuid4().hex[:8]}"
    registered = gateway.post(
        "/api/v1/partner-clients",
        json={
            "client_id": client_id,
            "name": "学习平台",
            "unit": "410711",
            "scopes": ["records:write"],
        },
        headers=bearer(staff),
    )
    assert registered.status_code == 201, registered.text
    partner = _token(
        gateway,
        grant_type="client_credentials",
        client_id=client_id,
        client_secret=registered.json()["client_secret"],
    )
    me = gateway.get("/api/v1/me", headers=bearer(partner))
    assert me.json()["kind"] == "partner"
    denied = gateway.post("/api/v1/learning-accounts", json={}, headers=bearer(partner))
    assert denied.status_code == 403

    listed = gateway.get(
        "/api/v1/learning-accounts", params={"under": residence}, headers=bearer(staff)
    )
    assert account["id"] in {a["id"] for a in listed.json()["items"]}


def test_a_service_reached_without_the_gateway_still_checks_the_token(stack: Stack) -> None:
    accounts = stack.config.url(stack.config.accounts_port)
    assert httpx.get(f"{accounts}/api/v1/me").status_code == 401
    forged = httpx.get(f"{accounts}/api/v1/me", headers=bearer("eyJhbGciOiJub25lIn0.e30."))
    assert forged.status_code == 401

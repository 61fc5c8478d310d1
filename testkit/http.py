"""Small HTTP helpers for tests: bearer headers and password sign-in."""

from __future__ import annotations

import httpx


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


def password_token(client: httpx.Client, username: str, password: str) -> str:
    """Sign in with the password grant and return the access token."""
    response = client.post(
        "/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def new_resident(
    client: httpx.Client, staff_token: str, *, town: str, password: str, **fields: object
) -> dict[str, object]:
    """Open a learning account in the first learning point under ``town``; return it."""
    from testkit.people import id_number

    villages = client.get("/api/v1/units", params={"under": town, "level": "learning_point"})
    body: dict[str, object] = {
        "name": "测试居民",
        "id_number": id_number(),
        "residence_unit": villages.json()["items"][0]["key"],
        "consent": {"version": "v1", "at": "2026-11-01T08:00:00+08:00", "channel": "paper"},
        "password": password,
        **fields,
    }
    response = client.post("/api/v1/learning-accounts", json=body, headers=bearer(staff_token))
    assert response.status_code == 201, response.text
    return dict(response.json())


def new_partner(client: httpx.Client, staff_token: str, client_id: str) -> str:
    """Register a partner platform with ``records:write`` and return its access token."""
    registered = client.post(
        "/api/v1/partner-clients",
        json={
            "client_id": client_id,
            "name": "合作平台",
            "unit": "410711",
            "scopes": ["records:write"],
        },
        headers=bearer(staff_token),
    )
    assert registered.status_code == 201, registered.text
    token = client.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": registered.json()["client_secret"],
        },
    )
    assert token.status_code == 200, token.text
    return str(token.json()["access_token"])


def settled_credits(client: httpx.Client, token: str, timeout: float = 20.0) -> dict[str, object]:
    """The resident's credits once the ledger's worker has settled every change (or timed out)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        credits = client.get("/api/v1/me/credits", headers=bearer(token)).json()
        if not credits["settlement_pending"] or time.monotonic() > deadline:
            return dict(credits)
        time.sleep(0.3)


def online_hours(
    client: httpx.Client,
    staff_token: str,
    account_number: str,
    *,
    days: int = 8,
    minutes: int = 240,
    category: str = "employment",
) -> dict[str, object]:
    """A partner platform posts ``days`` daily online stretches for the learner; its answer."""
    import uuid
    from datetime import UTC, datetime, timedelta

    client_id = f"hours-{uuid.uuid4().hex[:6]}"
    partner = new_partner(client, staff_token, client_id)
    course = client.post(
        "/api/v1/activities",
        json={
            "title": "电商直播带货",
            "kind": "online_course",
            "category": category,
            "mode": "online",
            "partner": client_id,
        },
        headers=bearer(staff_token),
    ).json()["id"]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=days + 4)
    records = [
        {
            "id": f"{client_id}-{day}",
            "learner": account_number,
            "activity": course,
            "start": (start + timedelta(days=day)).isoformat(),
            "end": (start + timedelta(days=day, minutes=minutes)).isoformat(),
            "minutes": minutes,
        }
        for day in range(days)
    ]
    posted = client.post(
        "/api/v1/learning-records:batch", json={"records": records}, headers=bearer(partner)
    )
    assert posted.status_code == 200 and posted.json()["created"] == days, posted.text
    return dict(posted.json())

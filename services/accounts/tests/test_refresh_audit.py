"""Every refused refresh token is in the audit trail, committed although the request fails."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.auth.models import RefreshToken
from accounts.cli import DEMO_STAFF

from .conftest import bearer, sign_in
from .test_signin import _resident


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": token}
    )


async def _family(session: AsyncSession, token: str) -> str:
    digest = hashlib.sha256(token.encode()).hexdigest()
    family = await session.scalar(
        text("SELECT family_id FROM refresh_token WHERE token_hash = :h"), {"h": digest}
    )
    return str(family).replace("-", "")


async def _last_refusal(session: AsyncSession) -> dict:
    row = (
        await session.execute(
            text(
                "SELECT actor, target_type, target_id, reason, outcome FROM audit_entry"
                " WHERE action = 'refresh_token.refused' ORDER BY seq DESC LIMIT 1"
            )
        )
    ).one()
    return dict(row._mapping)


async def _refusals(session: AsyncSession) -> int:
    return int(
        await session.scalar(
            text("SELECT count(*) FROM audit_entry WHERE action = 'refresh_token.refused'")
        )
        or 0
    )


async def test_unknown_revoked_and_expired_refresh_tokens_are_audited(session_client) -> None:
    client, session = session_client
    before = await _refusals(session)
    unknown = await _refresh(client, "never-issued-token")
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_grant"
    entry = await _last_refusal(session)
    assert entry == {
        "actor": "anonymous",
        "target_type": "refresh_token_family",
        "target_id": "unknown",
        "reason": "unknown",
        "outcome": "refused",
    }

    staff_id = (
        await client.get(
            "/api/v1/me",
            headers=bearer(
                (await sign_in(client, DEMO_STAFF["username"], DEMO_STAFF["password"]))[
                    "access_token"
                ]
            ),
        )
    ).json()["subject"]
    revoked = await sign_in(client, DEMO_STAFF["username"], DEMO_STAFF["password"])
    await client.post("/auth/revoke", data={"token": revoked["refresh_token"]})
    assert (await _refresh(client, revoked["refresh_token"])).status_code == 400
    entry = await _last_refusal(session)
    assert entry["reason"] == "revoked" and entry["actor"] == staff_id
    assert entry["target_id"].replace("-", "") == await _family(session, revoked["refresh_token"])

    expired = await sign_in(client, DEMO_STAFF["username"], DEMO_STAFF["password"])
    digest = hashlib.sha256(expired["refresh_token"].encode()).hexdigest()
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.token_hash == digest)  # type: ignore[arg-type]
        .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
    )
    await session.commit()
    assert (await _refresh(client, expired["refresh_token"])).status_code == 400
    entry = await _last_refusal(session)
    assert entry["reason"] == "expired"
    assert entry["target_id"].replace("-", "") == await _family(session, expired["refresh_token"])

    assert await _refusals(session) == before + 3
    tokens = (revoked["refresh_token"], expired["refresh_token"], "never-issued-token")
    dumped = repr((await session.execute(text("SELECT * FROM audit_entry"))).all())
    assert not any(token in dumped for token in tokens)


async def test_refresh_for_a_frozen_account_is_audited_and_does_not_spend_the_token(
    session_client, staff_factory
) -> None:
    client, session = session_client
    staff = await staff_factory("school_staff", "410711100")
    resident = await _resident(client, staff)
    tokens = await sign_in(client, resident["account_number"], "resident-pass-1")

    async def set_status(status: str) -> None:
        changed = await client.post(
            f"/api/v1/learning-accounts/{resident['id']}/status",
            json={"status": status, "reason": "测试"},
            headers=bearer(staff),
        )
        assert changed.status_code == 200, changed.text

    await set_status("frozen")
    refused = await _refresh(client, tokens["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    entry = await _last_refusal(session)
    assert entry["actor"] == resident["id"] and entry["reason"] == "account not active"
    assert entry["target_id"].replace("-", "") == await _family(session, tokens["refresh_token"])
    await set_status("active")
    assert (await _refresh(client, tokens["refresh_token"])).status_code == 200

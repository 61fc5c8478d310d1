"""Concurrent audited requests, really committed, still make one linear chain."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import SERVICE_ROOT
from accounts.config import Settings
from accounts.main import create_app
from accounts.network.service import load_network, muye_network
from accounts.staff.service import ensure_staff
from testkit.apps import running
from testkit.fixtures import BACKENDS, migrated_database

AUDITOR = {
    "username": "county-auditor",
    "display_name": "县审计",
    "password": "concurrent-audit-pass",
    "role": "auditor",
    "unit_key": "410711",
}


async def _seed(session: AsyncSession) -> None:
    await load_network(session=session, data=muye_network())
    await ensure_staff(session=session, **AUDITOR)


@pytest.fixture(params=BACKENDS)
def fresh_db(request: pytest.FixtureRequest) -> str:
    """A database of its own: these requests really commit."""
    return migrated_database(
        request,
        backend=request.param,
        service="accounts_audit",
        service_root=SERVICE_ROOT,
        seed=_seed,
    )


async def test_fifty_concurrent_audited_requests_make_one_verifiable_chain(
    fresh_db: str, tmp_path: Path
) -> None:
    url = fresh_db
    settings = Settings(database_url=url, data_dir=tmp_path, log_level="WARNING")
    async with running(create_app(settings)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            signed_in = await client.post(
                "/auth/token",
                data={
                    "grant_type": "password",
                    "username": AUDITOR["username"],
                    "password": AUDITOR["password"],
                },
            )
            headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
            answers = await asyncio.gather(
                *(
                    client.get(
                        "/api/v1/audit/accounts/entries", params={"limit": 1}, headers=headers
                    )
                    for _ in range(50)
                ),
                *(
                    client.post(
                        "/auth/token",
                        data={"grant_type": "password", "username": f"nobody-{n}", "password": "x"},
                    )
                    for n in range(10)
                ),
            )
            assert [a.status_code for a in answers] == [200] * 50 + [400] * 10
            verified = await client.get("/api/v1/audit/accounts/verify", headers=headers)
        async with app.state.engine.connect() as connection:
            seqs = (
                await connection.execute(text("SELECT seq FROM audit_entry ORDER BY seq"))
            ).all()
            actions = (
                await connection.execute(
                    text("SELECT action, count(*) FROM audit_entry GROUP BY action")
                )
            ).all()
    result = verified.json()
    assert result["ok"] is True, result
    assert [s for (s,) in seqs] == list(range(1, len(seqs) + 1))  # no gaps, no repeats
    counts = dict(actions)
    assert counts["audit.list"] == 50 and counts["sign_in.failed"] == 10
    assert result["entries_checked"] == result["head"]["seq"] == len(seqs) - 1  # then itself

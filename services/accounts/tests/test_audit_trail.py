"""The accounts audit trail: hash-chained, append only, verified, purged only after 180 days.

The scenarios are shared with credits (testkit.audit_scenarios); this module adds what only
accounts has: refused sign-ins, reveals and staff changes land in the chain.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.audit.models import TABLES
from kernel.auditstore import AuditTables
from testkit.audit_scenarios import *  # noqa: F403

from .conftest import bearer


@pytest.fixture
def audit_pair(session_client: tuple[httpx.AsyncClient, AsyncSession]):  # type: ignore[no-untyped-def]
    return session_client


@pytest.fixture
def audit_prefix() -> str:
    return "/api/v1/audit/accounts"


@pytest.fixture
def audit_tables() -> AuditTables:
    return TABLES


@pytest.fixture
async def auditor_headers(staff_factory) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return bearer(await staff_factory("auditor", "410711"))


@pytest.fixture
async def outsider_headers(staff_factory) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return bearer(await staff_factory("college_staff", "410711"))


async def test_refused_sign_ins_are_in_the_chain_even_for_unknown_names(
    session_client: tuple[httpx.AsyncClient, AsyncSession], auditor_headers: dict[str, str]
) -> None:
    client, session = session_client
    for username in ("admin", "nobody-by-this-name"):
        refused = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": username, "password": "wrong"},
        )
        assert refused.status_code == 400
    rows = (
        await session.execute(
            text(
                "SELECT target_type, outcome FROM audit_entry WHERE action = 'sign_in.failed'"
                " ORDER BY seq DESC LIMIT 2"
            )
        )
    ).all()
    assert [tuple(r) for r in rows] == [("username", "refused"), ("staff_user", "refused")]
    verified = await client.get("/api/v1/audit/accounts/verify", headers=auditor_headers)
    assert verified.json()["ok"] is True

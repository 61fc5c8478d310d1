"""The credits audit trail: hash-chained, append only, verified, purged only after 180 days.

The scenarios are shared with accounts (testkit.audit_scenarios); this module adds that the
service's state changes land in the chain, in the transaction that made them.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from credits.audit.models import TABLES
from kernel.auditstore import AuditTables
from testkit.audit_scenarios import *  # noqa: F403


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def audit_pair(session_client: tuple[httpx.AsyncClient, AsyncSession]):  # type: ignore[no-untyped-def]
    return session_client


@pytest.fixture
def audit_prefix() -> str:
    return "/api/v1/audit/credits"


@pytest.fixture
def audit_tables() -> AuditTables:
    return TABLES


@pytest.fixture
def auditor_headers(issue_token) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return bearer(issue_token("staff", role="auditor", unit="410711"))


@pytest.fixture
def outsider_headers(issue_token) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return bearer(issue_token("resident"))

"""The chaining migration numbers and hashes the entries written before it, on both backends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import DateTime, bindparam, text

from accounts import SERVICE_ROOT
from accounts.audit.models import TABLES
from kernel import auditstore
from kernel.db import make_engine, make_sessionmaker
from kernel.migrations import alembic_config
from kernel.settings import normalise_database_url
from testkit.fixtures import BACKENDS

BEFORE_CHAIN = "1334c3889a6f"


async def _verify(url: str) -> auditstore.Verification:
    engine = make_engine(normalise_database_url(url))
    try:
        async with make_sessionmaker(engine)() as session:
            return await auditstore.verify(session, TABLES)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_entries_from_before_the_chain_are_chained_in_order(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    if backend == "postgresql":
        url = request.getfixturevalue("postgres").create_database("mig_audit")
    else:
        url = f"sqlite:///{tmp_path / 'a.sqlite3'}"
    config = alembic_config(SERVICE_ROOT, url)
    command.upgrade(config, BEFORE_CHAIN)

    async def legacy() -> None:
        engine = make_engine(normalise_database_url(url))
        try:
            async with engine.begin() as connection:
                for n in range(3):
                    await connection.execute(
                        text(
                            "INSERT INTO audit_entry (at, actor, actor_kind, action, target_type,"
                            " target_id, outcome) VALUES (:at, 'old', 'system', 'legacy',"
                            " 'thing', :t, 'ok')"
                        ).bindparams(bindparam("at", type_=DateTime(timezone=True))),
                        {"at": datetime(2026, 5, n + 1, 8, tzinfo=UTC), "t": f"t{n}"},
                    )
        finally:
            await engine.dispose()

    asyncio.run(legacy())
    command.upgrade(config, "head")
    result = asyncio.run(_verify(url))
    assert result.ok and result.entries_checked == 3 and result.head.seq == 3
    command.downgrade(config, BEFORE_CHAIN)  # and back down, the entries kept

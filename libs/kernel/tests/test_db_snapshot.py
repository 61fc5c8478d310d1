"""kernel.db.in_one_snapshot: read-only parts at once on PostgreSQL, one snapshot for all of
them; in turn on one session on SQLite."""

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.db import in_one_snapshot, make_engine, make_sessionmaker
from testkit.postgres import PostgresServer


class Refused(Exception):
    pass


async def _count(session: AsyncSession) -> int:
    return int((await session.execute(text("SELECT count(*) FROM item"))).scalar_one())


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    return postgres.create_database("snapshot").replace("postgresql://", "postgresql+asyncpg://")


@pytest.fixture
async def pg_engine(pg_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(pg_url)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE item (n int)"))
        await connection.execute(text("INSERT INTO item VALUES (1)"))
    yield engine
    await engine.dispose()


async def test_parts_run_at_once_and_see_one_snapshot_whatever_commits_meanwhile(
    pg_engine,  # type: ignore[no-untyped-def]
) -> None:
    second_began = asyncio.Event()
    committed = asyncio.Event()

    async def first(session: AsyncSession) -> tuple[int, int]:
        before = await _count(session)
        # run one after the other, this would wait for ever: the second part has not begun
        await asyncio.wait_for(second_began.wait(), timeout=10)
        async with pg_engine.begin() as other:
            await other.execute(text("INSERT INTO item VALUES (2)"))
        committed.set()
        pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        return before + 10 * await _count(session), int(pid)

    async def second(session: AsyncSession) -> tuple[int, int]:
        second_began.set()
        await committed.wait()
        # its first statement comes after the other transaction committed
        pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        return await _count(session), int(pid)

    async with make_sessionmaker(pg_engine)() as session:
        (seen_by_first, first_pid), (seen_by_second, second_pid) = await in_one_snapshot(
            session, first, second
        )
        now = await _count(session)
    assert seen_by_first == 1 + 10 * 1  # the same count before and after the commit
    assert seen_by_second == 1  # read after the commit, in the exported snapshot
    assert now == 2  # a transaction of its own sees the new row
    assert first_pid != second_pid
    assert pg_engine.pool.checkedout() == 0


async def test_parts_are_read_only_and_a_failure_cancels_the_rest(
    pg_engine,  # type: ignore[no-untyped-def]
) -> None:
    async def writes(session: AsyncSession) -> None:
        await session.execute(text("INSERT INTO item VALUES (3)"))

    async def reads(session: AsyncSession) -> int:
        return await _count(session)

    async with make_sessionmaker(pg_engine)() as session:
        with pytest.raises(DBAPIError, match="read-only transaction"):
            await in_one_snapshot(session, reads, writes)

    cancelled = asyncio.Event()

    async def fails(session: AsyncSession) -> None:
        await _count(session)
        raise Refused("no")

    async def waits(_: AsyncSession) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with make_sessionmaker(pg_engine)() as session:
        with pytest.raises(Refused):
            await in_one_snapshot(session, waits, fails)
        assert await _count(session) == 1
    assert cancelled.is_set()
    assert pg_engine.pool.checkedout() == 0


async def test_on_sqlite_parts_run_in_turn_on_the_session_itself(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE item (n int)"))
            await connection.execute(text("INSERT INTO item VALUES (1), (2)"))
        order: list[str] = []
        async with make_sessionmaker(engine)() as session:

            def part(name: str):  # type: ignore[no-untyped-def]
                async def run(reader: AsyncSession) -> tuple[str, int, bool]:
                    order.append(name + " began")
                    n = await _count(reader)
                    await asyncio.sleep(0.01)
                    order.append(name + " ended")
                    return name, n, reader is session

                return run

            results = await in_one_snapshot(session, part("a"), part("b"))
        assert results == [("a", 2, True), ("b", 2, True)]
        assert order == ["a began", "a ended", "b began", "b ended"]
    finally:
        await engine.dispose()

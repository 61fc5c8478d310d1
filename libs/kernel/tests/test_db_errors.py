"""A failed statement's error names the statement, never the values it was given."""

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from kernel.db import make_engine
from testkit.postgres import PostgresServer

SECRET = "张三 410711199001011234"


async def _failure(url: str) -> str:
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE person (name varchar(4) NOT NULL)"))
            with pytest.raises(DBAPIError) as failed:
                # too long on PostgreSQL; a missing column on SQLite (it has no varchar limit)
                await connection.execute(
                    text("INSERT INTO person (name, nosuch) VALUES (:name, :name)"),
                    {"name": SECRET},
                )
        return str(failed.value)
    finally:
        await engine.dispose()


async def test_values_stay_out_of_errors_on_sqlite(tmp_path: Path) -> None:
    message = await _failure(f"sqlite+aiosqlite:///{tmp_path / 'e.sqlite3'}")
    assert "INSERT INTO person" in message
    assert SECRET not in message and "410711" not in message


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    return postgres.create_database("errors").replace("postgresql://", "postgresql+asyncpg://")


async def test_values_stay_out_of_errors_on_postgresql(pg_url: str) -> None:
    message = await _failure(pg_url)
    assert "INSERT INTO person" in message
    assert SECRET not in message and "410711" not in message

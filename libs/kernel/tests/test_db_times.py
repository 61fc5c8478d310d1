"""Times on the embedded default: SQLite keeps a timestamp's digits and drops its offset, so
``DateTime(timezone=True)`` columns are stored as UTC digits and read back aware, in UTC, as
PostgreSQL gives them (answers served from SQLite lacked their "Z" before)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, insert, select

from kernel.db import make_engine

BEIJING = timezone(timedelta(hours=8))
TABLE = Table(
    "moment",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True)),
    Column("local", DateTime()),
)


class Shown(BaseModel):
    at: datetime


async def test_aware_times_go_in_as_utc_and_come_back_aware(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'times.sqlite3'}")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(TABLE.metadata.create_all)
            await connection.execute(
                insert(TABLE),
                [
                    {"at": datetime(2026, 10, 1, 9, 30, tzinfo=BEIJING), "local": None},
                    {"at": datetime(2026, 10, 1, 1, 30), "local": datetime(2026, 10, 1, 9)},
                ],
            )
        async with engine.connect() as connection:
            rows = (await connection.execute(select(TABLE).order_by(TABLE.c.id))).all()
            stored = (await connection.exec_driver_sql("SELECT at FROM moment")).scalars().all()
    finally:
        await engine.dispose()
    # a Beijing time is kept as its UTC digits; a naive one as given (UTC, by convention)
    assert list(stored) == ["2026-10-01 01:30:00.000000"] * 2
    assert [row.at for row in rows] == [datetime(2026, 10, 1, 1, 30, tzinfo=UTC)] * 2
    assert rows[1].local == datetime(2026, 10, 1, 9)  # a column without a zone stays naive
    assert Shown(at=rows[0].at).model_dump_json() == '{"at":"2026-10-01T01:30:00Z"}'

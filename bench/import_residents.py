"""Bulk resident import: 50,000 sheet rows on PostgreSQL (issue 4 asks for under a minute).

Prints the time of each phase and the commit's ratio to a raw baseline measured in the same run
(the same 50,000 rows inserted straight into learning_account, no checks, no encryption).
Usage: uv run python -m bench.import_residents [rows]   (needs PostgreSQL at 127.0.0.1:5432
or a throwaway cluster, like the tests)
"""

from __future__ import annotations

import asyncio
import csv
import io
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, insert, text

from accounts import SERVICE_ROOT
from accounts.learners.importing import import_residents
from accounts.learners.models import LearningAccount
from accounts.learners.sheet import read_sheet
from accounts.network.service import load_network, muye_network
from accounts.pii import load_pii_cipher
from kernel.db import make_engine, make_sessionmaker, run_in_transaction
from kernel.migrations import upgrade_to_head
from kernel.settings import normalise_database_url
from testkit.people import id_number
from testkit.postgres import postgres_server

HEADER = [
    "姓名",
    "身份证号",
    "手机号",
    "村(社区)编码",
    "人群类别",
    "同意版本",
    "同意时间",
    "同意方式",
]


def make_sheet(rows: int, villages: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    born = date(1940, 1, 1)
    for n in range(rows):
        number = id_number(born + timedelta(days=n // 900), sequence=n % 900)
        writer.writerow(
            [
                f"居民{n}",
                number,
                f"139{n:08d}",
                villages[n % len(villages)],
                "农村居民",
                "2026-01",
                "2026-10-01",
                "纸质",
            ]
        )
    return buffer.getvalue().encode("utf-8-sig")


async def run(url: str, rows: int) -> None:
    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    cipher = load_pii_cipher(Path(tempfile.mkdtemp()) / "pii.json", create=True)
    async with maker() as session:
        villages = [
            k
            for (k,) in (
                await session.execute(
                    text("SELECT key FROM unit WHERE level_code = 'learning_point'")
                )
            ).all()
        ]
        root = (
            await session.execute(text("SELECT path FROM unit WHERE key = '410711'"))
        ).scalar_one()
    sheet = make_sheet(rows, villages)
    print(f"rows: {rows}, villages: {len(villages)}, sheet: {len(sheet) / 1e6:.1f} MB")

    started = time.perf_counter()
    parsed = list(read_sheet("bench.csv", sheet))
    parse_s = time.perf_counter() - started

    async def phase(dry_run: bool) -> tuple[float, object]:
        began = time.perf_counter()
        async with maker() as session, session.begin():
            report = await import_residents(
                session=session,
                cipher=cipher,
                rows=parsed,
                covering_path=root,
                actor="bench",
                district_code="410711",
                dry_run=dry_run,
            )
        return time.perf_counter() - began, report

    dry_s, dry = await phase(True)
    commit_s, committed = await phase(False)
    again_s, again = await phase(False)

    # baseline: the same number of rows inserted raw into the emptied table
    async with maker() as session, session.begin():
        await session.execute(text("DELETE FROM audit_entry"))
        await session.execute(delete(LearningAccount))
        unit = (
            await session.execute(text("SELECT id FROM unit WHERE key = :k"), {"k": villages[0]})
        ).scalar_one()
    now = datetime.now(UTC)
    raw = [
        {
            "id": uuid.uuid4(),
            "account_number": f"R{n:013d}",
            "name": f"居民{n}",
            "id_number_cipher": b"x" * 60,
            "id_number_index": f"{n:064x}",
            "id_number_masked": "410711**********00",
            "birth_date": date(1960, 1, 1),
            "gender": "male",
            "residence_unit_id": unit,
            "residence_path": root,
            "groups": [],
            "roles": [],
            "consent_version": "2026-01",
            "consent_at": now,
            "consent_channel": "import",
            "status": "active",
            "failed_sign_ins": 0,
            "created_at": now,
            "updated_at": now,
        }
        for n in range(rows)
    ]
    began = time.perf_counter()
    async with maker() as session, session.begin():
        for start in range(0, rows, 500):
            await session.execute(insert(LearningAccount), raw[start : start + 500])
    raw_s = time.perf_counter() - began
    await engine.dispose()

    print(f"read + parse sheet:      {parse_s:7.2f} s")
    print(f"dry run (check all):     {dry_s:7.2f} s  -> would create {dry.created}", end="")
    print(f", rejected {dry.rejected}")
    print(f"commit:                  {commit_s:7.2f} s  -> created {committed.created}", end="")
    print(f"  ({rows / commit_s:,.0f} rows/s)")
    print(f"second commit (no-op):   {again_s:7.2f} s  -> unchanged {again.unchanged}", end="")
    print(f", created {again.created}")
    print(f"raw insert baseline:     {raw_s:7.2f} s  ({rows / raw_s:,.0f} rows/s)")
    total = parse_s + dry_s + commit_s
    print(f"sheet to committed (parse + dry run + commit): {total:.2f} s")
    print(f"commit / raw baseline: {commit_s / raw_s:.2f}")


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    with postgres_server() as server:
        url = server.create_database("bench_import")
        upgrade_to_head(SERVICE_ROOT, url)
        asyncio.run(
            run_in_transaction(
                normalise_database_url(url), lambda s: load_network(session=s, data=muye_network())
            )
        )
        asyncio.run(run(normalise_database_url(url), rows))


if __name__ == "__main__":
    main()

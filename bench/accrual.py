"""Accrual: countable learning records into ledger postings on PostgreSQL, set-based.

Makes a fresh credits database (migrated, seeded), loads N countable records with COPY (50 per
learner, spread over two years, four categories and three modes, partner and check-in
sources), then lets the ledger's outbox worker settle them all: first one worker, then (on a
second copy of the data) two worker processes sharing the outbox with SKIP LOCKED, as two
credits worker processes do. In the same run it
measures the raw ceiling: COPY of as many provenance-shaped rows into an empty table. Prints
records/s, the ratio to that ceiling, and checks that every record was settled and that the
ledger reconciles (every transaction balanced, every balance the sum of its postings,
provenance equal to what the issuer paid, entitlements recomputed).

Usage: uv run python -m bench.accrual [records]   (default 1000000)
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from credits import SERVICE_ROOT
from credits.cli import seed_reference_data
from credits.db import make_credits_engine
from credits.ledger import reconciliation
from credits.ledger.worker import drain
from kernel.db import make_sessionmaker, run_in_transaction
from kernel.migrations import upgrade_to_head
from kernel.settings import normalise_database_url
from testkit.postgres import postgres_server

PER_LEARNER = 50
CATEGORIES = ("law", "health", "digital_skills", "culture_arts")
MODES = ("offline", "online", "blended")
COLUMNS = (
    "learner_id",
    "activity_id",
    "category_code",
    "mode",
    "host_unit_path",
    "source",
    "source_client",
    "external_id",
    "started_at",
    "ended_at",
    "minutes",
    "evidence",
    "status",
    "status_changed_at",
    "status_changed_by",
    "created_at",
)


def rows(total: int, activities: dict[tuple[str, str], uuid.UUID]) -> list[tuple[object, ...]]:
    """``total`` countable records, 50 per learner, none overlapping."""
    now = datetime.now(UTC)
    base = datetime(2025, 1, 2, 1, tzinfo=UTC)
    out: list[tuple[object, ...]] = []
    for learner_no in range(total // PER_LEARNER):
        learner = uuid.uuid4()
        for n in range(PER_LEARNER):
            category = CATEGORIES[(learner_no + n) % len(CATEGORIES)]
            mode = MODES[n % len(MODES)]
            start = base + timedelta(days=7 * n + learner_no % 7, hours=n % 5)
            minutes = 30 + (learner_no * 7 + n * 13) % 150
            partner = mode == "online"
            out.append(
                (
                    learner,
                    activities[(category, mode)],
                    category,
                    mode,
                    "/410711/410711100/",
                    "partner" if partner else "check_in",
                    "bench" if partner else None,
                    f"{learner_no}-{n}" if partner else None,
                    start,
                    start + timedelta(minutes=minutes),
                    minutes,
                    "{}",
                    "pending" if partner else "verified",
                    now,
                    "bench",
                    now,
                )
            )
    return out


async def load(dsn: str, total: int) -> None:
    connection = await asyncpg.connect(dsn)
    activities: dict[tuple[str, str], uuid.UUID] = {}
    for category in CATEGORIES:
        for mode in MODES:
            activity = uuid.uuid4()
            activities[(category, mode)] = activity
            await connection.execute(
                "INSERT INTO activity (id, title, kind, category_code, mode, host_unit,"
                " host_unit_path, partner_client, status, created_by, created_at)"
                " VALUES ($1, 'bench', 'course', $2, $3, '410711100', '/410711/410711100/',"
                " 'bench', 'open', 'bench', now())",
                activity,
                category,
                mode,
            )
    await connection.copy_records_to_table(
        "learning_record", records=rows(total, activities), columns=COLUMNS
    )
    await connection.execute("ANALYZE")
    await connection.close()


async def raw_ceiling(dsn: str, total: int) -> float:
    """COPY ``total`` provenance-shaped rows into an empty table: seconds."""
    connection = await asyncpg.connect(dsn)
    await connection.execute("CREATE TABLE raw_source (LIKE credit_source INCLUDING DEFAULTS)")
    now = datetime.now(UTC).date()
    records = [
        (n // 20 + 1, uuid.uuid4(), f"hours:{n}", "hours.offline", "law", now, 1, 12, [n], None)
        for n in range(total)
    ]
    started = time.perf_counter()
    await connection.copy_records_to_table(
        "raw_source",
        records=records,
        columns=(
            "transaction_id",
            "learner_id",
            "key",
            "clause",
            "category_code",
            "earned_on",
            "rule_version_id",
            "amount_hundredths",
            "record_ids",
            "certification_id",
        ),
    )
    elapsed = time.perf_counter() - started
    await connection.execute("DROP TABLE raw_source")
    await connection.close()
    return elapsed


def _worker(url: str, ready: Any, go: Any, done: Any) -> None:
    """One worker process, as a credits service worker process runs its outbox loop."""

    async def work() -> int:
        engine = make_credits_engine(normalise_database_url(url), pool_size=2)
        ready.set()
        go.wait()
        settled = await drain(make_sessionmaker(engine))
        await engine.dispose()
        return settled

    done.put(asyncio.run(work()))


def settle(url: str, workers: int) -> float:
    """Settle everything with ``workers`` processes sharing the outbox; seconds taken."""
    context = multiprocessing.get_context("spawn")
    go, done = context.Event(), context.Queue()
    readies = [context.Event() for _ in range(workers)]
    processes = [context.Process(target=_worker, args=(url, ready, go, done)) for ready in readies]
    for process in processes:
        process.start()
    for ready in readies:
        ready.wait()
    started = time.perf_counter()
    go.set()
    settled = [done.get() for _ in processes]
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join()
    print(f"  records settled by each worker process: {settled}")
    return elapsed


async def check(url: str, dsn: str) -> None:
    connection = await asyncpg.connect(dsn)
    left = await connection.fetchval("SELECT count(*) FROM ledger_outbox")
    counts = await connection.fetchrow(
        "SELECT (SELECT count(*) FROM ledger_transaction) AS transactions,"
        " (SELECT count(*) FROM credit_posting) AS postings,"
        " (SELECT count(*) FROM credit_source) AS sources,"
        " (SELECT sum(balance_hundredths) FROM ledger_account WHERE kind = 'learner') AS held"
    )
    await connection.close()
    print(
        f"  learners left in the outbox: {left}; transactions {counts['transactions']:,}, "
        f"postings {counts['postings']:,}, provenance lines {counts['sources']:,}, "
        f"credits held {counts['held'] / 100:,.2f}"
    )
    engine = make_credits_engine(normalise_database_url(url))
    started = time.perf_counter()
    async with make_sessionmaker(engine)() as session:
        report = await reconciliation.reconcile(session)
    await engine.dispose()
    print(
        f"  reconciliation: {len(report.discrepancies)} discrepancies over "
        f"{report.learners_checked:,} learners ({time.perf_counter() - started:.1f} s)"
    )


def main(total: int) -> None:
    with postgres_server() as server:
        results = {}
        for workers in (1, 2):
            url = server.create_database(f"bench_accrual_{workers}")
            upgrade_to_head(SERVICE_ROOT, url)
            asyncio.run(run_in_transaction(normalise_database_url(url), seed_reference_data))
            dsn = url.replace("postgresql+asyncpg://", "postgresql://")
            began = time.perf_counter()
            asyncio.run(load(dsn, total))
            print(f"loaded {total:,} records in {time.perf_counter() - began:.1f} s")
            print(f"settling with {workers} worker(s):")
            elapsed = settle(url, workers)
            results[workers] = elapsed
            print(f"  {elapsed:.1f} s  {total / elapsed:,.0f} records/s")
            asyncio.run(check(url, dsn))
            if workers == 1:
                raw = asyncio.run(raw_ceiling(dsn, total))
        print(
            f"raw ceiling: COPY of {total:,} provenance rows in {raw:.1f} s ({total / raw:,.0f}/s)"
        )
        for workers, elapsed in results.items():
            print(
                f"{workers} worker(s): {total / elapsed:,.0f} records/s, "
                f"ratio to the raw COPY ceiling {raw / elapsed:.2f}"
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)

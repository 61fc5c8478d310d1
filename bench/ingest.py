"""Partner ingestion through the gateway into PostgreSQL, against raw insert ceilings.

Starts the three services on fresh PostgreSQL databases, registers a partner, an online course
and 1,000 learners, then posts N records in batches of 1,000 through the gateway with token
checks, validation, dedupe, the overlap check and the 24-hours-a-day rule on. Each learner gets
one 30-minute stretch per batch, later batches later in time. In the same run it inserts the
same rows straight into empty copies of learning_record (LIKE ... INCLUDING ALL: the indexes,
not our triggers), 1,000 rows and one commit at a time, two ways:

- ``executemany`` INSERT ... ON CONFLICT DO NOTHING on one connection (the ceiling this
  benchmark has always printed);
- one ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING RETURNING id`` per 1,000 rows
  on two connections (the best set-based way measured on this machine).

It prints our rate and its ratio to each, p50/p99 per batch, CPU per 1,000 records of each
process (services, their PostgreSQL backends, this client: all share the cores), each
service's peak memory, and whether the database holds exactly what was acknowledged.

Usage: uv run python -m bench.ingest [records] [clients] [--credits-workers N]
       [--gateway-workers N]      (defaults: 100000 records, 4 clients, 1 worker each)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.harness import (
    LoadConnection,
    Meter,
    Partner,
    Running,
    batch_body,
    enrol_partner,
    latency_line,
    raw_row,
    running_stack,
)

BATCH = 1000
EVIDENCE = json.dumps({"_content_hash": "0" * 64})
RAW_EXECUTEMANY = (
    "INSERT INTO raw_one (learner_id, activity_id, category_code, mode, host_unit_path, source,"
    " source_client, external_id, started_at, ended_at, minutes, evidence, status,"
    " status_changed_at, status_changed_by, created_at)"
    " VALUES ($1, $2::uuid, 'digital_skills', 'online', '/410711/', 'partner', 'raw', $3, $4, $5,"
    " 30, $6::json, 'pending', $7, 'raw', $7)"
    " ON CONFLICT DO NOTHING"
)
RAW_UNNEST = (
    "INSERT INTO raw_set (learner_id, activity_id, category_code, mode, host_unit_path, source,"
    " source_client, external_id, started_at, ended_at, minutes, evidence, status,"
    " status_changed_at, status_changed_by, created_at)"
    " SELECT b.l, $2::uuid, 'digital_skills', 'online', '/410711/', 'partner', 'raw', b.x, b.s,"
    " b.e, 30, $6::json, 'pending', $7, 'raw', $7"
    " FROM unnest($1::uuid[], $3::text[], $4::timestamptz[], $5::timestamptz[]) AS b(l, x, s, e)"
    " ON CONFLICT DO NOTHING RETURNING id"
)


async def post_batches(
    running: Running, partner: Partner, total: int, clients: int, base: datetime
) -> tuple[float, int, list[float], Meter]:
    """Post ``total`` records in batches through the gateway; time, created, latencies."""
    batches = iter(range(total // BATCH))
    latencies: list[float] = []
    acknowledged = 0

    async def client() -> None:
        nonlocal acknowledged
        headers = {"Authorization": f"Bearer {partner.token}", "Content-Type": "application/json"}
        http = LoadConnection(running.gateway, headers)
        try:
            for b in batches:
                body = batch_body(partner, b * BATCH, BATCH, base)
                began = time.perf_counter()
                status, answer = await http.request("POST", "/api/v1/learning-records:batch", body)
                latencies.append(time.perf_counter() - began)
                assert status == 200, answer
                acknowledged += json.loads(answer)["created"]
        finally:
            await http.close()

    meter = Meter(running)
    await meter.start()
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    await meter.stop()
    return elapsed, acknowledged, latencies, meter


async def raw_baselines(
    running: Running, partner: Partner, total: int, base: datetime
) -> tuple[int, float, float]:
    """Rows stored, and rows/s of the two raw ways of inserting the same rows."""
    connection = await asyncpg.connect(running.credits_url)
    stored = await connection.fetchval(
        "SELECT count(*) FROM learning_record WHERE source_client = 'bench-mooc'"
    )
    learner_of = dict(
        await connection.fetch(
            "SELECT DISTINCT ON (external_id) external_id, learner_id FROM learning_record"
            " WHERE source_client = 'bench-mooc' AND external_id = ANY($1::text[])",
            [f"r{n}" for n in range(len(partner.learners))],
        )
    )
    learner_ids = [learner_of[f"r{n}"] for n in range(len(partner.learners))]
    for table in ("raw_one", "raw_set"):
        await connection.execute(f"CREATE TABLE {table} (LIKE learning_record INCLUDING ALL)")
    now = datetime.now(UTC)

    def rows(b: int) -> list[tuple]:
        return [
            raw_row(learner_ids, partner.course, n, base) for n in range(b * BATCH, (b + 1) * BATCH)
        ]

    began = time.perf_counter()
    for b in range(total // BATCH):
        async with connection.transaction():
            await connection.executemany(
                RAW_EXECUTEMANY, [(*row, EVIDENCE, now) for row in rows(b)]
            )
    one = total / (time.perf_counter() - began)

    batches = iter(range(total // BATCH))

    async def inserter() -> None:
        own = await asyncpg.connect(running.credits_url)
        try:
            for b in batches:
                columns = list(zip(*rows(b), strict=True))
                async with own.transaction():
                    await own.fetch(
                        RAW_UNNEST,
                        list(columns[0]),
                        partner.course,
                        list(columns[2]),
                        list(columns[3]),
                        list(columns[4]),
                        EVIDENCE,
                        now,
                    )
        finally:
            await own.close()

    began = time.perf_counter()
    await asyncio.gather(inserter(), inserter())
    two = total / (time.perf_counter() - began)
    await connection.close()
    return stored, one, two


async def run(running: Running, total: int, clients: int, workers: dict[str, int]) -> None:
    partner = await enrol_partner(running.gateway)
    base = datetime.now(UTC) - timedelta(days=3650)
    elapsed, acknowledged, latencies, meter = await post_batches(
        running, partner, total, clients, base
    )
    stored, one, two = await raw_baselines(running, partner, total, base)
    ours = acknowledged / elapsed
    print(
        f"records: {total} in {total // BATCH} batches of {BATCH}, {clients} concurrent clients,"
        f" workers {', '.join(f'{n} {workers.get(n, 1)}' for n in ('gateway', 'credits'))}"
    )
    print(f"through the gateway:  {elapsed:8.1f} s  {ours:10,.0f} records/s")
    print(f"raw executemany, 1 connection:    {one:10,.0f} records/s  ratio {ours / one:.2f}")
    print(f"raw INSERT..unnest, 2 connections: {two:10,.0f} records/s  ratio {ours / two:.2f}")
    print(f"per batch: {latency_line(latencies)}")
    print(meter.line(total / 1000, "1,000 records"))
    print(meter.memory_line())
    verdict = "equal" if acknowledged == stored else "DIFFERENT"
    print(f"acknowledged {acknowledged}, stored {stored}: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("records", nargs="?", type=int, default=100_000)
    parser.add_argument("clients", nargs="?", type=int, default=4)
    parser.add_argument("--credits-workers", type=int, default=1)
    parser.add_argument("--gateway-workers", type=int, default=1)
    args = parser.parse_args()
    total = args.records - args.records % BATCH
    workers = {"credits": args.credits_workers, "gateway": args.gateway_workers}
    with running_stack(workers) as running:
        asyncio.run(run(running, total, args.clients, workers))


if __name__ == "__main__":
    main()

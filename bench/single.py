"""Single-record posts (a batch of one) through the gateway at 32 concurrent clients.

Starts the three services on fresh PostgreSQL databases, registers a partner, an online course
and 1,000 learners, then keeps 32 clients posting one record each per request for the given
time, with every check on. In the same run it measures two baselines at the same concurrency:

- the HTTP ceiling: ``GET /healthz`` answered by the gateway itself (this client, uvicorn and
  the cores, no upstream, no database);
- the database ceiling: one-row ``INSERT ... RETURNING id`` and a commit per row, on 32
  connections, into an empty copy of learning_record (its indexes, not our triggers).

Prints requests/s, p50/p99 latency, the ratio to each baseline, CPU per request of each process,
peak memory, and whether the database holds exactly what was acknowledged.

Usage: uv run python -m bench.single [seconds] [clients] [--credits-workers N]
       [--gateway-workers N]      (defaults: 20 seconds, 32 clients, 1 worker each)
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.harness import (
    STRETCH,
    LoadConnection,
    Meter,
    Partner,
    Running,
    batch_body,
    enrol_partner,
    latency_line,
    record_slot,
    running_stack,
)

RAW_INSERT = (
    "INSERT INTO raw_single (learner_id, activity_id, category_code, mode, host_unit_path,"
    " source, source_client, external_id, started_at, ended_at, minutes, evidence, status,"
    " status_changed_at, status_changed_by, created_at)"
    " VALUES ($1, $2::uuid, 'digital_skills', 'online', '/410711/', 'partner', 'raw', $3, $4,"
    " $5, 30, $6::json, 'pending', $7, 'raw', $7) RETURNING id"
)


async def for_a_while(
    clients: int, seconds: float, request: Callable[[int], Awaitable[bool]]
) -> tuple[int, float, list[float]]:
    """Run ``clients`` loops of ``request`` for ``seconds``; requests done, time, latencies."""
    latencies: list[float] = []
    numbers = itertools.count()
    done = 0
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            if await request(next(numbers)):
                done += 1
            latencies.append(time.perf_counter() - began)

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(clients)))
    return done, time.perf_counter() - started, latencies


async def run(running: Running, seconds: float, clients: int) -> None:
    partner: Partner = await enrol_partner(running.gateway)
    base = datetime.now(UTC) - timedelta(days=3650)
    headers = {"Authorization": f"Bearer {partner.token}", "Content-Type": "application/json"}
    connections = [LoadConnection(running.gateway, headers) for _ in range(clients)]
    idle = asyncio.Queue[LoadConnection]()
    for c in connections:
        idle.put_nowait(c)
    acknowledged = 0

    async def on_a_connection(method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        connection = await idle.get()
        try:
            return await connection.request(method, path, body)
        finally:
            idle.put_nowait(connection)

    async def healthz(_n: int) -> bool:
        return (await on_a_connection("GET", "/healthz"))[0] == 200

    async def post(n: int) -> bool:
        nonlocal acknowledged
        status, answer = await on_a_connection(
            "POST", "/api/v1/learning-records:batch", batch_body(partner, n, 1, base)
        )
        assert status == 200, answer
        acknowledged += json.loads(answer)["created"]
        return True

    # the learner lookups kept by credits, as in a steady stream: one batch names every learner
    status, answer = await on_a_connection(
        "POST", "/api/v1/learning-records:batch", batch_body(partner, 10**7, 1000, base)
    )
    assert status == 200, answer
    acknowledged += json.loads(answer)["created"]
    await for_a_while(clients, 2, healthz)  # open the connections
    http_done, http_time, _ = await for_a_while(clients, seconds / 2, healthz)
    meter = Meter(running)
    await meter.start()
    done, elapsed, latencies = await for_a_while(clients, seconds, post)
    await meter.stop()
    for c in connections:
        await c.close()

    connection = await asyncpg.connect(running.credits_url)
    stored = await connection.fetchval(
        "SELECT count(*) FROM learning_record WHERE source_client = 'bench-mooc'"
    )
    learner_ids = [
        uuid
        for (uuid,) in await connection.fetch(
            "SELECT DISTINCT learner_id FROM learning_record WHERE source_client = 'bench-mooc'"
        )
    ]
    await connection.execute("CREATE TABLE raw_single (LIKE learning_record INCLUDING ALL)")
    await connection.close()
    evidence = json.dumps({"_content_hash": "0" * 64})
    now = datetime.now(UTC)
    pool = await asyncpg.create_pool(running.credits_url, min_size=clients, max_size=clients)

    async def insert(n: int) -> bool:
        learner, start = record_slot(n, len(learner_ids), base)
        async with pool.acquire() as own, own.transaction():
            await own.fetchval(
                RAW_INSERT,
                learner_ids[learner],
                partner.course,
                f"r{n}",
                start,
                start + STRETCH,
                evidence,
                now,
            )
        return True

    raw_done, raw_time, _ = await for_a_while(clients, seconds / 2, insert)
    await pool.close()

    ours = done / elapsed
    http_rate, raw_rate = http_done / http_time, raw_done / raw_time
    print(f"single-record posts: {clients} concurrent clients for {elapsed:.1f} s")
    print(f"through the gateway: {ours:10,.0f} requests/s  ({done} requests)")
    print(f"latency: {latency_line(latencies)}")
    print(f"HTTP ceiling (gateway /healthz):  {http_rate:8,.0f} requests/s  ratio", end=" ")
    print(f"{ours / http_rate:.2f}")
    print(f"DB ceiling (1-row insert+commit): {raw_rate:8,.0f} rows/s      ratio", end=" ")
    print(f"{ours / raw_rate:.2f}")
    print(meter.line(done, "request"))
    print(meter.memory_line())
    verdict = "equal" if acknowledged == stored else "DIFFERENT"
    print(f"acknowledged {acknowledged}, stored {stored}: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("seconds", nargs="?", type=float, default=20.0)
    parser.add_argument("clients", nargs="?", type=int, default=32)
    parser.add_argument("--credits-workers", type=int, default=1)
    parser.add_argument("--gateway-workers", type=int, default=1)
    args = parser.parse_args()
    workers = {"credits": args.credits_workers, "gateway": args.gateway_workers}
    with running_stack(workers) as running:
        asyncio.run(run(running, args.seconds, args.clients))


if __name__ == "__main__":
    main()

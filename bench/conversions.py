"""Conversion approvals through the gateway on PostgreSQL: 1,000 learners, 16 clients.

Starts the three services on fresh PostgreSQL databases, gives 1,000 learners one verified
10-hour vocational record each (loaded with COPY, settled by the ledger's own worker code), files
one application per learner, then has the college approve all of them through the gateway with
16 concurrent clients, each approval with its Idempotency-Key. In the same run it measures a
baseline: GET /api/v1/conversion-targets (a read of the same service through the gateway) at the
same concurrency. Prints approvals/s, p50/p99, the ratio to the baseline, and checks that every
approval debited exactly once and that the ledger of these learners reconciles.

Usage: uv run python -m bench.conversions [learners] [clients]   (default 1000 16)
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from accounts.cli import DEMO_STAFF
from bench.harness import running_stack
from credits.db import make_credits_engine
from credits.ledger import reconciliation
from credits.ledger.worker import drain
from devstack.stack import Stack
from kernel.db import make_sessionmaker
from kernel.settings import normalise_database_url

TARGET = "vocational_training_hours"  # 1 credit from vocational categories per unit


async def arrange(credits_url: str, learners: int) -> list[str]:
    """Learners with 1 credit each, settled, and one application each; their conversion ids."""
    dsn = credits_url
    connection = await asyncpg.connect(dsn)
    activity = uuid.uuid4()
    await connection.execute(
        "INSERT INTO activity (id, title, kind, category_code, mode, host_unit, host_unit_path,"
        " status, created_by, created_at) VALUES ($1, 'bench', 'course', 'vocational_skills',"
        " 'offline', '410711100', '/410711/410711100/', 'open', 'bench', now())",
        activity,
    )
    now = datetime.now(UTC)
    start = now - timedelta(days=30)
    ids = [uuid.uuid4() for _ in range(learners)]
    await connection.copy_records_to_table(
        "learning_record",
        records=[
            (
                learner,
                activity,
                "vocational_skills",
                "offline",
                "/410711/410711100/",
                "check_in",
                start,
                start + timedelta(hours=10),
                600,
                "{}",
                "verified",
                now,
                "bench",
                now,
            )
            for learner in ids
        ],
        columns=(
            "learner_id",
            "activity_id",
            "category_code",
            "mode",
            "host_unit_path",
            "source",
            "started_at",
            "ended_at",
            "minutes",
            "evidence",
            "status",
            "status_changed_at",
            "status_changed_by",
            "created_at",
        ),
    )
    conversions = [uuid.uuid4() for _ in ids]
    await connection.copy_records_to_table(
        "conversion",
        records=[
            (cid, learner, "/410711/410711100/", TARGET, 1, "applied", str(learner), now, "{}")
            for cid, learner in zip(conversions, ids, strict=True)
        ],
        columns=(
            "id",
            "learner_id",
            "learner_unit_path",
            "target_code",
            "units",
            "status",
            "applied_by",
            "applied_at",
            "debits",
        ),
    )
    await connection.close()
    engine = make_credits_engine(normalise_database_url(credits_url))
    await drain(make_sessionmaker(engine))
    await engine.dispose()
    return [str(c) for c in conversions]


async def timed(
    gateway: str, token: str, clients: int, requests: list[tuple[str, str, dict]]
) -> tuple[float, list[float], list[httpx.Response]]:
    queue: asyncio.Queue[tuple[str, str, dict]] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    latencies: list[float] = []
    answers: list[httpx.Response] = []

    async def client() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=gateway, timeout=60, headers=headers) as http:
            while not queue.empty():
                method, path, extra = queue.get_nowait()
                began = time.perf_counter()
                answer = await http.request(method, path, **extra)
                latencies.append(time.perf_counter() - began)
                answers.append(answer)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started, latencies, answers


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * q) - 1)] * 1000


async def run(stack: Stack, credits_url: str, learners: int, clients: int) -> None:
    conversions = await arrange(credits_url, learners)
    gateway = stack.config.url(stack.config.gateway_port)
    async with httpx.AsyncClient(base_url=gateway, timeout=60) as http:
        token = (
            await http.post(
                "/auth/token",
                data={
                    "grant_type": "password",
                    "username": DEMO_STAFF["username"],
                    "password": DEMO_STAFF["password"],
                },
            )
        ).json()["access_token"]
    baseline_time, baseline_latencies, _ = await timed(
        gateway, token, clients, [("GET", "/api/v1/conversion-targets", {})] * learners
    )
    approvals = [
        (
            "POST",
            f"/api/v1/conversions/{cid}/decision",
            {
                "json": {"decision": "approve", "reason": "bench"},
                "headers": {"Idempotency-Key": f"bench-{cid}"},
            },
        )
        for cid in conversions
    ]
    elapsed, latencies, answers = await timed(gateway, token, clients, approvals)
    ok = sum(a.status_code == 200 for a in answers)
    rate, base_rate = learners / elapsed, learners / baseline_time
    print(f"approvals: {learners} over distinct learners, {clients} concurrent clients")
    print(
        f"  {elapsed:6.1f} s  {rate:8,.0f} approvals/s  p50 {pct(latencies, 0.5):.0f} ms"
        f"  p99 {pct(latencies, 0.99):.0f} ms  ({ok} approved)"
    )
    print(
        f"baseline GET /api/v1/conversion-targets: {base_rate:8,.0f} requests/s"
        f"  p50 {statistics.median(baseline_latencies) * 1000:.0f} ms"
        f"  p99 {pct(baseline_latencies, 0.99):.0f} ms"
    )
    print(f"ratio of approvals/s to the baseline: {rate / base_rate:.2f}")
    connection = await asyncpg.connect(credits_url)
    posted = await connection.fetchval(
        "SELECT count(*) FROM ledger_transaction WHERE kind = 'conversion'"
    )
    left = await connection.fetchval(
        "SELECT sum(balance_hundredths) FROM ledger_account WHERE kind = 'learner'"
    )
    await connection.close()
    print(f"conversion transactions {posted} (expected {learners}); credits left {left}")
    engine = make_credits_engine(normalise_database_url(credits_url))
    async with make_sessionmaker(engine)() as session:
        report = await reconciliation.reconcile(session)
    await engine.dispose()
    print(f"reconciliation: {len(report.discrepancies)} discrepancies")


def main(learners: int, clients: int) -> None:
    # no background worker: the bench settles the learners' credits itself before approving
    with running_stack(extra_env={"CREDITS_ACCRUAL_INTERVAL_SECONDS": "0"}) as running:
        asyncio.run(run(running.stack, running.credits_url, learners, clients))


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    c = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    main(n, c)

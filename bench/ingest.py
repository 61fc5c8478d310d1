"""Partner ingestion through the gateway into PostgreSQL, against the raw insert ceiling.

Starts the three services (uvicorn, one process each) on fresh PostgreSQL databases, registers a
partner, an online course and 1,000 learners, then posts N records in batches of 1,000 through
the gateway with token checks, validation, dedupe and the overlap check on. In the same run it
inserts the same rows straight into an empty copy of learning_record (1,000-row batches, one
commit each) as the ceiling, and prints our rate as a ratio of it, p50/p99 per batch, each
process's peak memory, and whether the database holds exactly what was acknowledged.

Usage: uv run python -m bench.ingest [records] [concurrent clients]   (default 100000 4)
"""

from __future__ import annotations

import asyncio
import csv
import io
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from accounts.cli import DEMO_STAFF
from devstack.stack import Stack, StackConfig, prepare
from testkit.people import id_number
from testkit.postgres import free_port, postgres_server

BATCH = 1000
RAW_INSERT = (
    "INSERT INTO raw_copy (learner_id, activity_id, category_code, mode, host_unit_path, source,"
    " source_client, external_id, started_at, ended_at, minutes, evidence, status,"
    " status_changed_at, status_changed_by, created_at)"
    " VALUES ($1, $2::uuid, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::json, $13, $14, $15, $16)"
    " ON CONFLICT DO NOTHING"
)


def peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def records_for(batch: int, learners: list[str], course: str, base: datetime) -> list[dict]:
    # each learner gets one 30-minute stretch per batch, later batches later in time
    out = []
    for n in range(BATCH):
        learner = learners[n % len(learners)]
        start = base + timedelta(
            minutes=40 * (batch * (BATCH // len(learners)) + n // len(learners))
        )
        out.append(
            {
                "id": f"b{batch}-{n}",
                "learner": learner,
                "activity": course,
                "start": start.isoformat(),
                "end": (start + timedelta(minutes=30)).isoformat(),
                "minutes": 30,
            }
        )
    return out


def main(total: int, clients: int) -> None:
    with postgres_server() as server:
        data = Path(tempfile.mkdtemp(prefix="muye-bench-"))
        credits_url = server.create_database("bench_credits")
        config = StackConfig(
            data_dir=data,
            gateway_port=free_port(),
            accounts_port=free_port(),
            credits_port=free_port(),
            accounts_database_url=server.create_database("bench_accounts"),
            credits_database_url=credits_url,
            extra_env={
                "GATEWAY_RATE_LIMIT_PER_CLIENT": "1000000/minute",
                "GATEWAY_RATE_LIMIT_PER_IP": "1000000/minute",
                "ACCOUNTS_LOG_LEVEL": "WARNING",
                "CREDITS_LOG_LEVEL": "WARNING",
                "GATEWAY_LOG_LEVEL": "WARNING",
            },
        )
        prepare(config)
        stack = Stack(config)
        stack.start(log_dir=data)
        try:
            stack.wait_ready()
            asyncio.run(run(stack, credits_url, total, clients))
        finally:
            stack.stop()


async def run(stack: Stack, credits_url: str, total: int, clients: int) -> None:
    gateway = stack.config.url(stack.config.gateway_port)
    async with httpx.AsyncClient(base_url=gateway, timeout=120) as http:
        admin = (
            await http.post(
                "/auth/token",
                data={
                    "grant_type": "password",
                    **{"username": DEMO_STAFF["username"], "password": DEMO_STAFF["password"]},
                },
            )
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {admin}"}
        secret = (
            await http.post(
                "/api/v1/partner-clients",
                headers=auth,
                json={
                    "client_id": "bench-mooc",
                    "name": "bench",
                    "unit": "410711",
                    "scopes": ["records:write"],
                },
            )
        ).json()["client_secret"]
        course = (
            await http.post(
                "/api/v1/activities",
                headers=auth,
                json={
                    "title": "bench",
                    "kind": "online_course",
                    "category": "digital_skills",
                    "mode": "online",
                    "partner": "bench-mooc",
                },
            )
        ).json()["id"]
        village = (
            await http.get("/api/v1/units", params={"level": "learning_point", "limit": 1})
        ).json()["items"][0]["key"]
        sheet = io.StringIO()
        writer = csv.writer(sheet)
        writer.writerow(["姓名", "身份证号", "村(社区)编码", "同意版本", "同意时间"])
        for n in range(1000):
            writer.writerow([f"学员{n}", id_number(sequence=n % 1000), village, "v1", "2026-10-01"])
        imported = await http.post(
            "/api/v1/learning-accounts/imports",
            params={"dry_run": "false"},
            files={"file": ("l.csv", sheet.getvalue().encode())},
            headers=auth,
        )
        assert imported.json()["created"] == 1000, imported.text
        learners, cursor = [], None
        while True:
            page = (
                await http.get(
                    "/api/v1/learning-accounts",
                    headers=auth,
                    params={"limit": 100, **({"cursor": cursor} if cursor else {})},
                )
            ).json()
            learners += [a["account_number"] for a in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        token = (
            await http.post(
                "/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "bench-mooc",
                    "client_secret": secret,
                },
            )
        ).json()["access_token"]

    batches = total // BATCH
    base = datetime.now(UTC) - timedelta(days=3650)
    bodies = [records_for(b, learners, course, base) for b in range(batches)]
    latencies: list[float] = []
    acknowledged = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for b in range(batches):
        queue.put_nowait(b)

    async def worker() -> None:
        nonlocal acknowledged
        async with httpx.AsyncClient(
            base_url=gateway, timeout=120, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            while not queue.empty():
                b = queue.get_nowait()
                began = time.perf_counter()
                response = await client.post(
                    "/api/v1/learning-records:batch", json={"records": bodies[b]}
                )
                latencies.append(time.perf_counter() - began)
                body = response.json()
                assert response.status_code == 200, response.text
                acknowledged += body["created"]

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - started

    dsn = credits_url
    connection = await asyncpg.connect(dsn)
    stored = await connection.fetchval(
        "SELECT count(*) FROM learning_record WHERE source_client = 'bench-mooc'"
    )
    await connection.execute("CREATE TABLE raw_copy (LIKE learning_record INCLUDING ALL)")
    learner_ids = [
        r["learner_id"]
        for r in await connection.fetch(
            "SELECT DISTINCT learner_id FROM learning_record LIMIT 1000"
        )
    ]
    now = datetime.now(UTC)
    raw_started = time.perf_counter()
    for b in range(batches):
        rows = [
            (
                learner_ids[n % len(learner_ids)],
                course,
                "digital_skills",
                "online",
                "/410711/",
                "partner",
                "raw",
                f"b{b}-{n}",
                base,
                base + timedelta(minutes=30),
                30,
                "{}",
                "pending",
                now,
                "raw",
                now,
            )
            for n in range(BATCH)
        ]
        async with connection.transaction():
            await connection.executemany(
                RAW_INSERT,
                rows,
            )
    raw_elapsed = time.perf_counter() - raw_started
    await connection.close()

    ours, ceiling = acknowledged / elapsed, batches * BATCH / raw_elapsed
    ordered = sorted(latencies)
    print(
        f"records: {batches * BATCH} in {batches} batches of {BATCH}, {clients} concurrent clients"
    )
    print(f"through the gateway: {elapsed:8.1f} s  {ours:10,.0f} records/s")
    print(f"raw insert ceiling:  {raw_elapsed:8.1f} s  {ceiling:10,.0f} records/s", end="")
    print(" (executemany, commit per batch)")
    print(f"ratio to ceiling:    {ours / ceiling:8.2f}")
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000
    print(f"per batch: p50 {p50:.0f} ms, p99 {p99:.0f} ms")
    print(
        "peak memory (VmHWM): "
        + ", ".join(f"{n} {peak_kib(p.pid) / 1024:.0f} MiB" for n, p in stack.processes.items())
    )
    verdict = "equal" if acknowledged == stored else "DIFFERENT"
    print(f"acknowledged {acknowledged}, stored {stored}: {verdict}")


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    c = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    main(n, c)

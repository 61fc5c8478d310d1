"""The e-portfolio through the gateway on PostgreSQL, against a trivial route in the same run.

Starts the three services (uvicorn, one process each) on fresh PostgreSQL databases, as
bench/ingest.py does, and gives one resident ten years of history: N learning records (default
5,000) inserted straight into the credits database in bulk (a bench fixture), spread over
activities of every category and mode, with the check-ins and enrolments behind the offline and
blended ones. The ledger settles them through the service (POST /api/v1/ledger/settlements) as
they arrive, a couple of records at a time, as the outbox worker would; certifications (awards
among them) and conversions go through the API. That makes about 500 ledger transactions.

Then C concurrent clients (default 50) send R requests (default 2,000) of GET
/api/v1/unit-levels (a public route forwarded to accounts: the baseline), and the same of GET
/api/v1/me/portfolio through the gateway three times, the gateway started anew for each: with
the portfolio kept by the gateway (its default, gateway.portfoliocache), the same with the
generations in Redis when Redis answers on 127.0.0.1:6379 (as in production), and composed from
the services for every request (GATEWAY_PORTFOLIO_CACHE_SECONDS=0). The phases with the cache
send ten times R, so that they outlast a few of a kept answer's 5-second lives, and print what
the cache did (hits, misses, background refreshes; warm-up included). Prints requests/s,
p50/p95/p99, the data set, the answer's size, CPU seconds per process and the ratios to the
baseline. Asserts nothing about time. The load client speaks plain HTTP/1.1 with keep-alive on
uvloop, so that the figures are the servers' and not a client library's.

Usage: uv run python -m bench.portfolio [records] [clients] [requests]   (default 5000 50 2000)
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvloop

from accounts.cli import DEMO_STAFF
from bench.harness import running_stack
from devstack.stack import Stack
from testkit.http import bearer, new_partner, new_resident, password_token
from testkit.redis import REDIS_URL, redis_answers

YEARS = 10
PERIODS = 20  # half-year terms; each has one activity per mode
MODES = ("offline", "online", "blended")
CATEGORIES = (
    "civic_morals",
    "law",
    "vocational_skills",
    "rural_techniques",
    "employment",
    "life_skills",
    "health",
    "family_education",
    "elderly_education",
    "tai_chi",
    "calligraphy_painting",
    "safety_anti_fraud",
    "science_popularisation",
    "digital_skills",
)
# the default rules count learning from this day on (Beijing time)
RULES_FROM = datetime(2022, 11, 30, 16, tzinfo=UTC)
SETTLE_EVERY = 3  # records per settlement once the rules apply
PARTNER = "bench-portfolio-mooc"
PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
CERTIFICATIONS = [
    # (outcome type, level, title, category named by the reviewer where the standard has none)
    ("vocational_qualification", "5", "育婴员（五级）", None),
    ("vocational_qualification", "4", "中式烹调师（四级）", None),
    ("vocational_qualification", "4", "家政服务员（四级）", None),
    ("vocational_qualification", "3", "电工（三级）", None),
    ("mooc_certificate", "short", "防范电信网络诈骗", "safety_anti_fraud"),
    ("mooc_certificate", "standard", "老年人智能手机应用", "digital_skills"),
    ("mooc_certificate", "standard", "家庭教育指导", "family_education"),
    ("mooc_certificate", "long", "中医养生", "health"),
    ("mooc_certificate", "short", "民法典与生活", "law"),
    ("mooc_certificate", "standard", "书法入门", "calligraphy_painting"),
    ("mooc_certificate", "long", "农村电商实务", "employment"),
    ("mooc_certificate", "short", "垃圾分类", "civic_morals"),
    ("prior_learning", "minor", "社区合唱团十年", "life_skills"),
    ("award", "district", "牧野区百姓学习之星", "civic_morals"),
    ("award", "district", "牧野区优秀志愿者", "civic_morals"),
    ("award", "city", "新乡市终身学习先进个人", "civic_morals"),
    ("award", "district", "牧野区学习型家庭", "family_education"),
    ("award", "province", "河南省全民终身学习活动周优秀学员", "civic_morals"),
]
CONVERSIONS = [("ou_course_credit", 10), ("vocational_training_hours", 10)]
WEEK = timedelta(days=7)
CANCELLED = 3  # approved conversions then cancelled within their window (a reversal each)


@dataclass
class Plan:
    """One record to insert, and the session it is a check-in of (offline and blended)."""

    start: datetime
    minutes: int
    period: int
    mode: str
    session_id: uuid.UUID | None = None
    activity_id: uuid.UUID | None = None


@dataclass
class Figures:
    """Latencies and bytes of one load phase."""

    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    bytes: int = 0
    elapsed: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per service process


def _plan(total: int, now: datetime) -> list[Plan]:
    """``total`` records across ten years, one every 17 hours or so, at 9:00, 14:00 or 19:00."""
    first = (now - timedelta(days=365 * YEARS)).replace(hour=0, minute=0, second=0, microsecond=0)
    span = (now - timedelta(days=1) - first).total_seconds()
    plans = []
    for n in range(total):
        day = first + timedelta(seconds=span * n / total)
        start = day.replace(hour=(1, 6, 11)[n % 3], minute=0, second=0, microsecond=0)
        mode = MODES[(n + n // 3) % 3]
        minutes = {"offline": (90, 120), "online": (30, 45, 60), "blended": (60, 90)}[mode]
        period = min(PERIODS - 1, int(PERIODS * n / total))
        plans.append(Plan(start, minutes[n % len(minutes)], period, mode))
    return plans


def _activities(gateway: httpx.Client, admin: str, plans: list[Plan]) -> None:
    """One activity per term and mode, with a session for every offline or blended record."""
    for period in range(PERIODS):
        for m, mode in enumerate(MODES):
            mine = [p for p in plans if p.period == period and p.mode == mode]
            body: dict[str, Any] = {
                "title": f"第{period + 1}学期 {mode} 课程",
                "kind": "online_course" if mode == "online" else "course",
                "category": CATEGORIES[(period * len(MODES) + m) % len(CATEGORIES)],
                "mode": mode,
            }
            if mode == "online":
                body["partner"] = PARTNER
            else:
                body["host_unit"] = "410711100"
                body["sessions"] = [
                    {
                        "starts_at": p.start.isoformat(),
                        "ends_at": (p.start + timedelta(minutes=p.minutes)).isoformat(),
                        "place": "牧野区社区学院",
                    }
                    for p in mine
                ]
            created = gateway.post("/api/v1/activities", json=body, headers=bearer(admin))
            assert created.status_code == 201, created.text
            activity = created.json()
            sessions = {s["starts_at"]: s["id"] for s in activity["sessions"]}
            for p in mine:
                p.activity_id = uuid.UUID(activity["id"])
                if mode != "online":
                    p.session_id = uuid.UUID(sessions[_iso(p.start)])


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def _insert(
    connection: asyncpg.Connection,
    activities: dict[uuid.UUID, tuple[str, str, str]],
    learner: uuid.UUID,
    plans: list[Plan],
) -> None:
    """The records (with check-ins behind the offline and blended ones), in one transaction."""
    ids = [
        r[0]
        for r in await connection.fetch(
            "SELECT nextval(pg_get_serial_sequence('learning_record', 'id'))"
            " FROM generate_series(1, $1)",
            len(plans),
        )
    ]
    now = datetime.now(UTC)
    records, attendance = [], []
    for rid, p in zip(ids, plans, strict=True):
        assert p.activity_id is not None
        category, mode, path = activities[p.activity_id]
        end = p.start + timedelta(minutes=p.minutes)
        if p.session_id is None:
            source, client, external, status = "partner", PARTNER, f"bench-{rid}", "pending"
            evidence: dict[str, Any] = {"platform": PARTNER}
        else:
            attendance_id = uuid.uuid4()
            source, client, external, status = "check_in", None, None, "verified"
            evidence = {"attendance_id": str(attendance_id)}
            attendance.append(
                (attendance_id, p.session_id, learner, p.start - timedelta(minutes=5), end, rid)
            )
        records.append(
            (
                rid,
                learner,
                p.activity_id,
                p.session_id,
                category,
                mode,
                path,
                source,
                client,
                external,
                p.start,
                end,
                p.minutes,
                json.dumps(evidence),
                status,
                end,
                "bench",
                end if end < now else now,
            )
        )
    async with connection.transaction():
        await connection.copy_records_to_table(
            "learning_record",
            records=records,
            columns=[
                "id",
                "learner_id",
                "activity_id",
                "session_id",
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
            ],
        )
        await connection.copy_records_to_table(
            "attendance",
            records=attendance,
            columns=[
                "id",
                "session_id",
                "learner_id",
                "checked_in_at",
                "checked_out_at",
                "record_id",
            ],
        )


async def _enrol(dsn: str, learner: uuid.UUID, plans: list[Plan]) -> None:
    """An enrolment on every offline and blended activity, a week before its first session."""
    first: dict[uuid.UUID, datetime] = {}
    for p in plans:
        if p.session_id is not None and p.activity_id is not None:
            first.setdefault(p.activity_id, p.start)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.copy_records_to_table(
            "enrolment",
            records=[
                (uuid.uuid4(), a, learner, "enrolled", str(learner), t - WEEK, t - WEEK)
                for a, t in first.items()
            ],
            columns=[
                "id",
                "activity_id",
                "learner_id",
                "status",
                "enrolled_by",
                "created_at",
                "changed_at",
            ],
        )
    finally:
        await connection.close()


async def _arrive_and_settle(
    url: str, dsn: str, admin: str, learner: uuid.UUID, plans: list[Plan]
) -> int:
    """Insert the records in time order and settle as they arrive; return the transactions."""
    connection = await asyncpg.connect(dsn)
    activities = {
        r["id"]: (r["category_code"], r["mode"], r["host_unit_path"])
        for r in await connection.fetch(
            "SELECT id, category_code, mode, host_unit_path FROM activity"
        )
    }
    transactions = 0
    try:
        async with httpx.AsyncClient(base_url=url, timeout=120, headers=bearer(admin)) as http:

            async def settle() -> int:
                settled = await http.post("/api/v1/ledger/settlements")
                assert settled.status_code == 200, settled.text
                assert settled.json()["remaining_learners"] == 0, settled.text
                return int(settled.json()["transactions"])

            # before the rules apply: one settlement finds nothing to credit
            early = [p for p in plans if p.start < RULES_FROM]
            await _insert(connection, activities, learner, early)
            transactions += await settle()
            later = plans[len(early) :]
            for start in range(0, len(later), SETTLE_EVERY):
                await _insert(connection, activities, learner, later[start : start + SETTLE_EVERY])
                transactions += await settle()
    finally:
        await connection.close()
    return transactions


def _certify(gateway: httpx.Client, admin: str, resident: str) -> int:
    approved = 0
    for n, (outcome, level, title, category) in enumerate(CERTIFICATIONS):
        issued = date.today() - timedelta(
            days=int(365 * YEARS * (n + 1) / (len(CERTIFICATIONS) + 1))
        )
        submitted = gateway.post(
            "/api/v1/certifications",
            json={
                "outcome_type": outcome,
                "level": level,
                "title": title,
                "issuer": "新乡市牧野区社区学院",
                "issued_on": issued.isoformat(),
            },
            headers=bearer(resident),
        )
        assert submitted.status_code == 201, submitted.text
        cid = submitted.json()["id"]
        evidence = gateway.post(
            f"/api/v1/certifications/{cid}/evidence",
            files={"file": (f"{title}.pdf", PDF + title.encode(), "application/pdf")},
            headers=bearer(resident),
        )
        assert evidence.status_code == 201, evidence.text
        review: dict[str, Any] = {"decision": "approve", "reason": "材料属实"}
        if category:
            review["category"] = category
        decided = gateway.post(
            f"/api/v1/certifications/{cid}/review", json=review, headers=bearer(admin)
        )
        assert decided.status_code == 200, decided.text
        approved += 1
    return approved


def _convert(gateway: httpx.Client, admin: str, resident: str) -> tuple[int, int, int]:
    approved = refused = cancelled = 0
    for target, times in CONVERSIONS:
        for _ in range(times):
            applied = gateway.post(
                "/api/v1/conversions", json={"target": target, "units": 1}, headers=bearer(resident)
            )
            assert applied.status_code == 201, applied.text
            decided = gateway.post(
                f"/api/v1/conversions/{applied.json()['id']}/decision",
                json={"decision": "approve", "reason": "符合转换条件"},
                headers=bearer(admin) | {"Idempotency-Key": uuid.uuid4().hex},
            )
            if decided.status_code != 200:
                refused += 1  # short balance or the yearly limit: the application stays open
                continue
            approved += 1
            if cancelled < CANCELLED:
                undone = gateway.post(
                    f"/api/v1/conversions/{applied.json()['id']}/cancel",
                    json={"reason": "改报其他项目"},
                    headers=bearer(resident),
                )
                assert undone.status_code == 200, undone.text
                cancelled += 1
    return approved, refused, cancelled


async def _counts(dsn: str, learner: uuid.UUID) -> dict[str, int]:
    connection = await asyncpg.connect(dsn)
    try:
        out = {}
        for name, table in (
            ("learning records", "learning_record"),
            ("check-ins", "attendance"),
            ("enrolments", "enrolment"),
            ("ledger transactions", "ledger_transaction"),
            ("certifications", "certification"),
            ("conversions", "conversion"),
        ):
            out[name] = int(
                await connection.fetchval(
                    f"SELECT count(*) FROM {table} WHERE learner_id = $1", learner
                )
            )
        out["ledger postings"] = int(
            await connection.fetchval(
                "SELECT count(*) FROM credit_posting p JOIN ledger_transaction t"
                " ON t.id = p.transaction_id WHERE t.learner_id = $1",
                learner,
            )
        )
        return out
    finally:
        await connection.close()


class Connection:
    """One keep-alive HTTP/1.1 connection that sends one prepared GET at a time."""

    def __init__(self, host: str, port: int, request: bytes) -> None:
        self.host, self.port, self.request = host, port, request
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(self.request)
        status = int((await self.reader.readline()).split()[1])
        length, chunked, close = 0, False, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        if chunked:
            body = bytearray()
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readline()
                    break
                body += await self.reader.readexactly(size)
                await self.reader.readexactly(2)
            content = bytes(body)
        else:
            content = await self.reader.readexactly(length)
        if close:
            await self.close()
        return status, content

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def _load(url: str, path: str, token: str | None, clients: int, total: int) -> Figures:
    """``total`` GETs of ``path`` from ``clients`` connections at once, one request each."""
    host, port = url.removeprefix("http://").split(":")
    headers = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\n"
    if token:
        headers += f"Authorization: Bearer {token}\r\n"
    request = (headers + "\r\n").encode()
    figures = Figures()
    left = total

    async def worker() -> None:
        nonlocal left
        connection = Connection(host, int(port), request)
        try:
            while left > 0:
                left -= 1
                began = time.perf_counter()
                status, body = await connection.get()
                figures.latencies.append(time.perf_counter() - began)
                figures.bytes = len(body)
                if status != 200 or (
                    path.endswith("/portfolio") and b'"complete":true' not in body
                ):
                    figures.failures += 1
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    figures.elapsed = time.perf_counter() - started
    return figures


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _phase(stack: Stack, path: str, token: str | None, clients: int, total: int) -> Figures:
    url = stack.config.url(stack.config.gateway_port)
    uvloop.run(_load(url, path, token, clients, min(200, total)))  # warm up
    before = {name: _cpu_seconds(p.pid) for name, p in stack.processes.items()}
    figures = uvloop.run(_load(url, path, token, clients, total))
    figures.cpu = {n: _cpu_seconds(p.pid) - before[n] for n, p in stack.processes.items()}
    return figures


def _report(name: str, figures: Figures, total: int) -> tuple[float, float, float, float]:
    ordered = sorted(figures.latencies)
    p50 = statistics.median(ordered) * 1000
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000
    rate = total / figures.elapsed
    cpu = ", ".join(f"{n} {s:.1f} s" for n, s in figures.cpu.items())
    print(
        f"{name:<28} {rate:8,.0f} req/s  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  p99 {p99:6.1f} ms"
        f"  {figures.bytes:,} bytes, {figures.failures} failed  (CPU: {cpu})"
    )
    return rate, p50, p95, p99


def main(total: int, clients: int, requests: int) -> None:
    extra_env = {
        "GATEWAY_RATE_LIMIT_SIGN_IN": "1000/minute",
        "ACCOUNTS_ACCESS_TOKEN_MINUTES": "240",
        "CREDITS_ACCRUAL_INTERVAL_SECONDS": "0",  # this bench settles, as the worker would
    }
    with running_stack(extra_env=extra_env) as running:
        run(running.stack, running.credits_url, total, clients, requests)


def run(stack: Stack, credits_url: str, total: int, clients: int, requests: int) -> None:
    url = stack.config.url(stack.config.gateway_port)
    began = time.perf_counter()
    with httpx.Client(base_url=url, timeout=120) as gateway:
        admin = password_token(gateway, DEMO_STAFF["username"], DEMO_STAFF["password"])
        new_partner(gateway, admin, PARTNER)
        account = new_resident(gateway, admin, town="410711100", password="bench-resident-pass")
        learner = uuid.UUID(str(account["id"]))
        resident = password_token(gateway, str(account["account_number"]), "bench-resident-pass")
        plans = _plan(total, datetime.now(UTC))
        _activities(gateway, admin, plans)
        asyncio.run(_enrol(credits_url, learner, plans))
        transactions = asyncio.run(_arrive_and_settle(url, credits_url, admin, learner, plans))
        certified = _certify(gateway, admin, resident)
        approved, refused, cancelled = _convert(gateway, admin, resident)
        sample = gateway.get("/api/v1/me/portfolio", headers=bearer(resident))
        assert sample.status_code == 200 and sample.json()["complete"], sample.text
    counts = asyncio.run(_counts(credits_url, learner))
    setup = time.perf_counter() - began

    print(f"learner with {YEARS} years of history (set up in {setup:.0f} s):")
    for name, n in counts.items():
        print(f"  {name:<20} {n:6,}")
    print(
        f"  ({transactions} settlement transactions, {certified} certifications approved,"
        f" {approved} conversions approved, {cancelled} cancelled, {refused} refused)"
    )
    body = sample.json()
    sizes = ", ".join(
        f"{name} {len(json.dumps(part, ensure_ascii=False).encode()):,}"
        for name, part in body.items()
        if name not in ("complete", "missing")
    )
    print(f"portfolio: {len(sample.content):,} bytes ({sizes})")
    print(
        f"load: {clients} concurrent clients, {requests} requests each phase, through the gateway"
        f" (load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    base = _phase(stack, "/api/v1/unit-levels", None, clients, requests)
    b_rate, b50, b95, b99 = _report("GET /api/v1/unit-levels", base, requests)
    # kept answers live 5 s: ten times the requests make those phases outlast a few lifetimes
    phases = [("kept (in process)", {}, requests * 10)]
    if redis_answers():
        redis = {"GATEWAY_REDIS_URL": REDIS_URL}
        phases.append(("kept (Redis)", redis, requests * 10))
    phases.append(("composed every time", {"GATEWAY_PORTFOLIO_CACHE_SECONDS": "0"}, requests))
    for name, gateway_env, total_requests in phases:
        _restart_gateway(stack, gateway_env)
        before = _cache_counts(url)
        ours = _phase(stack, "/api/v1/me/portfolio", resident, clients, total_requests)
        o_rate, o50, o95, o99 = _report(f"portfolio, {name}", ours, total_requests)
        after = _cache_counts(url)
        counts = ", ".join(f"{k} {after[k] - before.get(k, 0):,.0f}" for k in sorted(after))
        print(
            f"{'':<28} ratio to baseline: throughput {o_rate / b_rate:.2f}, p50 {o50 / b50:.1f}x,"
            f" p95 {o95 / b95:.1f}x, p99 {o99 / b99:.1f}x; cache: {counts or 'off'}"
        )


def _restart_gateway(stack: Stack, env: dict[str, str]) -> None:
    """The gateway alone started again with ``env`` over the bench's settings."""
    for name in ("GATEWAY_REDIS_URL", "GATEWAY_PORTFOLIO_CACHE_SECONDS"):
        stack.config.extra_env.pop(name, None)
    stack.config.extra_env.update(env)
    stack.stop(only=("gateway",))
    stack.start(only=("gateway",), log_dir=stack.config.data_dir)
    stack.wait_ready()


def _cache_counts(url: str) -> dict[str, float]:
    """The gateway's portfolio cache counters (gateway_portfolio_cache_total) by outcome."""
    counts = {}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("gateway_portfolio_cache_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            counts[outcome] = float(line.rsplit(" ", 1)[1])
    return counts


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    c = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    r = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    main(n, c, r)

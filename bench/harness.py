"""What the ingestion benchmarks share: the three services on fresh PostgreSQL databases, a
partner with an online course and learners, record bodies, and CPU and memory accounting per
process (the services, their PostgreSQL backends and the load client, all on the same cores).
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import resource
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx

from accounts.cli import DEMO_STAFF
from devstack.stack import Stack, StackConfig, prepare
from testkit.people import id_number
from testkit.postgres import free_port, postgres_server

SERVICES = ("gateway", "credits", "accounts")
TICKS = os.sysconf("SC_CLK_TCK")
STRETCH = timedelta(minutes=30)
SLOT = timedelta(minutes=40)  # one learner's stretches are this far apart: never overlapping


@dataclass
class Running:
    """The started stack and the PostgreSQL URLs of its databases."""

    stack: Stack
    gateway: str
    credits_url: str
    accounts_url: str


@contextmanager
def running_stack(
    workers: dict[str, int] | None = None, extra_env: dict[str, str] | None = None
) -> Iterator[Running]:
    """Fresh databases, migrated and seeded, and the services started with ``workers``
    (one process each by default); ``extra_env`` adds to or overrides the settings."""
    with postgres_server() as server:
        data = Path(tempfile.mkdtemp(prefix="muye-bench-"))
        credits_url = server.create_database("bench_credits")
        accounts_url = server.create_database("bench_accounts")
        config = StackConfig(
            data_dir=data,
            gateway_port=free_port(),
            accounts_port=free_port(),
            credits_port=free_port(),
            accounts_database_url=accounts_url,
            credits_database_url=credits_url,
            extra_env={
                "GATEWAY_RATE_LIMIT_PER_CLIENT": "100000000/minute",
                "GATEWAY_RATE_LIMIT_PER_IP": "100000000/minute",
                "GATEWAY_RATE_LIMIT_SIGN_IN": "100000000/minute",
                "ACCOUNTS_LOG_LEVEL": "WARNING",
                "CREDITS_LOG_LEVEL": "WARNING",
                "GATEWAY_LOG_LEVEL": "WARNING",
                **(extra_env or {}),
            },
            workers=workers or {},
        )
        prepare(config)
        stack = Stack(config)
        stack.start(log_dir=data)
        try:
            stack.wait_ready()
            yield Running(stack, config.url(config.gateway_port), credits_url, accounts_url)
        finally:
            stack.stop()


@dataclass
class Partner:
    """A partner platform's token, its online course and the learners it posts for."""

    token: str
    course: str
    learners: list[str]


async def enrol_partner(gateway: str, learners: int = 1000) -> Partner:
    """Register a partner, an online course of its and ``learners`` learning accounts."""
    async with httpx.AsyncClient(base_url=gateway, timeout=120) as http:
        signed_in = await http.post(
            "/auth/token",
            data={
                "grant_type": "password",
                "username": DEMO_STAFF["username"],
                "password": DEMO_STAFF["password"],
            },
        )
        auth = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
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
        for n in range(learners):
            writer.writerow([f"学员{n}", id_number(sequence=n), village, "v1", "2026-10-01"])
        imported = await http.post(
            "/api/v1/learning-accounts/imports",
            params={"dry_run": "false"},
            files={"file": ("l.csv", sheet.getvalue().encode())},
            headers=auth,
        )
        assert imported.json()["created"] == learners, imported.text
        numbers: list[str] = []
        cursor = None
        while True:
            page = (
                await http.get(
                    "/api/v1/learning-accounts",
                    headers=auth,
                    params={"limit": 100, **({"cursor": cursor} if cursor else {})},
                )
            ).json()
            numbers += [a["account_number"] for a in page["items"]]
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
    return Partner(token=token, course=course, learners=numbers)


class LoadConnection:
    """One keep-alive HTTP/1.1 connection that sends one request at a time: the load client.

    httpx costs the load generator milliseconds of CPU per request on these cores (its pool
    looks over every connection per request); this writes the request bytes and reads the
    answer (Content-Length or chunked), nothing more.
    """

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """Send one request; return the status and the body."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.headers}"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if "content-length" in fields:
            return status, await self.reader.readexactly(int(fields["content-length"]))
        chunks = []
        while size := int((await self.reader.readline()).strip(), 16):
            chunks.append((await self.reader.readexactly(size + 2))[:-2])
        await self.reader.readline()  # the blank line after the last chunk
        return status, b"".join(chunks)

    async def close(self) -> None:
        """Close the connection."""
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


def record_slot(n: int, learners: int, base: datetime) -> tuple[int, datetime]:
    """Record number ``n`` goes to learner ``n % learners`` in that learner's slot
    ``n // learners``: each learner's stretches follow one another, 40 minutes apart."""
    return n % learners, base + SLOT * (n // learners)


def batch_body(partner: Partner, first: int, size: int, base: datetime) -> bytes:
    """The JSON body of records ``first`` to ``first + size - 1``, written directly (a partner
    serialises on its own machine; the load client should not spend the cores on it)."""
    items = []
    for n in range(first, first + size):
        learner, start = record_slot(n, len(partner.learners), base)
        items.append(
            f'{{"id":"r{n}","learner":"{partner.learners[learner]}",'
            f'"activity":"{partner.course}","start":"{start.isoformat()}",'
            f'"end":"{(start + STRETCH).isoformat()}","minutes":30}}'
        )
    return ('{"records":[' + ",".join(items) + "]}").encode()


def raw_row(partner_learners: list[object], course: str, n: int, base: datetime) -> tuple:
    """Record ``n`` as a ``learning_record`` row for the raw baselines (same learner, times)."""
    learner, start = record_slot(n, len(partner_learners), base)
    return (partner_learners[learner], course, f"r{n}", start, start + STRETCH)


def percentile(ordered: list[float], share: float) -> float:
    """The ``share`` percentile of sorted values (nearest rank)."""
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def latency_line(latencies: list[float]) -> str:
    """p50, p99 and max in milliseconds."""
    ordered = sorted(latencies)
    return (
        f"p50 {statistics.median(ordered) * 1000:.0f} ms, "
        f"p99 {percentile(ordered, 0.99) * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"
    )


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found + [g for c in found for g in _children(c)]


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _peak_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Meter:
    """CPU seconds each part spent between :meth:`start` and :meth:`stop`: the services (their
    worker processes included), the PostgreSQL backends serving the two databases (when the
    server runs on this machine) and this load client."""

    def __init__(self, running: Running) -> None:
        self.running = running
        self.spent: dict[str, float] = {}

    def _pids(self) -> dict[str, list[int]]:
        return {
            name: [p.pid, *_children(p.pid)]
            for name, p in self.running.stack.processes.items()
            if name in SERVICES
        }

    async def _backends(self) -> list[int]:
        connection = await asyncpg.connect(self.running.credits_url)
        try:
            rows = await connection.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = ANY($1::text[])"
                " AND pid <> pg_backend_pid()",
                [
                    u.rsplit("/", 1)[1]
                    for u in (self.running.credits_url, self.running.accounts_url)
                ],
            )
        finally:
            await connection.close()
        return [r["pid"] for r in rows]

    async def _sample(self) -> dict[str, dict[int, float]]:
        sample = {n: {p: _cpu(p) for p in pids} for n, pids in self._pids().items()}
        sample["postgres"] = {p: _cpu(p) for p in await self._backends()}
        usage = resource.getrusage(resource.RUSAGE_SELF)
        sample["client"] = {0: usage.ru_utime + usage.ru_stime}
        return sample

    async def start(self) -> None:
        """Take the first sample."""
        self._first = await self._sample()

    async def stop(self) -> None:
        """Take the last sample; ``spent`` holds the differences."""
        last = await self._sample()
        self.spent = {
            name: sum(t - self._first.get(name, {}).get(p, 0.0) for p, t in times.items())
            for name, times in last.items()
        }

    def line(self, per: float, unit: str) -> str:
        """CPU milliseconds per ``unit`` (``per`` of them were done) by part."""
        total = sum(self.spent.values())
        parts = ", ".join(f"{n} {s / per * 1000:.1f}" for n, s in self.spent.items())
        return f"CPU ms per {unit}: {parts}; all {total / per * 1000:.1f}"

    def memory_line(self) -> str:
        """Peak resident memory of each service, its worker processes summed."""
        return "peak memory (VmHWM): " + ", ".join(
            f"{n} {sum(_peak_kib(p) for p in pids) / 1024:.0f} MiB"
            for n, pids in self._pids().items()
        )

"""Reports that took long to compute, kept for a short while (see ``statistics.models``).

:class:`KeptReports` lives on the app (``app.state.kept_reports``). A report's figures are
read as before; when reading them took at least ``keep_after`` seconds they are kept, and the
same report (kind, unit path, period) asked within ``keep_for`` seconds is answered from
them, with the time they were read. ``fresh`` reads them again whatever is kept. Requests for
the same report wait for one another (one reads, the others get its figures), so ten staff
opening the district's report at once cost one reading, not ten: within a process on an
asyncio lock, and on PostgreSQL across processes too, on a transaction-level advisory lock
(``REPORT_LOCK_CLASS``, the report's key hashed) that the reading's commit lets go.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import delete, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from credits.statistics.models import KeptReport
from kernel.clock import aware_utc

# kept figures of other periods (yesterday's "this year to date") go after a day
FORGET_AFTER = timedelta(days=1)
# advisory lock keys (REPORT_LOCK_CLASS, hashtext(report key)): one reading of a report at a
# time across credits processes; 7411 is the ingestion's learner buckets (migration
# 2026_11_25_learner_lock_buckets). Two reports whose keys hash alike merely take turns.
REPORT_LOCK_CLASS = 7412
_REPORT_LOCK = text("SELECT pg_advisory_xact_lock(:lock_class, hashtext(:report))")


class Reading(NamedTuple):
    """Figures (as JSON-ready data), when they were read, and whether they were kept ones."""

    figures: dict[str, Any]
    as_of: datetime
    kept: bool


class Fresh(NamedTuple):
    """Figures just read (JSON-ready), and whether they may be kept (not when one of them
    is missing: the next request should try again)."""

    figures: dict[str, Any]
    keepable: bool


class KeptReports:
    """The kept reports of one credits process."""

    def __init__(self, *, keep_after: float, keep_for: float) -> None:
        self.keep_after = keep_after
        self.keep_for = keep_for
        self._locks: weakref.WeakValueDictionary[tuple[str, str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    @asynccontextmanager
    async def _one_at_a_time(
        self, session: AsyncSession, key: tuple[str, str, str]
    ) -> AsyncIterator[None]:
        """Hold the report's lock: this process's first (so a process waits on the database
        with one connection, not one per request), then on PostgreSQL the database's, held
        by ``session``'s transaction until the reading is kept and committed (or, when it is
        not kept, until the request's own commit)."""
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            if session.get_bind().dialect.name == "postgresql":
                await session.execute(
                    _REPORT_LOCK, {"lock_class": REPORT_LOCK_CLASS, "report": "|".join(key)}
                )
            yield

    async def read(
        self,
        session: AsyncSession,
        kind: str,
        unit_path: str,
        period: str,
        compute: Callable[[], Awaitable[Fresh]],
        *,
        fresh: bool = False,
    ) -> Reading:
        """The report's figures: kept ones young enough, else ``compute()``'s (kept when
        they took ``keep_after`` seconds or more and ``compute`` says they may be)."""
        if self.keep_for <= 0:
            began = datetime.now(UTC)
            return Reading((await compute()).figures, began, kept=False)
        if not fresh:
            # kept figures are given without waiting on any lock (the database's would be held
            # to this request's commit, making every reader of a kept report take turns)
            row = await self._find(session, kind, unit_path, period)
            if row is not None:
                return Reading(row.figures, aware_utc(row.as_of), kept=True)
        async with self._one_at_a_time(session, (kind, unit_path, period)):
            if not fresh:
                # kept meanwhile by the request this one waited for
                row = await self._find(session, kind, unit_path, period)
                if row is not None:
                    return Reading(row.figures, aware_utc(row.as_of), kept=True)
            began = datetime.now(UTC)
            started = time.perf_counter()
            found = await compute()
            seconds = time.perf_counter() - started
            if found.keepable and seconds >= self.keep_after:
                await self._keep(session, kind, unit_path, period, found.figures, began, seconds)
            return Reading(found.figures, began, kept=False)

    async def _find(
        self, session: AsyncSession, kind: str, unit_path: str, period: str
    ) -> KeptReport | None:
        row = (
            await session.execute(
                select(KeptReport)
                .where(
                    col(KeptReport.kind) == kind,
                    col(KeptReport.unit_path) == unit_path,
                    col(KeptReport.period) == period,
                )
                # a row this session saw before (too old then) is read again as it is now
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        age = timedelta(seconds=self.keep_for)
        if row is None or datetime.now(UTC) - aware_utc(row.as_of) >= age:
            return None
        return row

    async def _keep(
        self,
        session: AsyncSession,
        kind: str,
        unit_path: str,
        period: str,
        figures: dict[str, Any],
        as_of: datetime,
        seconds: float,
    ) -> None:
        """Upsert the figures (two processes may have read the same report at once: the
        later reading wins), forget this unit's figures of a day ago or more, and commit, so
        that a request waiting for this reading finds it when the lock is let go (a read
        request has written nothing else by now; its audit entry is committed after)."""
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        values = {"as_of": as_of, "seconds": round(seconds, 3), "figures": figures}
        await session.execute(
            insert(KeptReport)
            .values(kind=kind, unit_path=unit_path, period=period, **values)
            .on_conflict_do_update(index_elements=["kind", "unit_path", "period"], set_=values)
        )
        await session.execute(
            delete(KeptReport).where(
                col(KeptReport.kind) == kind,
                col(KeptReport.unit_path) == unit_path,
                col(KeptReport.as_of) < datetime.now(UTC) - FORGET_AFTER,
            )
        )
        await session.commit()

"""The ledger's outbox worker: settles learners whose records changed, in the background."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from credits.audit import service as audit
from credits.ledger import settlement

log = logging.getLogger("credits.ledger.worker")


async def drain(maker: async_sessionmaker[AsyncSession], *, learners_per_batch: int = 500) -> int:
    """Settle batches until no unsettled record is left; return the records settled.

    Each batch is its own transaction. Learners another worker holds are skipped (PostgreSQL
    SKIP LOCKED) and settled by whoever holds them, so several workers share the load.
    """
    settled = 0
    while True:
        async with maker() as session, session.begin():
            outcome = await settlement.accrue_pending(
                session, learners_per_batch=learners_per_batch
            )
            if outcome.learners:  # one entry a batch, not one a learner
                audit.record(
                    session,
                    actor="worker:settlement",
                    action="ledger.settlement",
                    target_type="ledger",
                    target_id="*",
                    after={"learners": len(outcome.learners), "records": outcome.records},
                )
        settled += outcome.records
        if not outcome.learners:
            return settled


def accrual_worker(
    maker: async_sessionmaker[AsyncSession], interval_seconds: float
) -> asyncio.Task[None] | None:
    """Start the background loop (None when the interval is 0)."""
    if interval_seconds <= 0:
        return None

    async def loop() -> None:
        while True:
            try:
                settled = await drain(maker)
                if settled:
                    log.info("settled records", extra={"records": settled})
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed batch is retried next round; the outbox keeps it
                log.exception("settlement failed; retrying")
            await asyncio.sleep(interval_seconds)

    return asyncio.create_task(loop(), name="credits-accrual")

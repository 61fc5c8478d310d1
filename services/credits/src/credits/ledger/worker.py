"""The ledger's outbox worker: settles learners whose records changed, in the background."""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from credits.audit import service as audit
from credits.ledger import settlement

log = logging.getLogger("credits.ledger.worker")

PACE = 3.0  # a pass of N seconds is followed by a pause of at least 3N (see pause_after)
# learners per transaction in the background: each batch's rule engine runs on the event loop
# between two awaits, so smaller batches keep requests from waiting behind a long one
LEARNERS_PER_BATCH = 100


async def drain(
    maker: async_sessionmaker[AsyncSession],
    *,
    learners_per_batch: int = 500,
    one_pass: bool = False,
) -> int:
    """Settle batches until no unsettled record is left; return the records settled.

    Each batch is its own transaction. Learners another worker holds are skipped (PostgreSQL
    SKIP LOCKED) and settled by whoever holds them, so several workers share the load.

    With ``one_pass`` only what was queued when the drain began is settled: a learner whose
    records keep arriving (a partner posting batch after batch) is settled once a pass, not
    again after every batch. Settling reads the learner's year to apply its caps, so settling
    after every batch cost more the longer the learner's history; what arrives meanwhile waits
    for the next pass, an interval later.
    """
    settled = 0
    up_to_seq = None
    if one_pass:
        async with maker() as session:
            up_to_seq = await settlement.last_queued_seq(session)
    while True:
        async with maker() as session, session.begin():
            outcome = await settlement.accrue_pending(
                session, learners_per_batch=learners_per_batch, up_to_seq=up_to_seq
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


def pause_after(pass_seconds: float, interval_seconds: float) -> float:
    """How long the worker waits after a pass: the interval, or PACE times the pass's length
    when that is longer, so settling takes at most 1 / (PACE + 1) of the process's time.

    A pass reads every record of the learners it settles (their caps are yearly), so under a
    partner's flood each pass reads more than the last. Settling at a fixed interval then
    crowded out the very requests bringing the records in (1,000,000 records at 9,120/s);
    spacing the passes by their own length bounds that share, at the cost of credits showing
    later while the flood lasts (the portfolio says ``settlement_pending`` meanwhile).
    """
    return max(interval_seconds, pass_seconds * PACE)


def accrual_worker(
    maker: async_sessionmaker[AsyncSession], interval_seconds: float
) -> asyncio.Task[None] | None:
    """Start the background loop (None when the interval is 0)."""
    if interval_seconds <= 0:
        return None

    async def loop() -> None:
        while True:
            began = time.monotonic()
            try:
                settled = await drain(maker, one_pass=True, learners_per_batch=LEARNERS_PER_BATCH)
                if settled:
                    log.info("settled records", extra={"records": settled})
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed batch is retried next round; the outbox keeps it
                log.exception("settlement failed; retrying")
            await asyncio.sleep(pause_after(time.monotonic() - began, interval_seconds))

    return asyncio.create_task(loop(), name="credits-accrual")

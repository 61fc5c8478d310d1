"""What a learner may hold per category: earned, less converted, less expired.

A learner account's balance is what settlement, certification, conversions and expiry posted
to it. When a record is voided after its credits were spent, settlement takes back what the
account still holds and the college writes the rest off (``writeoff``): the balance is then
above ``earned - converted - expired`` by what was written off, for as long as the spending
stands. Undoing the spending (cancelling the conversion) must not hand back credits that
no longer exist: it gives back at most what brings the balance to what the learner may hold,
and the rest reverses the write-off (:func:`credits.conversion.service.cancel`).

Converted is read from the conversions themselves (the debits of those approved and not
cancelled), not from the postings: a cancellation that reversed a write-off gave back less to
the account than the conversion took, yet the conversion no longer spends anything.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import func
from sqlalchemy import select as sql_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from credits.conversion.models import Conversion
from credits.ledger.models import CreditPosting, CreditSource, LedgerAccount, LedgerTransaction
from credits.ledger.service import SIGNED_AMOUNT, one_of

Holding = dict[tuple[uuid.UUID, str], int]


async def converted(
    session: AsyncSession, learners: Sequence[uuid.UUID], *, leaving_out: uuid.UUID | None = None
) -> Holding:
    """Per (learner, category), the debits of the learners' approved conversions (those
    cancelled spend nothing), without the conversion ``leaving_out``."""
    if not learners:
        return {}
    rows = await session.execute(
        sql_select(col(Conversion.id), col(Conversion.learner_id), col(Conversion.debits)).where(
            col(Conversion.status) == "approved",
            one_of(session, col(Conversion.learner_id), list(learners)),
        )
    )
    spent: Holding = defaultdict(int)
    for conversion_id, learner, debits in rows.all():
        if conversion_id == leaving_out:
            continue
        for category, amount in (debits or {}).items():
            spent[(learner, str(category))] += int(amount)
    return dict(spent)


async def expired(session: AsyncSession, learners: Sequence[uuid.UUID]) -> Holding:
    """Per (learner, category), what expiry runs took from the learners' accounts."""
    if not learners:
        return {}
    rows = await session.execute(
        sql_select(
            col(LedgerAccount.learner_id), col(LedgerAccount.category_code), func.sum(SIGNED_AMOUNT)
        )
        .select_from(CreditPosting)
        .join(LedgerTransaction, col(LedgerTransaction.id) == col(CreditPosting.transaction_id))
        .join(LedgerAccount, col(LedgerAccount.id) == col(CreditPosting.account_id))
        .where(
            col(LedgerTransaction.kind) == "expiry",
            col(LedgerAccount.kind) == "learner",
            one_of(session, col(LedgerAccount.learner_id), list(learners)),
        )
        .group_by(col(LedgerAccount.learner_id), col(LedgerAccount.category_code))
    )
    return {(learner, str(category)): -int(signed) for learner, category, signed in rows.all()}


async def may_hold(
    session: AsyncSession, learner: uuid.UUID, *, leaving_out: uuid.UUID | None = None
) -> dict[str, int]:
    """Per category, what the learner may hold: the provenance lines' sum (earned, net of
    corrections), less the conversions that stand (without ``leaving_out``), less what
    expired. May be negative (spent credits since taken back and written off)."""
    earned = await session.execute(
        sql_select(col(CreditSource.category_code), func.sum(col(CreditSource.amount_hundredths)))
        .where(col(CreditSource.learner_id) == learner)
        .group_by(col(CreditSource.category_code))
    )
    held: dict[str, int] = defaultdict(int)
    for category, amount in earned.all():
        held[str(category)] += int(amount)
    for taken in (
        await expired(session, [learner]),
        await converted(session, [learner], leaving_out=leaving_out),
    ):
        for (_, category), amount in taken.items():
            held[category] -= amount
    return dict(held)

"""Reconciliation (对账) for auditors: recompute every balance and list each difference.

Eight checks, each computed in the database or by the same pure engine the ledger uses:

- ``unbalanced``: a transaction whose debits and credits differ;
- ``balance``: a learner account whose kept balance is not the sum of its postings;
- ``provenance``: a settlement or certification whose provenance lines do not add up to what the
  issuing account paid out;
- ``certification`` and ``conversion``: an approved certification not credited exactly as its
  standard says, or a conversion whose net debit is not what its status says;
- ``entitlement``: an entitlement (a record's hours, a completion award) whose granted amount
  is not what the records and the published rule versions say today;
- ``expiry_reversal``: reversals of an expiry run that gave a learner account back more than
  the run took from it (a reversal citing a transaction that expired nothing of the account
  gave back more than nothing);
- ``points``: a volunteer's points of a unit and year whose granted amount is not what their
  service, the unit's assessment total and the published volunteer scale say today.

On a healthy ledger the list is empty. Given learners (the credit audit's unit), every check
looks at their transactions, accounts, certifications and conversions only.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import ColumnElement, case, func, true, union
from sqlalchemy import select as sql_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from credits.certification.models import Certification
from credits.conversion.models import Conversion
from credits.incentives import service as incentives
from credits.ledger import settlement
from credits.ledger.models import (
    CreditPosting,
    CreditSource,
    LedgerAccount,
    LedgerOutbox,
    LedgerTransaction,
)
from credits.ledger.schemas import Discrepancy, ReconciliationReport
from credits.ledger.service import SIGNED_AMOUNT, one_of
from credits.records.models import LearningRecord

CHUNK = 500
Learners = Sequence[uuid.UUID] | None


def _of(session: AsyncSession, column: object, learners: Learners) -> ColumnElement[bool]:
    """``column`` names one of ``learners`` (always true when None: everyone)."""
    return true() if learners is None else one_of(session, column, list(learners))


async def _unbalanced(session: AsyncSession, learners: Learners) -> list[Discrepancy]:
    rows = await session.execute(
        sql_select(col(CreditPosting.transaction_id), func.sum(SIGNED_AMOUNT))
        .join(LedgerTransaction, col(LedgerTransaction.id) == col(CreditPosting.transaction_id))
        .where(_of(session, col(LedgerTransaction.learner_id), learners))
        .group_by(col(CreditPosting.transaction_id))
        .having(func.sum(SIGNED_AMOUNT) != 0)
    )
    return [
        Discrepancy(
            check="unbalanced",
            subject=f"transaction:{tid}",
            expected=0,
            actual=int(total),
            detail="credits minus debits of the transaction's postings",
        )
        for tid, total in rows.all()
    ]


async def _balances(session: AsyncSession, learners: Learners) -> list[Discrepancy]:
    summed = (
        sql_select(
            col(CreditPosting.account_id).label("account_id"),
            func.sum(SIGNED_AMOUNT).label("total"),
        )
        .group_by(col(CreditPosting.account_id))
        .subquery()
    )
    query = (
        sql_select(
            col(LedgerAccount.id),
            col(LedgerAccount.learner_id),
            col(LedgerAccount.category_code),
            col(LedgerAccount.balance_hundredths),
            func.coalesce(summed.c.total, 0),
        )
        .outerjoin(summed, summed.c.account_id == col(LedgerAccount.id))
        .where(
            col(LedgerAccount.kind).in_(("learner", "points")),
            col(LedgerAccount.balance_hundredths) != func.coalesce(summed.c.total, 0),
        )
    )
    rows = await session.execute(query.where(_of(session, col(LedgerAccount.learner_id), learners)))
    return [
        Discrepancy(
            check="balance",
            subject=f"account:{aid} learner:{learner} category:{category}",
            expected=int(total),
            actual=int(kept),
            detail="the kept balance against the sum of the account's postings",
        )
        for aid, learner, category, kept, total in rows.all()
    ]


async def _provenance(session: AsyncSession, learners: Learners) -> list[Discrepancy]:
    issuing_out = (
        sql_select(
            col(CreditPosting.transaction_id).label("tid"),
            (-func.sum(SIGNED_AMOUNT)).label("paid"),
        )
        .join(LedgerAccount, col(LedgerAccount.id) == col(CreditPosting.account_id))
        # credits come from the issuing account, volunteer points from their own issuer
        .where(col(LedgerAccount.kind).in_(("issuing", "points_issuing")))
        .group_by(col(CreditPosting.transaction_id))
        .subquery()
    )
    sourced = (
        sql_select(
            col(CreditSource.transaction_id).label("tid"),
            func.sum(col(CreditSource.amount_hundredths)).label("granted"),
        )
        .group_by(col(CreditSource.transaction_id))
        .subquery()
    )
    kinds = (*settlement.SETTLEMENT_KINDS, "certification", "points")
    rows = await session.execute(
        sql_select(
            col(LedgerTransaction.id),
            func.coalesce(sourced.c.granted, 0),
            func.coalesce(issuing_out.c.paid, 0),
        )
        .outerjoin(sourced, sourced.c.tid == col(LedgerTransaction.id))
        .outerjoin(issuing_out, issuing_out.c.tid == col(LedgerTransaction.id))
        .where(
            col(LedgerTransaction.kind).in_(kinds),
            _of(session, col(LedgerTransaction.learner_id), learners),
            func.coalesce(sourced.c.granted, 0) != func.coalesce(issuing_out.c.paid, 0),
        )
    )
    return [
        Discrepancy(
            check="provenance",
            subject=f"transaction:{tid}",
            expected=int(granted),
            actual=int(paid),
            detail="provenance lines against what the issuing account paid out",
        )
        for tid, granted, paid in rows.all()
    ]


async def _certifications(session: AsyncSession, learners: Learners) -> list[Discrepancy]:
    """Approved certifications against the credits their provenance lines grant."""
    granted = (
        sql_select(
            col(CreditSource.certification_id).label("cid"),
            func.sum(col(CreditSource.amount_hundredths)).label("granted"),
        )
        .where(col(CreditSource.certification_id).is_not(None))
        .group_by(col(CreditSource.certification_id))
        .subquery()
    )
    expected = case(
        (col(Certification.status) == "approved", col(Certification.hundredths)), else_=0
    )
    rows = await session.execute(
        sql_select(col(Certification.id), expected, func.coalesce(granted.c.granted, 0))
        .outerjoin(granted, granted.c.cid == col(Certification.id))
        .where(
            _of(session, col(Certification.learner_id), learners),
            func.coalesce(expected, 0) != func.coalesce(granted.c.granted, 0),
        )
    )
    return [
        Discrepancy(
            check="certification",
            subject=f"certification:{cid}",
            expected=int(want or 0),
            actual=int(got),
            detail="the standard's credits of an approved certification against those granted",
        )
        for cid, want, got in rows.all()
    ]


async def _conversions(session: AsyncSession, learners: Learners) -> list[Discrepancy]:
    """Each conversion's net debit from the learner against what its status says. What a
    cancellation gave back to the write-off account (credits the conversion spent whose
    records were voided since) counts as given back: a cancelled conversion nets to zero."""
    moved = await session.execute(
        sql_select(col(LedgerTransaction.reference), -func.sum(SIGNED_AMOUNT))
        .join(CreditPosting, col(CreditPosting.transaction_id) == col(LedgerTransaction.id))
        .join(LedgerAccount, col(LedgerAccount.id) == col(CreditPosting.account_id))
        .where(
            col(LedgerAccount.kind).in_(("learner", "writeoff")),
            col(LedgerTransaction.kind).in_(("conversion", "conversion_cancel")),
            _of(session, col(LedgerTransaction.learner_id), learners),
        )
        .group_by(col(LedgerTransaction.reference))
    )
    debited_by = {reference: int(total) for reference, total in moved.all()}
    rows = await session.execute(
        sql_select(col(Conversion.id), col(Conversion.status), col(Conversion.debits)).where(
            _of(session, col(Conversion.learner_id), learners)
        )
    )
    found = []
    for cid, status, debits in rows.all():
        want = sum(int(v) for v in debits.values()) if status == "approved" else 0
        debited = debited_by.pop(f"conversion:{cid}", 0)
        if want != debited:
            found.append(
                Discrepancy(
                    check="conversion",
                    subject=f"conversion:{cid}",
                    expected=want,
                    actual=debited,
                    detail=f"net debit of a {status} conversion",
                )
            )
    found.extend(  # a conversion debit that no conversion explains
        Discrepancy(
            check="conversion",
            subject=str(reference),
            expected=0,
            actual=debited,
            detail="conversion postings without a conversion",
        )
        for reference, debited in debited_by.items()
        if debited
    )
    return found


async def _expiry_reversals(session: AsyncSession, learners: Learners) -> list[Discrepancy]:
    """Per expiry run and learner account, what reversals citing the run gave back to the
    account against what the run took from it: never more."""
    given_back = (
        sql_select(
            col(LedgerTransaction.reverses_id).label("run_id"),
            col(CreditPosting.account_id).label("account_id"),
            func.sum(col(CreditPosting.amount_hundredths)).label("given"),
        )
        .join(CreditPosting, col(CreditPosting.transaction_id) == col(LedgerTransaction.id))
        .join(LedgerAccount, col(LedgerAccount.id) == col(CreditPosting.account_id))
        .where(
            col(LedgerTransaction.kind) == "expiry",
            col(LedgerTransaction.reverses_id).is_not(None),
            col(LedgerAccount.kind) == "learner",
            col(CreditPosting.side) == "credit",
            _of(session, col(LedgerTransaction.learner_id), learners),
        )
        .group_by(col(LedgerTransaction.reverses_id), col(CreditPosting.account_id))
        .subquery()
    )
    run_taken = (
        sql_select(
            col(CreditPosting.transaction_id).label("run_id"),
            col(CreditPosting.account_id).label("account_id"),
            func.sum(col(CreditPosting.amount_hundredths)).label("taken"),
        )
        .join(LedgerTransaction, col(LedgerTransaction.id) == col(CreditPosting.transaction_id))
        .where(col(LedgerTransaction.kind) == "expiry", col(CreditPosting.side) == "debit")
        .group_by(col(CreditPosting.transaction_id), col(CreditPosting.account_id))
        .subquery()
    )
    taken = func.coalesce(run_taken.c.taken, 0)
    rows = await session.execute(
        sql_select(
            given_back.c.run_id,
            col(LedgerAccount.id),
            col(LedgerAccount.learner_id),
            col(LedgerAccount.category_code),
            taken,
            given_back.c.given,
        )
        .select_from(given_back)
        .join(LedgerAccount, col(LedgerAccount.id) == given_back.c.account_id)
        .outerjoin(
            run_taken,
            (run_taken.c.run_id == given_back.c.run_id)
            & (run_taken.c.account_id == given_back.c.account_id),
        )
        .where(given_back.c.given > taken)
        .order_by(given_back.c.run_id, col(LedgerAccount.id))
    )
    return [
        Discrepancy(
            check="expiry_reversal",
            subject=f"transaction:{run_id} account:{aid} learner:{learner} category:{category}",
            expected=int(took),
            actual=int(given),
            detail="what reversals citing an expiry run gave back to the account, against what"
            " the run took from it (at most)",
        )
        for run_id, aid, learner, category, took, given in rows.all()
    ]


async def _learners(session: AsyncSession) -> list[uuid.UUID]:
    """Everyone with records or credits."""
    query = union(
        sql_select(col(LearningRecord.learner_id).label("learner")),
        sql_select(col(CreditSource.learner_id).label("learner")),
    ).subquery()
    rows = await session.execute(sql_select(query.c.learner).order_by(query.c.learner))
    return list(rows.scalars())


async def _entitlements(session: AsyncSession, learners: Sequence[uuid.UUID]) -> list[Discrepancy]:
    found: list[Discrepancy] = []
    for start in range(0, len(learners), CHUNK):
        outcome = await settlement.settle(
            session, learners[start : start + CHUNK], actor="audit", write=False, lock=False
        )
        found.extend(
            Discrepancy(
                check="entitlement",
                subject=f"learner:{d.learner_id} {d.key} category:{d.category}",
                expected=d.entitled,
                actual=d.granted,
                detail="what the records and published rules give against what was granted",
            )
            for d in outcome.differences
        )
    return found


async def _points(session: AsyncSession, learners: Learners) -> list[Discrepancy]:
    """Volunteer points against what the service, assessments and published scale give
    (settled at once, never queued: every difference is one)."""
    return [
        Discrepancy(
            check="points",
            subject=f"learner:{d.learner_id} points:{d.year}:{d.unit}",
            expected=d.entitled,
            actual=d.granted,
            detail="what the service, the unit's assessment total and the published volunteer"
            " scale give against what was granted",
        )
        for d in await incentives.differences(
            session, learners=None if learners is None else list(learners)
        )
    ]


async def reconcile(
    session: AsyncSession, learners: Sequence[uuid.UUID] | None = None
) -> ReconciliationReport:
    """Run every check; ``learners`` narrows every check to theirs (None: everyone)."""
    scope = list(learners) if learners is not None else await _learners(session)
    unsettled = set((await session.execute(sql_select(col(LedgerOutbox.learner_id)))).scalars())
    discrepancies = [
        *await _unbalanced(session, learners),
        *await _balances(session, learners),
        *await _provenance(session, learners),
        *await _certifications(session, learners),
        *await _conversions(session, learners),
        *await _expiry_reversals(session, learners),
        # records still waiting in the outbox are not differences yet: the worker settles them
        *await _entitlements(session, [learner for learner in scope if learner not in unsettled]),
        *await _points(session, learners),
    ]
    transactions = (
        await session.execute(
            sql_select(func.count())
            .select_from(LedgerTransaction)
            .where(_of(session, col(LedgerTransaction.learner_id), learners))
        )
    ).scalar_one()
    return ReconciliationReport(
        learners_checked=len(scope),
        unsettled_learners=len(unsettled & set(scope)),
        transactions_checked=int(transactions),
        discrepancies=discrepancies,
        healthy=not discrepancies,
    )

"""Routes of the ledger: balances and history, traces, settlement, expiry, reconciliation."""

from __future__ import annotations

import uuid
from collections import defaultdict

from fastapi import APIRouter, Request
from sqlalchemy import func
from sqlalchemy import select as sql_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from credits.learners import VisibleLearner, require_visible_learner
from credits.ledger import expiry, reconciliation, settlement
from credits.ledger.models import CreditPosting, CreditSource, LedgerAccount, LedgerTransaction
from credits.ledger.schemas import (
    CategoryBalance,
    CreditSummary,
    ExpiryRequest,
    ExpiryResult,
    PostingPublic,
    ReconciliationReport,
    SettlementResult,
    SourcePublic,
    TransactionPublic,
)
from credits.records.models import LearningRecord
from kernel.access import require_resident, require_staff
from kernel.auth import CurrentPrincipal
from kernel.db import SessionDep
from kernel.pagination import Page, PageDep, encode_cursor
from kernel.problems import NotFound
from kernel.roles import AUDITOR, COLLEGE_STAFF, DISTRICT_ADMIN

router = APIRouter(prefix="/api/v1", tags=["credit ledger"])

LEDGER_KEEPERS = (COLLEGE_STAFF, DISTRICT_ADMIN)
AUDITORS = (AUDITOR, COLLEGE_STAFF, DISTRICT_ADMIN)


async def summary(session: AsyncSession, learner: uuid.UUID) -> CreditSummary:
    """Balances per category, points and what is still to be settled."""
    rows = (
        await session.execute(
            select(
                col(LedgerAccount.kind),
                col(LedgerAccount.category_code),
                col(LedgerAccount.balance_hundredths),
            ).where(
                col(LedgerAccount.learner_id) == learner,
                col(LedgerAccount.kind).in_(("learner", "points")),
            )
        )
    ).all()
    categories = sorted(
        (
            CategoryBalance(category=c, balance_hundredths=int(b))
            for k, c, b in rows
            if k == "learner"
        ),
        key=lambda c: c.category,
    )
    unsettled = (
        await session.execute(
            sql_select(func.count()).where(
                col(LearningRecord.learner_id) == learner, col(LearningRecord.ledger_dirty)
            )
        )
    ).scalar_one()
    return CreditSummary(
        learner_id=learner,
        total_hundredths=sum(c.balance_hundredths for c in categories),
        categories=categories,
        points_hundredths=sum(int(b) for k, _, b in rows if k == "points"),
        unsettled_records=int(unsettled),
    )


async def _transactions(
    session: AsyncSession, transactions: list[LedgerTransaction], learner: uuid.UUID | None
) -> list[TransactionPublic]:
    ids = [t.id for t in transactions]
    postings: dict[int, list[PostingPublic]] = defaultdict(list)
    net: dict[int, int] = defaultdict(int)
    for tid, kind, owner, category, side, amount in await session.execute(
        sql_select(
            col(CreditPosting.transaction_id),
            col(LedgerAccount.kind),
            col(LedgerAccount.learner_id),
            col(LedgerAccount.category_code),
            col(CreditPosting.side),
            col(CreditPosting.amount_hundredths),
        )
        .join(LedgerAccount, col(LedgerAccount.id) == col(CreditPosting.account_id))
        .where(col(CreditPosting.transaction_id).in_(ids))
        .order_by(col(CreditPosting.id))
    ):
        postings[tid].append(
            PostingPublic(
                account_kind=kind,
                learner_id=owner,
                category=category,
                side=side,
                amount_hundredths=amount,
            )
        )
        if kind == "learner" and (learner is None or owner == learner):
            net[tid] += amount if side == "credit" else -amount
    sources: dict[int, list[SourcePublic]] = defaultdict(list)
    for row in (
        await session.execute(
            select(CreditSource)
            .where(col(CreditSource.transaction_id).in_(ids))
            .order_by(col(CreditSource.id))
        )
    ).scalars():
        sources[row.transaction_id].append(
            SourcePublic(
                key=row.key,
                clause=row.clause,
                category=row.category_code,
                earned_on=row.earned_on,
                amount_hundredths=row.amount_hundredths,
                rule_version_id=row.rule_version_id,
                record_ids=list(row.record_ids),
                certification_id=row.certification_id,
            )
        )
    out = []
    for t in transactions:
        assert t.id is not None
        out.append(
            TransactionPublic(
                id=t.id,
                kind=t.kind,
                learner_id=t.learner_id,
                net_hundredths=net[t.id],
                rule_version_id=t.rule_version_id,
                reverses_id=t.reverses_id,
                reference=t.reference,
                memo=t.memo,
                created_by=t.created_by,
                created_at=t.created_at,
                postings=postings[t.id],
                sources=sources[t.id],
            )
        )
    return out


async def history(
    session: AsyncSession, learner: uuid.UUID, page: PageDep
) -> Page[TransactionPublic]:
    """The learner's transactions, newest first."""
    query = (
        select(LedgerTransaction)
        .where(col(LedgerTransaction.learner_id) == learner)
        .order_by(col(LedgerTransaction.id).desc())
        .limit(page.limit + 1)
    )
    if page.cursor:
        query = query.where(col(LedgerTransaction.id) < int(page.cursor.get("before", 0)))
    rows = list((await session.execute(query)).scalars())
    items = await _transactions(session, rows[: page.limit], learner)
    more = len(rows) > page.limit
    return Page[TransactionPublic](
        items=items, next_cursor=encode_cursor({"before": items[-1].id}) if more else None
    )


@router.get("/me/credits", response_model=CreditSummary)
async def my_credits(principal: CurrentPrincipal, session: SessionDep) -> CreditSummary:
    """The signed-in resident's credit balances (学分账户)."""
    return await summary(session, uuid.UUID(require_resident(principal)))


@router.get("/me/credit-history", response_model=Page[TransactionPublic])
async def my_history(
    principal: CurrentPrincipal, session: SessionDep, page: PageDep
) -> Page[TransactionPublic]:
    """The resident's ledger entries, newest first, each with where its credits came from."""
    return await history(session, uuid.UUID(require_resident(principal)), page)


@router.get("/learners/{learner_id}/credits", response_model=CreditSummary)
async def learner_credits(learner: VisibleLearner, session: SessionDep) -> CreditSummary:
    """A learner's balances, for staff covering the learner and auditors."""
    return await summary(session, learner)


@router.get("/learners/{learner_id}/credit-history", response_model=Page[TransactionPublic])
async def learner_history(
    learner: VisibleLearner, session: SessionDep, page: PageDep
) -> Page[TransactionPublic]:
    """A learner's ledger entries, for staff covering the learner and auditors."""
    return await history(session, learner, page)


@router.get("/credit-transactions/{transaction_id}", response_model=TransactionPublic)
async def get_transaction(
    transaction_id: int, request: Request, principal: CurrentPrincipal, session: SessionDep
) -> TransactionPublic:
    """One transaction with every leg and the records and rule version behind it."""
    transaction = await session.get(LedgerTransaction, transaction_id)
    missing = NotFound(
        f"No ledger transaction {transaction_id} that you may see.", detail_zh="找不到该记账凭证。"
    )
    if transaction is None:
        raise missing
    if transaction.learner_id is None:
        require_staff(principal, AUDITORS)
    else:
        try:
            await require_visible_learner(request, principal, transaction.learner_id)
        except NotFound:
            raise missing from None
    return (await _transactions(session, [transaction], transaction.learner_id))[0]


@router.post("/ledger/settlements", response_model=SettlementResult)
async def run_settlement(principal: CurrentPrincipal, session: SessionDep) -> SettlementResult:
    """Settle learners whose records changed, now (the background worker does it anyway)."""
    require_staff(principal, LEDGER_KEEPERS)
    outcome = await settlement.accrue_pending(session, actor=f"staff:{principal.subject}")
    await session.commit()
    remaining = len(await settlement.dirty_learners(session, 10_000))
    return SettlementResult(
        learners=len(outcome.learners),
        records=outcome.records,
        transactions=outcome.transactions,
        remaining_learners=remaining,
    )


@router.post("/ledger/expiry-runs", response_model=ExpiryResult)
async def expire(
    body: ExpiryRequest, principal: CurrentPrincipal, session: SessionDep
) -> ExpiryResult:
    """Expire unspent credits due on ``as_of``; a dry run lists them without posting."""
    require_staff(principal, LEDGER_KEEPERS)
    result = await expiry.run_expiry(
        session, as_of=body.as_of, dry_run=body.dry_run, actor=f"staff:{principal.subject}"
    )
    if not body.dry_run:
        await session.commit()
    return result


@router.get("/ledger/reconciliation", response_model=ReconciliationReport)
async def reconcile(principal: CurrentPrincipal, session: SessionDep) -> ReconciliationReport:
    """Recompute every balance from records and rule versions; list each difference."""
    require_staff(principal, AUDITORS)
    return await reconciliation.reconcile(session)

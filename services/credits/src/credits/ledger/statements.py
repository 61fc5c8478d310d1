"""What a learner's ledger says: balances, the history of transactions, one transaction's trace.

Read by the resident, by staff covering the learner and auditors, and by the portfolio.
"""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import select as sql_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from credits.ledger.models import (
    CreditPosting,
    CreditSource,
    LedgerAccount,
    LedgerOutbox,
    LedgerTransaction,
)
from credits.ledger.schemas import (
    CategoryBalance,
    CreditSummary,
    PostingPublic,
    SourcePublic,
    TransactionPublic,
)
from kernel.pagination import Page, PageParams, cursor_row_id, encode_cursor


async def summary_of(*, session: AsyncSession, learner_id: uuid.UUID) -> CreditSummary:
    """The learner's balances per category, points and what is still to be settled."""
    rows = (
        await session.execute(
            select(
                col(LedgerAccount.kind),
                col(LedgerAccount.category_code),
                col(LedgerAccount.balance_hundredths),
            ).where(
                col(LedgerAccount.learner_id) == learner_id,
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
    pending = await session.get(LedgerOutbox, learner_id)
    return CreditSummary(
        learner_id=learner_id,
        total_hundredths=sum(c.balance_hundredths for c in categories),
        categories=categories,
        points_hundredths=sum(int(b) for k, _, b in rows if k == "points"),
        settlement_pending=pending is not None,
    )


async def transactions_public(
    session: AsyncSession, transactions: list[LedgerTransaction], learner: uuid.UUID | None
) -> list[TransactionPublic]:
    """The API views of transactions with their legs and provenance (``net`` for ``learner``)."""
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


async def history_of(
    *, session: AsyncSession, learner_id: uuid.UUID, page: PageParams
) -> Page[TransactionPublic]:
    """One page of the learner's transactions, newest first, each with where it came from."""
    query = (
        select(LedgerTransaction)
        .where(col(LedgerTransaction.learner_id) == learner_id)
        .order_by(col(LedgerTransaction.id).desc())
        .limit(page.limit + 1)
    )
    if page.cursor:
        query = query.where(col(LedgerTransaction.id) < cursor_row_id(page.cursor, "before"))
    rows = list((await session.execute(query)).scalars())
    items = await transactions_public(session, rows[: page.limit], learner_id)
    more = len(rows) > page.limit
    return Page[TransactionPublic](
        items=items, next_cursor=encode_cursor({"before": items[-1].id}) if more else None
    )

"""Posting to the ledger: accounts, the per-learner lock, balanced transactions, balances."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import any_, bindparam, case, func, insert, text
from sqlalchemy import select as sql_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from credits.ledger.models import (
    CreditPosting,
    CreditSource,
    LearnerLedger,
    LedgerAccount,
    LedgerTransaction,
)
from kernel.problems import PROBLEMS, Conflict, DomainError

# a posting's effect on its account's balance (credits minus debits)
SIGNED_AMOUNT = case(
    (col(CreditPosting.side) == "credit", col(CreditPosting.amount_hundredths)),
    else_=-col(CreditPosting.amount_hundredths),
)


class LedgerError(DomainError):
    """Base of the ledger's errors."""

    type = PROBLEMS + "ledger-error"
    status = 409
    title = "Ledger error"


class InsufficientCredits(Conflict):
    """The learner's balance does not cover the debit."""

    type = PROBLEMS + "insufficient-credits"
    title = "Insufficient credits"


class UnbalancedTransaction(LedgerError):
    """Debits and credits of a transaction differ (a bug: refused before it reaches the DB)."""

    type = PROBLEMS + "unbalanced-transaction"
    status = 500
    title = "Unbalanced transaction"


@dataclass(frozen=True, slots=True)
class Leg:
    """One posting to be made."""

    account_id: int
    side: str  # "debit" or "credit"
    amount: int


@dataclass(frozen=True, slots=True)
class Source:
    """One provenance line of a transaction (see :class:`CreditSource`)."""

    key: str
    clause: str
    category: str
    earned_on: date
    amount: int
    rule_version_id: int | None
    record_ids: tuple[int, ...] = ()
    certification_id: uuid.UUID | None = None
    unit_path: str | None = None  # where the line counts in the statistics (CreditSource)


@dataclass
class Draft:
    """A transaction about to be written: header fields, legs and provenance."""

    kind: str
    learner_id: uuid.UUID | None
    created_by: str
    legs: list[Leg]
    sources: list[Source] = field(default_factory=list)
    rule_version_id: int | None = None
    reverses_id: int | None = None
    reference: str | None = None
    idempotency_key: str | None = None
    memo: str = ""

    def check_balanced(self) -> None:
        """Refuse a draft whose debits and credits differ or that has a non-positive leg."""
        debits = sum(leg.amount for leg in self.legs if leg.side == "debit")
        credits = sum(leg.amount for leg in self.legs if leg.side == "credit")
        # no legs is allowed only for provenance that moves between keys and nets to zero
        empty = not self.legs and not (self.sources and sum(s.amount for s in self.sources) == 0)
        if debits != credits or any(leg.amount <= 0 for leg in self.legs) or empty:
            raise UnbalancedTransaction(
                f"A {self.kind} transaction would not balance ({debits} != {credits})."
            )


def one_of(session: AsyncSession, column: Any, values: Sequence[Any]) -> Any:
    """``column IN values``; on PostgreSQL as ``= ANY(array)``, one parameter however many
    values (an expanding IN of 500 learners costs more to compile than to run)."""
    if _dialect(session) == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)


def _insert(session: AsyncSession, table: Any) -> Any:
    return (pg_insert if _dialect(session) == "postgresql" else sqlite_insert)(table)


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def system_account(session: AsyncSession, kind: str) -> int:
    """The id of the system account ``kind`` (created by the migrations)."""
    found = (
        await session.execute(
            select(col(LedgerAccount.id)).where(
                col(LedgerAccount.kind) == kind, col(LedgerAccount.learner_id).is_(None)
            )
        )
    ).scalar_one()
    assert found is not None
    return int(found)


# PostgreSQL advisory lock of the published rule versions (7411: ingestion's learner buckets,
# 7412: statistics reports, 7414: certification submissions, 7415: a unit's volunteer points
# of a year). Whoever locks learners holds it shared first; publishing a rule version holds it
# exclusively to its commit. So no settlement reads the versions while one is being published
# (it would settle under the old versions a learner the publication's own settlement never
# saw), and the order is always rules, then learners: no cycle.
RULES_LOCK = 7413


async def lock_rules(session: AsyncSession, *, exclusive: bool = False) -> None:
    """Hold the rule versions' lock to this transaction's end: shared to settle (taken by
    :func:`lock_learners` and the outbox claim), exclusive to publish. SQLite has one writer
    at a time already."""
    if _dialect(session) == "postgresql":
        take = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        await session.execute(text(f"SELECT {take}(:key)"), {"key": RULES_LOCK})


async def lock_learners(
    session: AsyncSession, learner_ids: Iterable[uuid.UUID], *, skip_locked: bool = False
) -> list[uuid.UUID]:
    """Take the ledger lock of each learner, in learner order; return the ones locked.

    Everything that changes a learner's credits takes this lock first, so balances change one
    transaction at a time and two transactions never wait on each other in a cycle. With
    ``skip_locked`` a learner someone else holds is left out (for background workers). The
    rule versions' lock is taken (shared) before any learner's: see :data:`RULES_LOCK`.
    """
    ids = sorted(set(learner_ids))
    if not ids:
        return []
    await lock_rules(session)
    await session.execute(
        _insert(session, LearnerLedger)
        .values([{"learner_id": learner} for learner in ids])
        .on_conflict_do_nothing(index_elements=["learner_id"])
    )
    query = (
        select(col(LearnerLedger.learner_id))
        .where(one_of(session, col(LearnerLedger.learner_id), ids))
        .order_by(col(LearnerLedger.learner_id))
    )
    if _dialect(session) == "postgresql":  # SQLite has one writer at a time already
        query = query.with_for_update(skip_locked=skip_locked)
    return list((await session.execute(query)).scalars())


async def learner_accounts(
    session: AsyncSession,
    learner_ids: Sequence[uuid.UUID],
    *,
    kind: str = "learner",
) -> dict[tuple[uuid.UUID, str], LedgerAccount]:
    """The learners' accounts of ``kind`` by (learner, category)."""
    if not learner_ids:
        return {}
    rows = (
        await session.execute(
            select(LedgerAccount).where(
                col(LedgerAccount.kind) == kind,
                one_of(session, col(LedgerAccount.learner_id), learner_ids),
            )
        )
    ).scalars()
    found: dict[tuple[uuid.UUID, str], LedgerAccount] = {}
    for account in rows:
        assert account.learner_id is not None
        found[(account.learner_id, account.category_code)] = account
    return found


async def ensure_accounts(
    session: AsyncSession,
    wanted: Iterable[tuple[uuid.UUID, str]],
    *,
    kind: str = "learner",
) -> dict[tuple[uuid.UUID, str], int]:
    """Ids of the (learner, category) accounts of ``kind``, creating those missing.

    Callers hold the learners' locks, so no one else creates the same account meanwhile.
    """
    keys = sorted(set(wanted))
    learners = sorted({learner for learner, _ in keys})
    existing: dict[tuple[uuid.UUID, str], int] = {}
    for key, account in (await learner_accounts(session, learners, kind=kind)).items():
        assert account.id is not None
        existing[key] = account.id
    missing = [key for key in keys if key not in existing]
    if missing:
        now = datetime.now(UTC)
        returned = await session.execute(
            insert(LedgerAccount).returning(
                col(LedgerAccount.id),
                col(LedgerAccount.learner_id),
                col(LedgerAccount.category_code),
                sort_by_parameter_order=True,
            ),
            [
                {
                    "kind": kind,
                    "learner_id": learner,
                    "category_code": category,
                    "balance_hundredths": 0,
                    "created_at": now,
                }
                for learner, category in missing
            ],
        )
        created: Any = returned.all()  # rows of (id, learner id, category)
        for account_id, learner, category in created:
            existing[(learner, category)] = int(account_id)
    return {key: existing[key] for key in keys}


COPY_FROM = 200  # rows: below this, plain INSERTs; above, COPY on PostgreSQL


async def write(session: AsyncSession, drafts: Sequence[Draft]) -> list[int]:
    """Write ``drafts`` in a few set-based statements; return their transaction ids.

    Each draft is checked to balance first; the database checks it again (PostgreSQL: a
    deferred constraint trigger) and keeps learner balances non-negative (CHECK). Large
    writes (settlements) go through COPY on PostgreSQL: the triggers fire for COPY too.
    """
    if not drafts:
        return []
    for draft in drafts:
        draft.check_balanced()
    rows = sum(len(d.legs) + len(d.sources) + 1 for d in drafts)
    try:
        if _dialect(session) == "postgresql" and rows >= COPY_FROM:
            return await _copy(session, drafts)
        return await _insert_rows(session, drafts)
    except IntegrityError as exc:
        if "not_overdrawn" in str(exc.orig):
            raise _overdrawn() from None
        raise


def _overdrawn() -> InsufficientCredits:
    return InsufficientCredits(
        "The balance does not cover this debit; nothing was posted.",
        detail_zh="学分余额不足，未记账。",
    )


TRANSACTION_COLUMNS = (
    "id",
    "kind",
    "learner_id",
    "rule_version_id",
    "reverses_id",
    "reference",
    "idempotency_key",
    "memo",
    "created_by",
    "created_at",
)
POSTING_COLUMNS = ("transaction_id", "account_id", "side", "amount_hundredths")
SOURCE_COLUMNS = (
    "transaction_id",
    "learner_id",
    "key",
    "clause",
    "category_code",
    "earned_on",
    "rule_version_id",
    "amount_hundredths",
    "record_ids",
    "certification_id",
    "unit_path",
)


def _rows(
    drafts: Sequence[Draft], ids: Sequence[int]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Rows of the three tables, in the column orders above."""
    now = datetime.now(UTC)
    transactions: list[tuple[Any, ...]] = []
    postings: list[tuple[Any, ...]] = []
    sources: list[tuple[Any, ...]] = []
    for tid, d in zip(ids, drafts, strict=True):
        transactions.append(
            (
                tid,
                d.kind,
                d.learner_id,
                d.rule_version_id,
                d.reverses_id,
                d.reference,
                d.idempotency_key,
                d.memo,
                d.created_by,
                now,
            )
        )
        postings.extend((tid, leg.account_id, leg.side, leg.amount) for leg in d.legs)
        learner = d.learner_id
        sources.extend(
            (
                tid,
                learner,
                s.key,
                s.clause,
                s.category,
                s.earned_on,
                s.rule_version_id,
                s.amount,
                list(s.record_ids),
                s.certification_id,
                s.unit_path,
            )
            for s in d.sources
        )
    return transactions, postings, sources


async def _insert_rows(session: AsyncSession, drafts: Sequence[Draft]) -> list[int]:
    transaction_table: Any = LedgerTransaction.__table__  # type: ignore[attr-defined]
    header, _, _ = _rows(drafts, [0] * len(drafts))
    returned = await session.execute(
        insert(transaction_table).returning(transaction_table.c.id, sort_by_parameter_order=True),
        [dict(zip(TRANSACTION_COLUMNS[1:], row[1:], strict=True)) for row in header],
    )
    written: Any = returned.all()
    ids = [int(row[0]) for row in written]
    _, postings, sources = _rows(drafts, ids)
    for table, columns, rows in (
        (CreditPosting.__table__, POSTING_COLUMNS, postings),  # type: ignore[attr-defined]
        (CreditSource.__table__, SOURCE_COLUMNS, sources),  # type: ignore[attr-defined]
    ):
        if rows:
            await session.execute(
                insert(table), [dict(zip(columns, row, strict=True)) for row in rows]
            )
    return ids


async def _copy(session: AsyncSession, drafts: Sequence[Draft]) -> list[int]:
    """The same rows through COPY on the session's own connection and transaction."""
    import asyncpg

    connection = await session.connection()
    raw: Any = (await connection.get_raw_connection()).driver_connection
    ids = [
        int(row[0])
        for row in await raw.fetch(
            "SELECT nextval('ledger_transaction_id_seq') FROM generate_series(1, $1)",
            len(drafts),
        )
    ]
    transactions, postings, sources = _rows(drafts, ids)
    try:
        for table, columns, rows in (
            ("ledger_transaction", TRANSACTION_COLUMNS, transactions),
            ("credit_posting", POSTING_COLUMNS, postings),
            ("credit_source", SOURCE_COLUMNS, sources),
        ):
            if rows:
                await raw.copy_records_to_table(table, records=rows, columns=list(columns))
    except asyncpg.exceptions.CheckViolationError as exc:
        if "not_overdrawn" in str(exc):
            raise _overdrawn() from None
        raise
    return ids


async def balances(session: AsyncSession, learner_id: uuid.UUID) -> dict[str, int]:
    """The learner's balance per category, in hundredths (categories with an account)."""
    rows = await session.execute(
        select(col(LedgerAccount.category_code), col(LedgerAccount.balance_hundredths)).where(
            col(LedgerAccount.kind) == "learner", col(LedgerAccount.learner_id) == learner_id
        )
    )
    return {category: int(balance) for category, balance in rows.all()}


async def account_sums(session: AsyncSession, account_ids: Sequence[int]) -> dict[int, int]:
    """Credits minus debits per account, summed from the postings."""
    if not account_ids:
        return {}
    rows = await session.execute(
        sql_select(col(CreditPosting.account_id), func.sum(SIGNED_AMOUNT))
        .where(col(CreditPosting.account_id).in_(account_ids))
        .group_by(col(CreditPosting.account_id))
    )
    return {int(a): int(s) for a, s in rows.all()}

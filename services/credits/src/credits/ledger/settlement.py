"""Settlement: post the difference between what a learner's records are worth and what the
ledger has granted them, per entitlement key, citing the rule version and the records.

Accrual, voiding, rejection and rule corrections are all one operation: recompute the learner's
entitlements with the pure engine and post the difference. A settlement run twice posts
nothing the second time, so the outbox (``learning_record.ledger_dirty``) is processed exactly
once in effect, however often a worker retries.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import bindparam, func, update
from sqlalchemy import select as sql_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from credits.activities.models import Activity, ActivitySession
from credits.credentials import revocation
from credits.ledger import service as ledger
from credits.ledger.models import CreditSource, LearnerLedger
from credits.ledger.service import Draft, Leg, Source
from credits.records.models import LearningRecord
from credits.rules import engine
from credits.rules import service as rules
from kernel.clock import aware_utc

SETTLEMENT_KINDS = ("accrual", "adjustment", "reversal")


@dataclass(frozen=True)
class Change:
    """A learner's balance in one category before and after a settlement."""

    learner_id: uuid.UUID
    category: str
    before: int
    after: int

    @property
    def delta(self) -> int:
        """After minus before."""
        return self.after - self.before


@dataclass(frozen=True)
class Difference:
    """One entitlement whose granted amount differs from what the records are worth."""

    learner_id: uuid.UUID
    key: str
    category: str
    granted: int
    entitled: int


@dataclass
class Outcome:
    """What a settlement did (or, on a dry run, would do)."""

    learners: list[uuid.UUID] = field(default_factory=list)
    records: int = 0
    transactions: int = 0
    changes: list[Change] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)


@dataclass
class _Granted:
    amount: int = 0
    clause: str = ""
    earned_on: date | None = None
    version: int | None = None
    record_ids: tuple[int, ...] = ()


async def _records(
    session: AsyncSession, learners: Sequence[uuid.UUID]
) -> tuple[dict[uuid.UUID, list[engine.RecordFacts]], dict[str, int], list[int]]:
    rows = await session.execute(
        sql_select(
            col(LearningRecord.id),
            col(LearningRecord.learner_id),
            col(LearningRecord.started_at),
            col(LearningRecord.minutes),
            col(LearningRecord.category_code),
            col(LearningRecord.mode),
            col(LearningRecord.source),
            col(LearningRecord.status),
            col(LearningRecord.activity_id),
            col(LearningRecord.session_id),
            col(Activity.kind),
        )
        .join(Activity, col(Activity.id) == col(LearningRecord.activity_id))
        .where(col(LearningRecord.learner_id).in_(learners))
    )
    by_learner: dict[uuid.UUID, list[engine.RecordFacts]] = defaultdict(list)
    with_sessions: set[uuid.UUID] = set()
    ids: list[int] = []
    found: Any = rows.all()
    for row in found:
        rid, learner, started, minutes, category, mode, source, status, activity, sid, kind = row
        ids.append(int(rid))
        if sid is not None:
            with_sessions.add(activity)
        by_learner[learner].append(
            engine.RecordFacts(
                id=int(rid),
                started_at=aware_utc(started),
                minutes=minutes,
                category=category,
                mode=mode,
                source=source,
                status=status,
                activity_id=str(activity),
                activity_kind=kind,
                session_id=str(sid) if sid is not None else None,
            )
        )
    counts: dict[str, int] = {}
    if with_sessions:
        counted = await session.execute(
            sql_select(col(ActivitySession.activity_id), func.count())
            .where(col(ActivitySession.activity_id).in_(with_sessions))
            .group_by(col(ActivitySession.activity_id))
        )
        counts = {str(activity): int(n) for activity, n in counted.all()}
    return by_learner, counts, ids


async def _granted(
    session: AsyncSession, learners: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[tuple[str, str], _Granted]]:
    rows = await session.execute(
        sql_select(
            col(CreditSource.learner_id),
            col(CreditSource.key),
            col(CreditSource.category_code),
            col(CreditSource.clause),
            col(CreditSource.earned_on),
            col(CreditSource.rule_version_id),
            col(CreditSource.amount_hundredths),
            col(CreditSource.record_ids),
        )
        .where(
            col(CreditSource.learner_id).in_(learners),
            col(CreditSource.certification_id).is_(None),
        )
        .order_by(col(CreditSource.id))
    )
    granted: dict[uuid.UUID, dict[tuple[str, str], _Granted]] = defaultdict(dict)
    for learner, key, category, clause, earned_on, version, amount, record_ids in rows:
        entry = granted[learner].setdefault((key, category), _Granted())
        entry.amount += amount
        if amount > 0:  # a reversal cites what the last grant cited
            entry.clause, entry.earned_on, entry.version = clause, earned_on, version
            entry.record_ids = tuple(record_ids)
    return granted


def _sources(
    expected: list[engine.Credit], granted: dict[tuple[str, str], _Granted]
) -> list[Source]:
    """Provenance lines of the difference between entitlements and grants."""
    wanted = {(c.key, c.category): c for c in expected}
    lines: list[Source] = []
    for (key, category), credit in wanted.items():
        before = granted.get((key, category), _Granted()).amount
        if credit.hundredths != before:
            lines.append(
                Source(
                    key=key,
                    clause=credit.clause,
                    category=category,
                    earned_on=credit.earned_on,
                    amount=credit.hundredths - before,
                    rule_version_id=credit.version_id,
                    record_ids=credit.record_ids,
                )
            )
    for (key, category), grant in granted.items():
        if (key, category) not in wanted and grant.amount != 0:
            assert grant.earned_on is not None
            lines.append(
                Source(
                    key=key,
                    clause=grant.clause,
                    category=category,
                    earned_on=grant.earned_on,
                    amount=-grant.amount,
                    rule_version_id=grant.version,
                    record_ids=grant.record_ids,
                )
            )
    return lines


async def settle(
    session: AsyncSession,
    learner_ids: Sequence[uuid.UUID],
    *,
    actor: str,
    extra_versions: Sequence[engine.RuleSet] = (),
    write: bool = True,
    lock: bool = True,
    skip_locked: bool = False,
    cause_version_id: int | None = None,
    memo: str = "",
) -> Outcome:
    """Bring the learners' credits in line with their records and the published rules.

    Args:
        learner_ids: whose credits to settle.
        actor: who is settling (cited by the transactions).
        extra_versions: versions to treat as published after the others (a correction's
            dry run shows what publishing one would change).
        write: post the differences; False only computes them (dry run, reconciliation).
        lock: take the learners' ledger locks first (always when writing).
        skip_locked: leave out learners another transaction holds (background workers).
        cause_version_id: the rule version a correction cites on its transactions.
        memo: a note on every transaction.
    """
    outcome = Outcome()
    learners = sorted(set(learner_ids))
    if write or lock:
        learners = await ledger.lock_learners(session, learners, skip_locked=skip_locked)
    outcome.learners = learners
    if not learners:
        return outcome
    versions = [*await rules.published_rulesets(session), *extra_versions]
    records, session_counts, record_ids = await _records(session, learners)
    outcome.records = len(record_ids)
    granted = await _granted(session, learners)
    accounts = await ledger.learner_accounts(session, learners)

    per_learner: list[tuple[uuid.UUID, list[Source]]] = []
    for learner in learners:
        expected = engine.entitlements(records.get(learner, []), versions, session_counts)
        mine = granted.get(learner, {})
        lines = _sources(expected, mine)
        for line in lines:
            outcome.differences.append(
                Difference(
                    learner_id=learner,
                    key=line.key,
                    category=line.category,
                    granted=mine.get((line.key, line.category), _Granted()).amount,
                    entitled=mine.get((line.key, line.category), _Granted()).amount + line.amount,
                )
            )
        if lines:
            per_learner.append((learner, lines))

    nets: dict[tuple[uuid.UUID, str], int] = defaultdict(int)
    for learner, lines in per_learner:
        for line in lines:
            nets[(learner, line.category)] += line.amount
    for (learner, category), net in sorted(nets.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        if net:
            account = accounts.get((learner, category))
            before = account.balance_hundredths if account is not None else 0
            after = before + net if before + net >= 0 else 0  # what it cannot take is written off
            outcome.changes.append(Change(learner, category, before, after))
    if not write or not per_learner:
        if write:
            await _clear_outbox(session, record_ids)
        return outcome

    account_ids = await ledger.ensure_accounts(session, nets.keys())
    issuing = await ledger.system_account(session, "issuing")
    writeoff = await ledger.system_account(session, "writeoff")
    drafts: list[Draft] = []
    for learner, lines in per_learner:
        legs: list[Leg] = []
        issued = 0
        for category in sorted({line.category for line in lines}):
            net = nets[(learner, category)]
            if net == 0:
                continue
            issued += net
            account_id = account_ids[(learner, category)]
            if net > 0:
                legs.append(Leg(account_id, "credit", net))
            else:
                account = accounts.get((learner, category))
                balance = account.balance_hundredths if account is not None else 0
                taken = min(balance, -net)
                if taken:
                    legs.append(Leg(account_id, "debit", taken))
                if -net - taken:  # spent already: the college writes the rest off
                    legs.append(Leg(writeoff, "debit", -net - taken))
        if issued > 0:
            legs.append(Leg(issuing, "debit", issued))
        elif issued < 0:
            legs.append(Leg(issuing, "credit", -issued))
        # legs may be empty: gains and losses that cancel within a category (rounding moving a
        # hundredth between two records) still change the provenance
        gains = any(line.amount > 0 for line in lines)
        losses = any(line.amount < 0 for line in lines)
        drafts.append(
            Draft(
                kind="adjustment" if gains and losses else ("accrual" if gains else "reversal"),
                learner_id=learner,
                created_by=actor,
                legs=legs,
                sources=lines,
                rule_version_id=cause_version_id
                or max((line.rule_version_id or 0 for line in lines), default=0)
                or None,
                memo=memo,
            )
        )
    await ledger.write(session, drafts)
    # documents certifying credits this took back stop standing (credentials/revocation.py)
    await revocation.after_settlement(session, per_learner)
    outcome.transactions = len(drafts)
    await _clear_outbox(session, record_ids)
    await session.execute(
        update(LearnerLedger)
        .where(col(LearnerLedger.learner_id).in_([learner for learner, _ in per_learner]))
        .values(settled_at=func.now())
    )
    return outcome


async def _clear_outbox(session: AsyncSession, record_ids: list[int]) -> None:
    """Mark the records this settlement saw as settled (only those: a record added meanwhile
    keeps its flag for the next run)."""
    if not record_ids:
        return
    table: Any = LearningRecord.__table__  # type: ignore[attr-defined]
    for start in range(0, len(record_ids), 5000):
        chunk = record_ids[start : start + 5000]
        if session.get_bind().dialect.name == "postgresql":
            where = table.c.id == func.any(bindparam("ids", type_=_bigint_array()))
            await session.execute(
                update(table).where(where, table.c.ledger_dirty).values(ledger_dirty=False),
                {"ids": chunk},
            )
        else:
            await session.execute(
                update(table)
                .where(table.c.id.in_(chunk), table.c.ledger_dirty)
                .values(ledger_dirty=False)
            )


def _bigint_array() -> Any:
    from sqlalchemy import BigInteger
    from sqlalchemy.dialects.postgresql import ARRAY

    return ARRAY(BigInteger)


async def dirty_learners(session: AsyncSession, limit: int) -> list[uuid.UUID]:
    """Learners with records the ledger has not settled yet."""
    rows = await session.execute(
        sql_select(col(LearningRecord.learner_id))
        .where(col(LearningRecord.ledger_dirty))
        .group_by(col(LearningRecord.learner_id))
        .limit(limit)
    )
    return list(rows.scalars())


async def accrue_pending(
    session: AsyncSession, *, actor: str = "system:accrual", learners_per_batch: int = 500
) -> Outcome:
    """Settle one batch of learners with unsettled records (the outbox worker's step).

    The caller commits. Learners another worker holds are skipped, and picked up next time.
    """
    learners = await dirty_learners(session, learners_per_batch)
    return await settle(session, learners, actor=actor, skip_locked=True)

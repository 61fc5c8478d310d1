"""Settlement: post the difference between what a learner's records are worth and what the
ledger has granted them, per entitlement key, citing the rule version and the records.

Accrual, voiding, rejection and rule corrections are all one operation: recompute the learner's
entitlements with the pure engine and post the difference. A settlement run twice posts
nothing the second time, so the outbox (:class:`~credits.ledger.models.LedgerOutbox`, filled by
triggers on every record insert and status change) is processed exactly once in effect, however
often a worker retries.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import bindparam, delete, func, text, update
from sqlalchemy import select as sql_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from credits.activities.models import Activity, ActivitySession
from credits.credentials import revocation
from credits.ledger import expiry
from credits.ledger import service as ledger
from credits.ledger.models import CreditSource, LearnerLedger, LedgerOutbox
from credits.ledger.service import Draft, Leg, Source
from credits.records.models import LearningRecord
from credits.rules import engine
from credits.rules import service as rules
from kernel.clock import aware_utc
from kernel.db import raw_fetch

SETTLEMENT_KINDS = ("accrual", "adjustment", "reversal")
POINTS_CLAUSE = "volunteer_points"


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


@dataclass(frozen=True)
class _Citation:
    """What a grant cited: its reversal cites the same."""

    clause: str = ""
    earned_on: date | None = None
    version: int | None = None
    record_ids: tuple[int, ...] = ()
    unit_path: str | None = None


RECORD_COLUMNS = (
    "r.id, r.learner_id, r.started_at, r.minutes, r.category_code, r.mode, r.source,"
    " r.status, r.activity_id, r.session_id, a.kind, r.host_unit_path"
)


async def _record_rows(session: AsyncSession, learners: Sequence[uuid.UUID]) -> list[Any]:
    """Every record of the learners, as plain rows, fetched the cheapest way the driver has.

    This is the hot read of every settlement: on PostgreSQL it goes straight to asyncpg (one
    array parameter, no ORM row processing); elsewhere through SQLAlchemy Core.
    """
    if session.get_bind().dialect.name == "postgresql":
        return await raw_fetch(
            session,
            f"SELECT {RECORD_COLUMNS} FROM learning_record r JOIN activity a"
            " ON a.id = r.activity_id WHERE r.learner_id = ANY($1::uuid[])",
            list(learners),
        )
    table: Any = LearningRecord.__table__  # type: ignore[attr-defined]
    activities: Any = Activity.__table__  # type: ignore[attr-defined]
    result = await session.execute(
        sql_select(
            table.c.id,
            table.c.learner_id,
            table.c.started_at,
            table.c.minutes,
            table.c.category_code,
            table.c.mode,
            table.c.source,
            table.c.status,
            table.c.activity_id,
            table.c.session_id,
            activities.c.kind,
            table.c.host_unit_path,
        )
        .join(activities, activities.c.id == table.c.activity_id)
        .where(table.c.learner_id.in_(learners))
    )
    return list(result.all())


@dataclass
class _Hosts:
    """Where the records and activities being settled are hosted: the unit each provenance
    line counts under in the statistics."""

    records: dict[int, str] = field(default_factory=dict)
    activities: dict[str, str] = field(default_factory=dict)

    def of(self, key: str) -> str | None:
        """The host unit path of the record or activity an entitlement key names."""
        kind, _, which = key.partition(":")
        if kind == "hours":
            return self.records.get(int(which))
        if kind == "completion":
            return self.activities.get(which)
        return None


async def _records(
    session: AsyncSession, learners: Sequence[uuid.UUID]
) -> tuple[dict[uuid.UUID, list[engine.RecordFacts]], dict[str, int], int, _Hosts]:
    by_learner: dict[uuid.UUID, list[engine.RecordFacts]] = defaultdict(list)
    hosts = _Hosts()
    with_sessions: set[str] = set()
    rows = await _record_rows(session, learners)
    facts = engine.RecordFacts
    # the driver's UUID objects become standard ones (and strings) once per learner or activity
    learner_ids: dict[Any, uuid.UUID] = {}
    activity_ids: dict[Any, str] = {}
    for (
        rid,
        learner,
        started,
        minutes,
        category,
        mode,
        source,
        status,
        activity,
        sid,
        kind,
        host,
    ) in rows:
        learner_id = learner_ids.get(learner)
        if learner_id is None:
            learner_id = learner_ids[learner] = uuid.UUID(bytes=learner.bytes)
        activity_id = activity_ids.get(activity)
        if activity_id is None:
            activity_id = activity_ids[activity] = str(activity)
            hosts.activities[activity_id] = host
        hosts.records[rid] = host
        session_id = None
        if sid is not None:
            session_id = str(sid)
            with_sessions.add(activity_id)
        by_learner[learner_id].append(
            facts(
                rid,
                started if started.tzinfo is not None else aware_utc(started),
                minutes,
                category,
                mode,
                source,
                status,
                activity_id,
                kind,
                session_id,
            )
        )
    counts: dict[str, int] = {}
    if with_sessions:
        counted = await session.execute(
            sql_select(col(ActivitySession.activity_id), func.count())
            .where(col(ActivitySession.activity_id).in_([uuid.UUID(a) for a in with_sessions]))
            .group_by(col(ActivitySession.activity_id))
        )
        counts = {str(activity): int(n) for activity, n in counted.all()}
    return by_learner, counts, len(rows), hosts


async def _granted(
    session: AsyncSession, learners: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[tuple[str, str], int]]:
    """What the ledger has granted each learner per entitlement (key, category), net.

    Only the sums: the citations of a grant (clause, day, version, records, unit) are read
    for the few entitlements a settlement takes back (:func:`_grant_citations`). Next to the
    records this is the hot read of every settlement, so on PostgreSQL it goes straight to
    asyncpg and sums in the database.
    """
    granted: dict[uuid.UUID, dict[tuple[str, str], int]] = defaultdict(dict)
    if session.get_bind().dialect.name == "postgresql":
        rows = await raw_fetch(
            session,
            "SELECT learner_id, key, category_code, sum(amount_hundredths)::bigint"
            " FROM credit_source WHERE learner_id = ANY($1::uuid[])"
            " AND certification_id IS NULL AND clause <> $2"
            " GROUP BY learner_id, key, category_code",
            list(learners),
            POINTS_CLAUSE,
        )
        learner_ids: dict[Any, uuid.UUID] = {}
        for learner, key, category, amount in rows:
            learner_id = learner_ids.get(learner)
            if learner_id is None:
                learner_id = learner_ids[learner] = uuid.UUID(bytes=learner.bytes)
            granted[learner_id][(key, category)] = int(amount)
        return granted
    table: Any = CreditSource.__table__  # type: ignore[attr-defined]
    summed = await session.execute(
        sql_select(
            table.c.learner_id,
            table.c.key,
            table.c.category_code,
            func.sum(table.c.amount_hundredths),
        )
        .where(
            table.c.learner_id.in_(learners),
            table.c.certification_id.is_(None),  # certified: not from records
            table.c.clause != POINTS_CLAUSE,  # volunteer points: not credits
        )
        .group_by(table.c.learner_id, table.c.key, table.c.category_code)
    )
    for learner, key, category, amount in summed.all():
        granted[learner][(key, category)] = int(amount)
    return granted


async def _grant_citations(
    session: AsyncSession, wanted: dict[uuid.UUID, set[tuple[str, str]]]
) -> dict[uuid.UUID, dict[tuple[str, str], _Citation]]:
    """What the last grant of each of these entitlements cited: a reversal cites the same."""
    wanted = {learner: pairs for learner, pairs in wanted.items() if pairs}
    if not wanted:
        return {}
    keys = sorted({key for pairs in wanted.values() for key, _ in pairs})
    rows = await session.execute(
        sql_select(
            col(CreditSource.learner_id),
            col(CreditSource.key),
            col(CreditSource.category_code),
            col(CreditSource.clause),
            col(CreditSource.earned_on),
            col(CreditSource.rule_version_id),
            col(CreditSource.record_ids),
            col(CreditSource.unit_path),
        )
        .where(
            ledger.one_of(session, col(CreditSource.learner_id), sorted(wanted)),
            ledger.one_of(session, col(CreditSource.key), keys),
            col(CreditSource.amount_hundredths) > 0,
            col(CreditSource.certification_id).is_(None),
            col(CreditSource.clause) != POINTS_CLAUSE,
        )
        .order_by(col(CreditSource.id))
    )
    cited: dict[uuid.UUID, dict[tuple[str, str], _Citation]] = defaultdict(dict)
    for learner, key, category, clause, earned_on, version, record_ids, unit in rows.all():
        if (key, category) in wanted.get(learner, ()):
            cited[learner][(key, category)] = _Citation(  # the last grant wins
                clause=clause,
                earned_on=earned_on,
                version=version,
                record_ids=tuple(record_ids),
                unit_path=unit,
            )
    return cited


def _taken_back(
    expected: list[engine.Credit], granted: dict[tuple[str, str], int]
) -> set[tuple[str, str]]:
    """Entitlements granted before that the records no longer earn at all."""
    if not granted:
        return set()
    wanted = {(c.key, c.category) for c in expected}
    return {pair for pair, amount in granted.items() if amount != 0 and pair not in wanted}


def _sources(
    expected: list[engine.Credit],
    granted: dict[tuple[str, str], int],
    cited: dict[tuple[str, str], _Citation],
    hosts: _Hosts,
) -> list[Source]:
    """Provenance lines of the difference between entitlements and grants.

    ``cited`` holds what the last grant of each entitlement in :func:`_taken_back` cited.
    """
    if not granted:  # a first settlement (the usual case in bulk): every credit is new
        return [
            Source(
                c.key,
                c.clause,
                c.category,
                c.earned_on,
                c.hundredths,
                c.version_id,
                c.record_ids,
                unit_path=hosts.of(c.key),
            )
            for c in expected
        ]
    wanted = {(c.key, c.category): c for c in expected}
    lines: list[Source] = []
    for (key, category), credit in wanted.items():
        before = granted.get((key, category), 0)
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
                    unit_path=hosts.of(key),
                )
            )
    for (key, category), amount in granted.items():
        if (key, category) not in wanted and amount != 0:
            grant = cited[(key, category)]
            assert grant.earned_on is not None
            lines.append(
                Source(
                    key=key,
                    clause=grant.clause,
                    category=category,
                    earned_on=grant.earned_on,
                    amount=-amount,
                    rule_version_id=grant.version,
                    record_ids=grant.record_ids,
                    unit_path=grant.unit_path or hosts.of(key),
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
    claimed: bool = False,
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
        claimed: the caller holds the learners' locks already (see :func:`claim_queued`).
        cause_version_id: the rule version a correction cites on its transactions.
        memo: a note on every transaction.
    """
    outcome = Outcome()
    learners = sorted(set(learner_ids))
    if (write or lock) and not claimed:
        learners = await ledger.lock_learners(session, learners, skip_locked=skip_locked)
    outcome.learners = learners
    if not learners:
        return outcome
    # read before the records: a change committed after this keeps the learner queued
    queued = await _queued_seqs(session, learners) if write else {}
    versions = [*await rules.published_rulesets(session), *extra_versions]
    records, session_counts, outcome.records, hosts = await _records(session, learners)
    granted = await _granted(session, learners)
    accounts = await ledger.learner_accounts(session, learners)

    expected_of = {
        learner: engine.entitlements(records.get(learner, []), versions, session_counts)
        for learner in learners
    }
    cited = await _grant_citations(
        session,
        {
            learner: _taken_back(expected_of[learner], granted.get(learner, {}))
            for learner in learners
        },
    )

    per_learner: list[tuple[uuid.UUID, list[Source]]] = []
    for learner in learners:
        mine = granted.get(learner, {})
        lines = _sources(expected_of[learner], mine, cited.get(learner, {}), hosts)
        if not write:  # the differences themselves are what a dry run or an audit wants
            for line in lines:
                granted_before = mine.get((line.key, line.category), 0)
                outcome.differences.append(
                    Difference(
                        learner_id=learner,
                        key=line.key,
                        category=line.category,
                        granted=granted_before,
                        entitled=granted_before + line.amount,
                    )
                )
        if lines:
            per_learner.append((learner, lines))

    nets: dict[tuple[uuid.UUID, str], int] = defaultdict(int)
    for learner, lines in per_learner:
        for line in lines:
            nets[(learner, line.category)] += line.amount
    # credits taken back of years already expired come out of what expired first
    unexpire = (
        await expiry.excess_expired(
            session,
            per_learner,
            {pair: account.balance_hundredths for pair, account in accounts.items()},
            versions,
        )
        if per_learner
        else {}
    )
    for (learner, category), net in sorted(nets.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        back = unexpire[(learner, category)].amount if (learner, category) in unexpire else 0
        if net or back:
            account = accounts.get((learner, category))
            before = account.balance_hundredths if account is not None else 0
            # what it cannot take is written off
            after = max(0, before + back + net)
            outcome.changes.append(Change(learner, category, before, after))
    if not write or not per_learner:
        if write:
            await _dequeue(session, queued)
        return outcome

    account_ids = await ledger.ensure_accounts(session, nets.keys())
    issuing = await ledger.system_account(session, "issuing")
    writeoff = await ledger.system_account(session, "writeoff")
    expired_to = await ledger.system_account(session, "expiry") if unexpire else 0
    drafts: list[Draft] = []
    for learner, lines in per_learner:
        legs: list[Leg] = []
        issued = 0
        version_id = (
            cause_version_id
            or max((line.rule_version_id or 0 for line in lines), default=0)
            or None
        )
        for category in sorted({line.category for line in lines}):
            net = nets[(learner, category)]
            account_id = account_ids[(learner, category)]
            excess = unexpire.get((learner, category))
            # before the take-back (SQLite keeps balances row by row): the expiry of credits
            # no record backs any more is undone, back to the learner's account, one reversal
            # per run that expired them, citing it
            for run_id, amount in excess.parts if excess is not None else ():
                drafts.append(
                    Draft(
                        kind="expiry",
                        learner_id=learner,
                        created_by=actor,
                        legs=[
                            Leg(expired_to, "debit", amount),
                            Leg(account_id, "credit", amount),
                        ],
                        rule_version_id=version_id,
                        reverses_id=run_id,
                        memo="expiry reversed: credits of expired years taken back since"
                        + (f"; {memo}" if memo else ""),
                    )
                )
            if net == 0:
                continue
            issued += net
            if net > 0:
                legs.append(Leg(account_id, "credit", net))
            else:
                account = accounts.get((learner, category))
                balance = account.balance_hundredths if account is not None else 0
                if excess is not None:
                    balance += excess.amount
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
                rule_version_id=version_id,
                memo=memo,
            )
        )
    await ledger.write(session, drafts)
    # documents certifying credits this took back stop standing (credentials/revocation.py)
    await revocation.after_settlement(session, per_learner)
    outcome.transactions = len(drafts)
    await _dequeue(session, queued)
    await session.execute(
        update(LearnerLedger)
        .where(
            ledger.one_of(
                session, col(LearnerLedger.learner_id), [learner for learner, _ in per_learner]
            )
        )
        .values(settled_at=func.now())
    )
    return outcome


async def _queued_seqs(
    session: AsyncSession, learners: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    rows = await session.execute(
        sql_select(col(LedgerOutbox.learner_id), col(LedgerOutbox.seq)).where(
            ledger.one_of(session, col(LedgerOutbox.learner_id), learners)
        )
    )
    return {learner: int(seq) for learner, seq in rows.all()}


async def _dequeue(session: AsyncSession, seen: dict[uuid.UUID, int]) -> None:
    """Take the settled learners off the outbox, unless a change came in meanwhile."""
    if not seen:
        return
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text(
                "DELETE FROM ledger_outbox AS o USING unnest(CAST(:learners AS uuid[]),"
                " CAST(:seqs AS bigint[])) AS d(learner_id, seq)"
                " WHERE o.learner_id = d.learner_id AND o.seq = d.seq"
            ),
            {"learners": list(seen), "seqs": list(seen.values())},
        )
        return
    table: Any = LedgerOutbox.__table__  # type: ignore[attr-defined]
    await session.execute(
        delete(table).where(
            table.c.learner_id == bindparam("learner"), table.c.seq == bindparam("seen")
        ),
        [{"learner": learner, "seen": seq} for learner, seq in seen.items()],
    )


async def queued_learners(
    session: AsyncSession, limit: int, *, up_to_seq: int | None = None
) -> list[uuid.UUID]:
    """Learners whose records changed since their last settlement, oldest change first
    (only changes queued at or before ``up_to_seq`` when it is given)."""
    query = sql_select(col(LedgerOutbox.learner_id)).order_by(col(LedgerOutbox.seq)).limit(limit)
    if up_to_seq is not None:
        query = query.where(col(LedgerOutbox.seq) <= up_to_seq)
    return list((await session.execute(query)).scalars())


async def last_queued_seq(session: AsyncSession) -> int:
    """The newest change in the outbox (0 when it is empty)."""
    newest = await session.execute(sql_select(func.max(col(LedgerOutbox.seq))))
    return int(newest.scalar_one() or 0)


async def claim_queued(
    session: AsyncSession, limit: int, *, up_to_seq: int | None = None
) -> list[uuid.UUID]:
    """Lock up to ``limit`` queued learners nobody else holds, oldest change first.

    On PostgreSQL one statement picks and locks them (SKIP LOCKED), so workers take disjoint
    sets instead of queueing behind each other. SQLite has one writer at a time anyway.
    """
    if session.get_bind().dialect.name != "postgresql":
        return sorted(await queued_learners(session, limit, up_to_seq=up_to_seq))
    await ledger.lock_rules(session)  # before any learner's lock, as lock_learners does
    rows = await session.execute(
        text(
            "SELECT o.learner_id FROM ledger_outbox o"
            " JOIN learner_ledger l ON l.learner_id = o.learner_id"
            " WHERE o.seq <= :up_to"
            " ORDER BY o.seq LIMIT :limit FOR UPDATE OF l SKIP LOCKED"
        ),
        {"limit": limit, "up_to": up_to_seq if up_to_seq is not None else 2**63 - 1},
    )
    return sorted(rows.scalars())


async def accrue_pending(
    session: AsyncSession,
    *,
    actor: str = "system:accrual",
    learners_per_batch: int = 500,
    up_to_seq: int | None = None,
) -> Outcome:
    """Settle one batch of queued learners (the outbox worker's step); the caller commits."""
    learners = await claim_queued(session, learners_per_batch, up_to_seq=up_to_seq)
    return await settle(session, learners, actor=actor, claimed=True)

"""A hypothesis state machine drives accrual, voiding, conversion, cancellation and expiry
through the real ledger against an in-memory model of balances.

Records are dated in three years and expiry runs on three days, so a run expires some years'
credits and keeps others', and a record voided after a run may be of a year it expired or
of one it kept.

After every step the database must agree with the model in every category, no balance may be
negative, and every transaction must sum to zero. PostgreSQL runs 1,000 machines; SQLite, the
embedded default, 100.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from credits.activities.models import Activity
from credits.conversion import service as conversions
from credits.conversion.models import ConversionTarget
from credits.conversion.schemas import ConversionApply
from credits.ledger import expiry, reconciliation, settlement
from credits.ledger import service as ledger
from credits.ledger.models import CreditPosting, LedgerTransaction
from credits.ledger.service import SIGNED_AMOUNT, InsufficientCredits
from credits.records.models import LearningRecord
from credits.rules.conversion import Insufficient, Requirement, allocate
from kernel.db import make_engine
from kernel.settings import normalise_database_url

PRICE = 30
PER_RECORD = 50  # 300 offline minutes at 600 minutes a credit
CATEGORIES = ("law", "health")
YEARS = (2023, 2024, 2026)  # the records' years
# expiry runs: the first expires 2023's credits, the second 2024's too, the third all of them
EXPIRY_DAYS = (date(2029, 1, 1), date(2030, 1, 1), date(2032, 1, 1))
EXPIRY_YEARS = 5  # the default rule set's


class World:
    """One event loop and engine for all machines, and the reference rows they share."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.engine = make_engine(normalise_database_url(url))
        self.activity = uuid.uuid4()
        self.target = f"sm-{uuid.uuid4().hex[:8]}"
        self.run(self._arrange())

    def run(self, work: Any) -> Any:
        return self.loop.run_until_complete(work)

    async def _arrange(self) -> None:
        async with AsyncSession(self.engine) as db, db.begin():
            db.add(
                Activity(
                    id=self.activity,
                    title="状态机测试",
                    kind="lecture",
                    category_code="law",
                    mode="offline",
                    host_unit="410711",
                    host_unit_path="/410711/",
                    created_by="test",
                )
            )
            db.add(
                ConversionTarget(
                    code=self.target,
                    name_zh="测试",
                    name_en="Test",
                    unit_zh="份",
                    requirements=[{"hundredths": PRICE, "categories": None}],
                    max_units_per_request=1,
                    max_units_per_year=None,
                    cancel_window_days=30,
                )
            )

    def close(self) -> None:
        self.run(self.engine.dispose())
        self.loop.close()


@pytest.fixture(scope="module")
def world(credits_db: str) -> Iterator[World]:
    made = World(credits_db)
    yield made
    made.close()


class LedgerMachine(RuleBasedStateMachine):
    """The real ledger, one learner per run, inside a transaction rolled back at the end."""

    world: World
    records = Bundle("records")
    approved = Bundle("approved")

    def __init__(self) -> None:
        super().__init__()
        self.learner = uuid.uuid4()
        self.days = itertools.count()
        self.keys = itertools.count()
        # the model: entitled (live records) by year, spent (live conversions), expired,
        # balance, and the last year an expiry run expired credits of (per category)
        self.entitled: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.last_expired_year: dict[str, int] = {}
        self.spent: dict[str, int] = defaultdict(int)
        self.expired: dict[str, int] = defaultdict(int)
        self.balance: dict[str, int] = defaultdict(int)
        self.debits: dict[uuid.UUID, dict[str, int]] = {}
        self.world.run(self._open())

    async def _open(self) -> None:
        self.connection = await self.world.engine.connect()
        self.outer = await self.connection.begin()
        self.db = AsyncSession(
            bind=self.connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )

    def teardown(self) -> None:
        async def close() -> None:
            report = await reconciliation.reconcile(self.db, [self.learner])
            assert report.healthy, report.discrepancies
            await self.db.close()
            await self.outer.rollback()
            await self.connection.close()

        self.world.run(close())

    def step(self, work: Any) -> Any:
        """Run one operation in a savepoint: a refused one leaves nothing behind."""

        async def guarded() -> Any:
            async with self.db.begin_nested():
                return await work()

        return self.world.run(guarded())

    # ---- rules ---------------------------------------------------------------------

    def _later(self, category: str, last_year: int) -> int:
        """What the live records earned after ``last_year``."""
        return sum(n for year, n in self.entitled[category].items() if year > last_year)

    @rule(target=records, category=st.sampled_from(CATEGORIES), year=st.sampled_from(YEARS))
    def learn(self, category: str, year: int) -> tuple[int, str, int]:
        start = datetime(year, 1, 2, 1, tzinfo=UTC) + timedelta(days=next(self.days))

        async def work() -> int:
            record = LearningRecord(
                learner_id=self.learner,
                activity_id=self.world.activity,
                category_code=category,
                mode="offline",
                host_unit_path="/410711/",
                source="check_in",
                started_at=start,
                ended_at=start + timedelta(minutes=300),
                minutes=300,
                status="verified",
                status_changed_by="test",
            )
            self.db.add(record)
            await self.db.flush()
            await settlement.settle(self.db, [self.learner], actor="machine")
            assert record.id is not None
            return record.id

        record_id = self.step(work)
        self.entitled[category][year] += PER_RECORD
        self.balance[category] += PER_RECORD
        return record_id, category, year

    @rule(record=consumes(records))
    def void(self, record: tuple[int, str, int]) -> None:
        record_id, category, year = record

        async def work() -> None:
            await ledger.lock_learners(self.db, [self.learner])
            found = await self.db.get(LearningRecord, record_id)
            assert found is not None
            found.status = "voided"
            await self.db.flush()
            await settlement.settle(self.db, [self.learner], actor="machine")

        self.step(work)
        # of a year an expiry run expired credits of: those credits were spent, expired, or
        # are still held (recorded after the run). Without this record the spending would
        # stand and the runs would have expired less, so the take-back comes out of the old
        # credits still held, then out of what expired (given back), then out of the balance;
        # the rest is written off
        last_year = self.last_expired_year.get(category)
        if last_year is not None and year <= last_year:
            still_held = max(0, self.balance[category] - self._later(category, last_year))
            back = max(0, min(self.expired[category], PER_RECORD - still_held))
            self.expired[category] -= back
            self.balance[category] += back
        self.entitled[category][year] -= PER_RECORD
        self.balance[category] = max(0, self.balance[category] - PER_RECORD)  # rest written off

    @rule(target=approved)
    def convert(self) -> uuid.UUID | None:
        key = f"k{next(self.keys)}"

        async def work() -> uuid.UUID:
            applied = await conversions.apply(
                session=self.db,
                learner_id=self.learner,
                unit_path="/410711/",
                data=ConversionApply(target=self.world.target),
                actor="resident",
            )
            conversion, replay = await conversions.decide(
                session=self.db,
                conversion_id=applied.id,
                approve=True,
                reason="machine",
                key=key,
                actor="college",
            )
            assert not replay and conversion.status == "approved"
            return conversion.id

        try:
            expected = allocate(dict(self.balance), [Requirement(hundredths=PRICE)])
        except Insufficient:
            with pytest.raises(InsufficientCredits):
                self.step(work)
            return None
        conversion_id = self.step(work)
        for category, amount in expected.items():
            self.balance[category] -= amount
            self.spent[category] += amount
        self.debits[conversion_id] = expected
        return conversion_id

    @rule(conversion=consumes(approved))
    def cancel(self, conversion: uuid.UUID | None) -> None:
        if conversion is None:
            return

        async def work() -> None:
            await conversions.cancel(
                session=self.db, conversion_id=conversion, reason="machine", actor="college"
            )

        self.step(work)
        for category, amount in self.debits.pop(conversion).items():
            self.spent[category] -= amount
            # given back: the debit, but never more than the learner may now hold (earned,
            # less the conversions that stand, less expired); the rest was written off when
            # its records were voided, and goes back to the write-off account
            may_hold = (
                sum(self.entitled[category].values())
                - self.spent[category]
                - self.expired[category]
            )
            self.balance[category] += max(0, min(amount, may_hold - self.balance[category]))

    @rule(day=st.sampled_from(EXPIRY_DAYS))
    def expire(self, day: date) -> None:
        async def work() -> dict[str, int]:
            result = await expiry.run_expiry(self.db, as_of=day, dry_run=False, actor="machine")
            return {
                line.category: line.hundredths
                for line in result.lines
                if line.learner_id == self.learner
            }

        done = self.step(work)
        last_year = day.year - EXPIRY_YEARS - 1
        for category in CATEGORIES:
            # first earned, first spent: the balance holds the newest credits, and what it
            # holds beyond the credits earned after the last expired year expires
            due = max(0, self.balance[category] - max(0, self._later(category, last_year)))
            assert done.get(category, 0) == due, (category, done, due)
            self.balance[category] -= due
            self.expired[category] += due
            if due:
                seen = self.last_expired_year.get(category, last_year)
                self.last_expired_year[category] = max(seen, last_year)

    # ---- invariants ----------------------------------------------------------------

    @invariant()
    def balances_match_the_model(self) -> None:
        stored = self.world.run(ledger.balances(self.db, self.learner))
        for category in CATEGORIES:
            assert stored.get(category, 0) == self.balance[category], (category, stored)
            assert self.balance[category] >= 0

    @invariant()
    def nothing_expired_that_was_not_earned(self) -> None:
        for category in CATEGORIES:
            last_year = self.last_expired_year.get(category)
            if last_year is None:
                assert self.expired[category] == 0
                continue
            old = sum(n for year, n in self.entitled[category].items() if year <= last_year)
            assert 0 <= self.expired[category] <= old, (category, self.expired, old)

    @invariant()
    def every_transaction_sums_to_zero(self) -> None:
        async def sums() -> list[int]:
            rows = await self.db.execute(
                select(CreditPosting.transaction_id, ledger_sum())
                .join(LedgerTransaction, LedgerTransaction.id == CreditPosting.transaction_id)
                .where(LedgerTransaction.learner_id == self.learner)
                .group_by(CreditPosting.transaction_id)
            )
            return [int(total) for _, total in rows.all()]

        assert all(total == 0 for total in self.world.run(sums()))


def ledger_sum() -> Any:
    from sqlalchemy import func

    return func.sum(SIGNED_AMOUNT)


def test_ledger_agrees_with_a_model_of_balances(
    world: World, credits_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # expiry runs that post may not be dated after today: here every day of a run is past
    monkeypatch.setattr(expiry, "beijing_today", lambda: max(EXPIRY_DAYS))
    runs = 1000 if credits_db.startswith("postgresql") else 100
    LedgerMachine.world = world
    machine = LedgerMachine.TestCase
    machine.settings = settings(
        max_examples=runs,
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    machine().runTest()

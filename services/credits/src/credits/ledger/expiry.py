"""Expiry (学分过期): unspent credits older than the rules allow go to the expiry account.

First earned, first spent: what an account holds is its newest credits, so on a day of
expiry the part of the balance beyond what was earned after the last expired year expires
(:func:`credits.rules.engine.expiring_hundredths`). An expiry run posts one ``expiry``
transaction per account, referenced ``expiry:<day>``, citing the rule version in force.

When a settlement later takes back credits of years an expiry run has expired (a record
found false after its credits expired), the take-back comes out of what expired before it
touches the learner's credits still good: the excess expiry is reversed by an ``expiry``
transaction debiting the expiry account and crediting the learner's, citing the run it
reverses (:func:`excess_expired`, called by :mod:`credits.ledger.settlement`). What expired
of an account therefore never exceeds what the expired years earned.

A run that posts may not be dated after today (Beijing time): what it takes is not given back.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

from sqlalchemy import func
from sqlalchemy import select as sql_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from credits.ledger import holdings
from credits.ledger import service as ledger
from credits.ledger.models import CreditPosting, CreditSource, LedgerAccount, LedgerTransaction
from credits.ledger.schemas import ExpiryLine, ExpiryResult
from credits.ledger.service import Draft, Leg, Source
from credits.rules import engine
from credits.rules import service as rules
from kernel.problems import PROBLEMS, DomainError

CHINA = timezone(timedelta(hours=8))  # the Muye day is a Beijing one
REFERENCE = "expiry:"  # an expiry run's transactions: "expiry:<as_of>"


class ExpiryInTheFuture(DomainError):
    """An expiry run (not a dry run) dated after today: what it takes cannot be given back."""

    type = PROBLEMS + "expiry-in-the-future"
    status = 422
    title = "Expiry run in the future"


def beijing_today(now: datetime | None = None) -> date:
    """The Beijing day of ``now`` (the current instant when None)."""
    return (now or datetime.now(UTC)).astimezone(CHINA).date()


Earned = dict[tuple[uuid.UUID, str], dict[int, int]]


async def _earned_by_year(session: AsyncSession, learners: Sequence[uuid.UUID]) -> Earned:
    """Per (learner, category), the credits earned (net of corrections) by Beijing year."""
    earned: Earned = defaultdict(dict)
    year = func.extract("year", col(CreditSource.earned_on))
    for learner, category, y, amount in await session.execute(
        sql_select(
            col(CreditSource.learner_id),
            col(CreditSource.category_code),
            year,
            func.sum(col(CreditSource.amount_hundredths)),
        )
        .where(ledger.one_of(session, col(CreditSource.learner_id), list(learners)))
        .group_by(col(CreditSource.learner_id), col(CreditSource.category_code), year)
    ):
        earned[(learner, category)][int(y)] = int(amount)
    return earned


async def run_expiry(
    session: AsyncSession, *, as_of: date, dry_run: bool, actor: str
) -> ExpiryResult:
    """Expire what is due on ``as_of`` under the rule version in force that day.

    A run that posts may not be dated after today (Beijing): it would expire credits the
    rules keep spendable, for good. A dry run may look ahead (what will expire on a day).
    """
    today = beijing_today()
    if not dry_run and as_of > today:
        raise ExpiryInTheFuture(
            f"An expiry run cannot be dated after today ({today.isoformat()}, Beijing time);"
            " a dry run can.",
            detail_zh=f"过期处理的日期不能晚于今天（北京时间 {today.isoformat()}），试算可以。",
        )
    version = engine.version_for(await rules.published_rulesets(session), as_of)
    years = version.expiry_years if version is not None else None
    result = ExpiryResult(
        as_of=as_of, dry_run=dry_run, expiry_years=years, lines=[], total_hundredths=0
    )
    if years is None:
        return result
    last_year = as_of.year - years - 1
    candidates = sorted(
        set(
            (
                await session.execute(
                    sql_select(col(CreditSource.learner_id))
                    .where(col(CreditSource.earned_on) < date(last_year + 1, 1, 1))
                    .group_by(col(CreditSource.learner_id))
                )
            ).scalars()
        )
    )
    if not dry_run:
        candidates = await ledger.lock_learners(session, candidates)
    if not candidates:
        return result
    earned = await _earned_by_year(session, candidates)
    # the balance says what was spent and expired before (first earned, first spent): not
    # the conversions that stand, which may have been paid for by a write-off since
    accounts = await ledger.learner_accounts(session, candidates)
    expiry_account = await ledger.system_account(session, "expiry")
    drafts: list[Draft] = []
    for (learner, category), account in sorted(
        accounts.items(), key=lambda kv: (kv[0][0], kv[0][1])
    ):
        assert account.id is not None
        amount = engine.expiring_hundredths(
            earned_by_year=earned.get((learner, category), {}),
            balance=account.balance_hundredths,
            expiry_years=years,
            today=as_of,
        )
        if amount <= 0:
            continue
        result.lines.append(ExpiryLine(learner_id=learner, category=category, hundredths=amount))
        drafts.append(
            Draft(
                kind="expiry",
                learner_id=learner,
                created_by=actor,
                legs=[Leg(account.id, "debit", amount), Leg(expiry_account, "credit", amount)],
                rule_version_id=version.version_id if version else None,
                reference=f"{REFERENCE}{as_of.isoformat()}",
                memo=f"credits earned in {last_year} or before, unspent",
            )
        )
    result.total_hundredths = sum(line.hundredths for line in result.lines)
    if not dry_run:
        await ledger.write(session, drafts)
    return result


@dataclass(frozen=True)
class Excess:
    """Expiry of one account to reverse: ``amount``, the last expiry run's transaction."""

    amount: int
    last_expiry_id: int


async def _last_runs(
    session: AsyncSession, learners: Sequence[uuid.UUID], versions: Sequence[engine.RuleSet]
) -> dict[tuple[uuid.UUID, str], tuple[int, int]]:
    """Per (learner, category), the latest year expiry runs expired credits of, and the id of
    the latest of those runs' transactions (reversals of expiry credit the account: left out).
    """
    rows = await session.execute(
        sql_select(
            col(LedgerTransaction.id),
            col(LedgerTransaction.reference),
            col(LedgerTransaction.rule_version_id),
            col(LedgerAccount.learner_id),
            col(LedgerAccount.category_code),
        )
        .select_from(CreditPosting)
        .join(LedgerTransaction, col(LedgerTransaction.id) == col(CreditPosting.transaction_id))
        .join(LedgerAccount, col(LedgerAccount.id) == col(CreditPosting.account_id))
        .where(
            col(LedgerTransaction.kind) == "expiry",
            col(LedgerAccount.kind) == "learner",
            col(CreditPosting.side) == "debit",
            ledger.one_of(session, col(LedgerAccount.learner_id), list(learners)),
        )
    )
    years_of = {v.version_id: v.expiry_years for v in versions}
    runs: dict[tuple[uuid.UUID, str], tuple[int, int]] = {}
    for tid, reference, version_id, learner, category in rows.all():
        if reference is None or not reference.startswith(REFERENCE) or learner is None:
            continue
        as_of = date.fromisoformat(reference.removeprefix(REFERENCE))
        years = years_of.get(version_id) if version_id is not None else None
        if years is None:
            in_force = engine.version_for(versions, as_of)
            years = in_force.expiry_years if in_force is not None else None
        if years is None:
            continue
        last_year = as_of.year - years - 1
        pair = (learner, str(category))
        seen = runs.get(pair)
        runs[pair] = (
            max(last_year, seen[0]) if seen else last_year,
            max(int(tid or 0), seen[1]) if seen else int(tid or 0),
        )
    return runs


async def excess_expired(
    session: AsyncSession,
    lines: Sequence[tuple[uuid.UUID, Sequence[Source]]],
    balances: Mapping[tuple[uuid.UUID, str], int],
    versions: Sequence[engine.RuleSet],
) -> dict[tuple[uuid.UUID, str], Excess]:
    """The expiry to reverse per (learner, category) when ``lines`` (a settlement's provenance
    lines, per learner; ``balances`` the accounts' before it) take back credits of years an
    expiry run has expired credits of.

    Of the credits those years earned, each was spent, expired, or is still held (first
    earned, first spent: what the balance holds beyond the later years' earnings, come after
    the last run). Had the credits taken back never been granted, the spending would stand and
    the runs would have expired less: expiry is what was left over. So the take-back comes out
    of the old credits still held first, then out of what expired (reversed here, back to the
    learner's account), and only the rest out of the balance and the write-off (settlement).
    Callers hold the learners' locks.
    """
    taking = {
        (learner, line.category) for learner, mine in lines for line in mine if line.amount < 0
    }
    if not taking:
        return {}
    expired = await holdings.expired(session, sorted({learner for learner, _ in taking}))
    taking = {pair for pair in taking if expired.get(pair, 0) > 0}
    if not taking:
        return {}
    learners = sorted({learner for learner, _ in taking})
    runs = await _last_runs(session, learners, versions)
    earned = await _earned_by_year(session, learners)
    moved: dict[tuple[uuid.UUID, str], dict[int, int]] = defaultdict(dict)
    for learner, mine in lines:
        for line in mine:
            if (learner, line.category) in taking:
                by_year = moved[(learner, line.category)]
                by_year[line.earned_on.year] = by_year.get(line.earned_on.year, 0) + line.amount
    found: dict[tuple[uuid.UUID, str], Excess] = {}
    for pair in sorted(taking):
        run = runs.get(pair)
        if run is None:
            continue
        last_year, last_id = run
        taken = -sum(amount for year, amount in moved[pair].items() if year <= last_year)
        later = sum(amount for year, amount in earned.get(pair, {}).items() if year > last_year)
        still_held = max(0, balances.get(pair, 0) - max(0, later))
        excess = min(expired[pair], taken - still_held)
        if excess > 0:
            found[pair] = Excess(amount=excess, last_expiry_id=last_id)
    return found

"""Expiry (学分过期): unspent credits older than the rules allow go to the expiry account.

First earned, first spent: what an account holds is its newest credits, so on a day of
expiry the part of the balance beyond what was earned after the last expired year expires
(:func:`credits.rules.engine.expiring_hundredths`). An expiry run posts one ``expiry``
transaction per account, referenced ``expiry:<day>``, citing the rule version in force.

When a settlement later takes back credits of years an expiry run has expired (a record
found false after its credits expired), the take-back comes out of what expired before it
touches the learner's credits still good: the excess expiry is reversed by ``expiry``
transactions debiting the expiry account and crediting the learner's, one per run that expired
those years' credits, each citing that run and giving back no more than it expired
(:func:`excess_expired`, called by :mod:`credits.ledger.settlement`). What expired of an
account therefore never exceeds what the expired years earned.

A run that posts may not be dated after today (Beijing time): what it takes is not given back.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

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
from credits.rules.engine import beijing_today
from kernel.problems import PROBLEMS, DomainError

REFERENCE = "expiry:"  # an expiry run's transactions: "expiry:<as_of>"


class ExpiryInTheFuture(DomainError):
    """An expiry run (not a dry run) dated after today: what it takes cannot be given back."""

    type = PROBLEMS + "expiry-in-the-future"
    status = 422
    title = "Expiry run in the future"


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
    """Expiry of one account to reverse: ``amount`` in all, as ``parts`` (the id of an expiry
    run's transaction, what to give back of what it expired), one reversal per run."""

    amount: int
    parts: tuple[tuple[int, int], ...]


@dataclass
class _Run:
    """One expiry run's transaction on a learner account: the last year it expired credits
    of, what it took from the account and what reversals citing it gave back since."""

    id: int
    as_of: date
    last_year: int
    expired: int
    reversed: int = 0

    @property
    def left(self) -> int:
        """What may still be given back of what this run expired."""
        return max(0, self.expired - self.reversed)


async def _runs(
    session: AsyncSession, learners: Sequence[uuid.UUID], versions: Sequence[engine.RuleSet]
) -> dict[tuple[uuid.UUID, str], list[_Run]]:
    """Per (learner, category), the expiry runs that took credits from the account, first run
    first (by day, then by id), each with what reversals citing it gave back."""
    rows = await session.execute(
        sql_select(
            col(LedgerTransaction.id),
            col(LedgerTransaction.reference),
            col(LedgerTransaction.rule_version_id),
            col(LedgerTransaction.reverses_id),
            col(CreditPosting.side),
            col(CreditPosting.amount_hundredths),
            col(LedgerAccount.learner_id),
            col(LedgerAccount.category_code),
        )
        .select_from(CreditPosting)
        .join(LedgerTransaction, col(LedgerTransaction.id) == col(CreditPosting.transaction_id))
        .join(LedgerAccount, col(LedgerAccount.id) == col(CreditPosting.account_id))
        .where(
            col(LedgerTransaction.kind) == "expiry",
            col(LedgerAccount.kind) == "learner",
            ledger.one_of(session, col(LedgerAccount.learner_id), list(learners)),
        )
    )
    years_of = {v.version_id: v.expiry_years for v in versions}
    runs: dict[tuple[uuid.UUID, str], dict[int, _Run]] = defaultdict(dict)
    given_back: dict[tuple[tuple[uuid.UUID, str], int], int] = defaultdict(int)
    for tid, reference, version_id, reverses_id, side, amount, learner, category in rows.all():
        if learner is None or tid is None:
            continue
        pair = (learner, str(category))
        if side == "credit":  # a reversal of expiry, back to the learner's account
            if reverses_id is not None:
                given_back[(pair, int(reverses_id))] += int(amount)
            continue
        if reference is None or not reference.startswith(REFERENCE):
            continue
        as_of = date.fromisoformat(reference.removeprefix(REFERENCE))
        years = years_of.get(version_id) if version_id is not None else None
        if years is None:
            in_force = engine.version_for(versions, as_of)
            years = in_force.expiry_years if in_force is not None else None
        if years is None:
            continue
        run = runs[pair].setdefault(
            int(tid), _Run(id=int(tid), as_of=as_of, last_year=as_of.year - years - 1, expired=0)
        )
        run.expired += int(amount)
    for (pair, run_id), amount in given_back.items():
        if run_id in runs.get(pair, {}):
            runs[pair][run_id].reversed += amount
    return {
        pair: sorted(by_id.values(), key=lambda run: (run.as_of, run.id))
        for pair, by_id in runs.items()
    }


def _attribute(
    excess: int, taken: Mapping[int, int], runs: Sequence[_Run]
) -> list[tuple[int, int]]:
    """Share ``excess`` (expiry to give back) among the ``runs`` that expired the years taken
    back (``taken``: per year, the credits taken back), as (run id, amount), first run first.

    Credits of a year were expired by the first run whose last expired year is that year or
    later; what that run has left to give back exhausted, by the next such run (a credit of
    the year recorded after the first run expired with a later one). The oldest years taken
    back come out of expiry first: the old credits still held are the newest (first earned,
    first spent), and they are taken before expiry is. No run gives back more than it expired
    less what reversals citing it gave back already.
    """
    left = {run.id: run.left for run in runs}
    parts: dict[int, int] = defaultdict(int)
    for year in sorted(taken):
        share = min(taken[year], excess)
        for run in runs:
            if share <= 0:
                break
            if run.last_year < year:
                continue
            amount = min(share, left[run.id])
            if amount > 0:
                parts[run.id] += amount
                left[run.id] -= amount
                share -= amount
                excess -= amount
        if excess <= 0:
            break
    order = {run.id: n for n, run in enumerate(runs)}
    return sorted(parts.items(), key=lambda part: order[part[0]])


async def excess_expired(
    session: AsyncSession,
    lines: Sequence[tuple[uuid.UUID, Sequence[Source]]],
    balances: Mapping[tuple[uuid.UUID, str], int],
    versions: Sequence[engine.RuleSet],
) -> dict[tuple[uuid.UUID, str], Excess]:
    """The expiry to reverse per (learner, category) when ``lines`` (a settlement's provenance
    lines, per learner; ``balances`` the accounts' before it) take back credits of years an
    expiry run has expired credits of, shared among the runs that expired them.

    Of the credits those years earned, each was spent, expired, or is still held (first
    earned, first spent: what the balance holds beyond the later years' earnings, come after
    the last run). Had the credits taken back never been granted, the spending would stand and
    the runs would have expired less: expiry is what was left over. So the take-back comes out
    of the old credits still held first, then out of what expired (reversed here, back to the
    learner's account, one reversal per run citing it: :func:`_attribute`), and only the rest
    out of the balance and the write-off (settlement). Callers hold the learners' locks.
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
    runs = await _runs(session, learners, versions)
    earned = await _earned_by_year(session, learners)
    moved: dict[tuple[uuid.UUID, str], dict[int, int]] = defaultdict(dict)
    for learner, mine in lines:
        for line in mine:
            if (learner, line.category) in taking:
                by_year = moved[(learner, line.category)]
                by_year[line.earned_on.year] = by_year.get(line.earned_on.year, 0) + line.amount
    found: dict[tuple[uuid.UUID, str], Excess] = {}
    for pair in sorted(taking):
        of_pair = runs.get(pair)
        if not of_pair:
            continue
        last_year = max(run.last_year for run in of_pair)
        # per year expired, the credits taken back (net of those given in the same settlement)
        taken = {
            year: -amount
            for year, amount in moved[pair].items()
            if year <= last_year and amount < 0
        }
        net_taken = -sum(amount for year, amount in moved[pair].items() if year <= last_year)
        later = sum(amount for year, amount in earned.get(pair, {}).items() if year > last_year)
        still_held = max(0, balances.get(pair, 0) - max(0, later))
        excess = min(expired[pair], net_taken - still_held)
        if excess <= 0:
            continue
        # what no run has left to give back is not given back: the settlement takes it from
        # the balance and writes the rest off, as if nothing had expired. On a consistent
        # ledger there is none; there is when a reversal cites a run that did not expire what
        # it gave back (those written before reversals cited their own run, or altered since:
        # reconciliation's ``expiry_reversal`` check)
        parts = _attribute(excess, taken, of_pair)
        if parts:
            found[pair] = Excess(amount=sum(amount for _, amount in parts), parts=tuple(parts))
    return found

"""Expiry (学分过期): unspent credits older than the rules allow go to the expiry account."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date

from sqlalchemy import func
from sqlalchemy import select as sql_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from credits.ledger import holdings
from credits.ledger import service as ledger
from credits.ledger.models import CreditSource
from credits.ledger.schemas import ExpiryLine, ExpiryResult
from credits.ledger.service import Draft, Leg
from credits.rules import engine
from credits.rules import service as rules


async def run_expiry(
    session: AsyncSession, *, as_of: date, dry_run: bool, actor: str
) -> ExpiryResult:
    """Expire what is due on ``as_of`` under the rule version in force that day."""
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
    earned: dict[tuple[uuid.UUID, str], dict[int, int]] = defaultdict(dict)
    year = func.extract("year", col(CreditSource.earned_on))
    for learner, category, y, amount in await session.execute(
        sql_select(
            col(CreditSource.learner_id),
            col(CreditSource.category_code),
            year,
            func.sum(col(CreditSource.amount_hundredths)),
        )
        .where(col(CreditSource.learner_id).in_(candidates))
        .group_by(col(CreditSource.learner_id), col(CreditSource.category_code), year)
    ):
        earned[(learner, category)][int(y)] = int(amount)
    # what expired before, and the debits of the conversions that stand (read from the
    # conversions: a cancellation that reversed a write-off gave the account back less than
    # was debited, yet spends nothing)
    expired = await holdings.expired(session, candidates)
    spent = await holdings.converted(session, candidates)
    accounts = await ledger.learner_accounts(session, candidates)
    expiry_account = await ledger.system_account(session, "expiry")
    drafts: list[Draft] = []
    for (learner, category), account in sorted(
        accounts.items(), key=lambda kv: (kv[0][0], kv[0][1])
    ):
        assert account.id is not None
        amount = engine.expiring_hundredths(
            earned_by_year=earned.get((learner, category), {}),
            spent=spent.get((learner, category), 0),
            expired=expired.get((learner, category), 0),
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
                reference=f"expiry:{as_of.isoformat()}",
                memo=f"credits earned in {last_year} or before, unspent",
            )
        )
    result.total_hundredths = sum(line.hundredths for line in result.lines)
    if not dry_run:
        await ledger.write(session, drafts)
    return result

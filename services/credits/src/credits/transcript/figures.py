"""The e-portfolio's figures, summed in SQL: what the transcript prints and the CLR carries.

- hours: learning records not rejected or voided (verified and pending), by Beijing year,
  category and mode; pending minutes are also given apart;
- earned: the credits the ledger granted for records, completion awards and certifications,
  net of corrections (the sum of the learner's provenance lines);
- converted: credits debited by conversions, net of cancellations (postings);
- expired, written off: debited by expiry runs; taken back after they were spent (postings);
- held: the balance of the learner's accounts. held = earned + written off - converted - expired.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func
from sqlalchemy import select as sql_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from credits.activities.models import Activity
from credits.catalogue.models import ActivityCategory
from credits.certification.models import Certification, CertificationStandard
from credits.conversion.models import Conversion, ConversionTarget
from credits.ledger.models import CreditPosting, CreditSource, LedgerAccount, LedgerTransaction
from credits.ledger.service import SIGNED_AMOUNT
from credits.records.models import LearningRecord
from credits.records.service import local_year
from kernel.clock import aware, aware_utc

COUNTED_STATUSES = ("verified", "pending")
MODE_NAMES = {"offline": "线下", "online": "线上", "blended": "混合"}


@dataclass(frozen=True)
class HoursLine:
    """Minutes of learning in one Beijing year, category and mode."""

    year: int
    category: str
    category_name: str
    mode: str
    minutes: int


@dataclass(frozen=True)
class CertificationLine:
    """An approved certification and the credits it brought."""

    id: uuid.UUID
    title: str
    issuer: str
    standard_name: str
    outcome_type: str
    category: str | None
    hundredths: int
    approved_at: datetime


@dataclass(frozen=True)
class ConversionLine:
    """An approved (not cancelled) conversion and the credits it spent."""

    id: uuid.UUID
    target: str
    target_name: str
    units: int
    unit_name: str
    hundredths: int
    approved_at: datetime


@dataclass(frozen=True)
class AwardLine:
    """A completion award the learner holds (net of corrections)."""

    key: str
    activity_id: uuid.UUID
    activity_title: str
    category: str
    hundredths: int
    earned_on: date


@dataclass
class Figures:
    """Everything the transcript and the CLR state about one learner."""

    hours: list[HoursLine] = field(default_factory=list)
    pending_minutes: int = 0
    earned: int = 0
    earned_by_category: dict[str, int] = field(default_factory=dict)
    category_names: dict[str, str] = field(default_factory=dict)
    converted: int = 0
    expired: int = 0
    written_off: int = 0
    held: int = 0
    certifications: list[CertificationLine] = field(default_factory=list)
    conversions: list[ConversionLine] = field(default_factory=list)
    awards: list[AwardLine] = field(default_factory=list)

    @property
    def total_minutes(self) -> int:
        """All counted minutes."""
        return sum(line.minutes for line in self.hours)

    def minutes_by_category(self) -> dict[str, int]:
        """Counted minutes per category."""
        out: dict[str, int] = defaultdict(int)
        for line in self.hours:
            out[line.category] += line.minutes
        return dict(out)


async def _ledger_sums(session: AsyncSession, learner: uuid.UUID) -> dict[str, int]:
    """Signed postings (credits minus debits) of the learner's transactions, by kind and
    account kind."""
    rows = await session.execute(
        sql_select(col(LedgerTransaction.kind), col(LedgerAccount.kind), func.sum(SIGNED_AMOUNT))
        .select_from(CreditPosting)
        .join(LedgerTransaction, col(LedgerTransaction.id) == col(CreditPosting.transaction_id))
        .join(LedgerAccount, col(LedgerAccount.id) == col(CreditPosting.account_id))
        .where(
            col(LedgerTransaction.learner_id) == learner,
            col(LedgerAccount.kind).in_(("learner", "writeoff")),
        )
        .group_by(col(LedgerTransaction.kind), col(LedgerAccount.kind))
    )
    return {f"{t}/{a}": int(s) for t, a, s in rows.all()}


async def gather(session: AsyncSession, learner: uuid.UUID) -> Figures:
    """The learner's figures, each summed by the database."""
    figures = Figures()
    figures.category_names = dict(
        (
            await session.execute(
                sql_select(col(ActivityCategory.code), col(ActivityCategory.name_zh))
            )
        ).all()
    )
    year = local_year(session)
    rows = await session.execute(
        sql_select(
            year,
            col(LearningRecord.category_code),
            col(LearningRecord.mode),
            func.sum(col(LearningRecord.minutes)),
        )
        .where(
            col(LearningRecord.learner_id) == learner,
            col(LearningRecord.status).in_(COUNTED_STATUSES),
        )
        .group_by(year, col(LearningRecord.category_code), col(LearningRecord.mode))
        .order_by(year, col(LearningRecord.category_code), col(LearningRecord.mode))
    )
    figures.hours = [
        HoursLine(int(y), c, figures.category_names.get(c, c), m, int(total))
        for y, c, m, total in rows.all()
    ]
    figures.pending_minutes = int(
        (
            await session.execute(
                sql_select(func.coalesce(func.sum(col(LearningRecord.minutes)), 0)).where(
                    col(LearningRecord.learner_id) == learner,
                    col(LearningRecord.status) == "pending",
                )
            )
        ).scalar_one()
    )
    earned = await session.execute(
        sql_select(col(CreditSource.category_code), func.sum(col(CreditSource.amount_hundredths)))
        .where(col(CreditSource.learner_id) == learner)
        .group_by(col(CreditSource.category_code))
    )
    figures.earned_by_category = {c: int(s) for c, s in earned.all() if int(s)}
    figures.earned = sum(figures.earned_by_category.values())
    sums = await _ledger_sums(session, learner)
    # a cancellation gives back to the account, and to the write-off account what was taken
    # back meanwhile: both undo the conversion
    figures.converted = -(
        sums.get("conversion/learner", 0)
        + sums.get("conversion_cancel/learner", 0)
        + sums.get("conversion_cancel/writeoff", 0)
    )
    figures.expired = -sums.get("expiry/learner", 0)
    figures.written_off = -sum(v for k, v in sums.items() if k.endswith("/writeoff"))
    figures.held = int(
        (
            await session.execute(
                sql_select(func.coalesce(func.sum(col(LedgerAccount.balance_hundredths)), 0)).where(
                    col(LedgerAccount.learner_id) == learner, col(LedgerAccount.kind) == "learner"
                )
            )
        ).scalar_one()
    )
    await _achievements(session, learner, figures)
    return figures


async def _achievements(session: AsyncSession, learner: uuid.UUID, figures: Figures) -> None:
    certifications = await session.execute(
        sql_select(Certification, col(CertificationStandard.name_zh))
        .join(
            CertificationStandard, col(CertificationStandard.id) == col(Certification.standard_id)
        )
        .where(col(Certification.learner_id) == learner, col(Certification.status) == "approved")
        .order_by(col(Certification.reviewed_at))
    )
    for certification, standard_name in certifications.all():
        figures.certifications.append(
            CertificationLine(
                id=certification.id,
                title=certification.title,
                issuer=certification.issuer,
                standard_name=standard_name,
                outcome_type=certification.outcome_type,
                category=certification.category_code,
                hundredths=int(certification.hundredths or 0),
                approved_at=aware_utc(
                    aware(certification.reviewed_at) or certification.submitted_at
                ),
            )
        )
    conversions = await session.execute(
        sql_select(Conversion, col(ConversionTarget.name_zh), col(ConversionTarget.unit_zh))
        .join(ConversionTarget, col(ConversionTarget.code) == col(Conversion.target_code))
        .where(col(Conversion.learner_id) == learner, col(Conversion.status) == "approved")
        .order_by(col(Conversion.decided_at))
    )
    for conversion, target_name, unit_name in conversions.all():
        figures.conversions.append(
            ConversionLine(
                id=conversion.id,
                target=conversion.target_code,
                target_name=target_name,
                units=conversion.units,
                unit_name=unit_name,
                hundredths=sum(int(v) for v in conversion.debits.values()),
                approved_at=aware_utc(aware(conversion.decided_at) or conversion.applied_at),
            )
        )
    awards = await session.execute(
        sql_select(
            col(CreditSource.key),
            col(CreditSource.category_code),
            func.sum(col(CreditSource.amount_hundredths)),
            func.max(col(CreditSource.earned_on)),
        )
        .where(
            col(CreditSource.learner_id) == learner,
            col(CreditSource.key).startswith("completion:"),
        )
        .group_by(col(CreditSource.key), col(CreditSource.category_code))
        .order_by(col(CreditSource.key))
    )
    held = [(k, c, int(s), d) for k, c, s, d in awards.all() if int(s) > 0]
    ids = [uuid.UUID(k.split(":", 1)[1]) for k, *_ in held]
    titles = dict(
        (
            await session.execute(
                sql_select(col(Activity.id), col(Activity.title)).where(col(Activity.id).in_(ids))
            )
        ).all()
    )
    for (key, category, amount, earned_on), activity in zip(held, ids, strict=True):
        figures.awards.append(
            AwardLine(
                key=key,
                activity_id=activity,
                activity_title=titles.get(activity, str(activity)),
                category=category,
                hundredths=amount,
                earned_on=earned_on,
            )
        )

"""The credit ledger (学分账户): accounts, balanced transactions, postings and their provenance.

Double entry: a :class:`LedgerTransaction` has :class:`CreditPosting` legs whose debits equal
their credits (a deferred constraint trigger on PostgreSQL, checked before commit everywhere).
Postings, transactions and provenance rows are append only: triggers refuse UPDATE and DELETE,
and a correction is a new transaction. A learner account's balance is kept by a trigger on
posting insert and can never go below zero (CHECK constraint).

Accounts: the college's ``issuing`` account (credits come from it), each learner's ``learner``
account per category, and the ``conversion``, ``expiry`` and ``writeoff`` accounts credits go
to. ``points`` / ``points_issuing`` hold the volunteer incentive points, never mixed with credits.
A balance is credits minus debits.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field

from credits.db import Base

BIGINT = BigInteger().with_variant(Integer(), "sqlite")
SYSTEM_KINDS = ("issuing", "conversion", "expiry", "writeoff", "points_issuing")
HELD_KINDS = ("learner", "points")  # balances kept and never negative
ACCOUNT_KINDS = (*SYSTEM_KINDS, *HELD_KINDS)
TRANSACTION_KINDS = (
    "accrual",  # records earned credits
    "adjustment",  # a settlement with gains and losses (rule correction, changed records)
    "reversal",  # a settlement that only takes back (a voided or rejected record)
    "certification",
    "conversion",
    "conversion_cancel",
    "expiry",
    "points",
)


def _now() -> datetime:
    return datetime.now(UTC)


class LedgerAccount(Base, table=True):
    """一个账户: the issuer, a sink, or one learner's credits in one category."""

    __tablename__ = "ledger_account"
    __table_args__ = (
        CheckConstraint(
            "kind NOT IN ('learner', 'points') OR balance_hundredths >= 0", name="not_overdrawn"
        ),
        CheckConstraint(
            "kind IN (" + ", ".join(f"'{k}'" for k in ACCOUNT_KINDS) + ")", name="kind_known"
        ),
        Index(
            "uq_ledger_account_learner",
            "kind",
            "learner_id",
            "category_code",
            unique=True,
            sqlite_where=text("learner_id IS NOT NULL"),
            postgresql_where=text("learner_id IS NOT NULL"),
        ),
        Index(
            "uq_ledger_account_system",
            "kind",
            unique=True,
            sqlite_where=text("learner_id IS NULL"),
            postgresql_where=text("learner_id IS NULL"),
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(BIGINT, primary_key=True))
    kind: str = Field(max_length=16)
    learner_id: uuid.UUID | None = Field(default=None)
    category_code: str = Field(default="", max_length=40)
    # kept by the posting trigger for learner and points accounts; system accounts sum on demand
    balance_hundredths: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default="0")
    )
    created_at: datetime = Field(
        default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class LearnerLedger(Base, table=True):
    """One row per learner, locked by everything that changes the learner's credits.

    Settlement, conversion, cancellation and expiry take this lock first (FOR UPDATE), so a
    learner's balance is only ever changed by one transaction at a time, in one order.
    """

    __tablename__ = "learner_ledger"

    learner_id: uuid.UUID = Field(primary_key=True)
    settled_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class LedgerTransaction(Base, table=True):
    """记账凭证: one balanced set of postings, why it was made and by whom."""

    __tablename__ = "ledger_transaction"
    __table_args__ = (
        CheckConstraint(
            "kind IN (" + ", ".join(f"'{k}'" for k in TRANSACTION_KINDS) + ")", name="kind_known"
        ),
        Index(
            "uq_ledger_transaction_idempotency_key",
            "idempotency_key",
            unique=True,
            sqlite_where=text("idempotency_key IS NOT NULL"),
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        # a learner's history, newest first (also every lookup by learner)
        Index("ix_ledger_transaction_learner_newest", "learner_id", "id"),
        # the credit audit's periods
        Index("ix_ledger_transaction_created_at", "created_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(BIGINT, primary_key=True))
    kind: str = Field(max_length=20)
    learner_id: uuid.UUID | None = Field(default=None)
    rule_version_id: int | None = Field(default=None, foreign_key="rule_version.id")
    reverses_id: int | None = Field(
        default=None,
        sa_column=Column(BIGINT, ForeignKey("ledger_transaction.id"), nullable=True),
    )
    reference: str | None = Field(default=None, max_length=80, index=True)
    idempotency_key: str | None = Field(default=None, max_length=200)
    memo: str = Field(default="", max_length=200)
    created_by: str = Field(max_length=60)
    created_at: datetime = Field(
        default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class CreditPosting(Base, table=True):
    """分录: one leg of a transaction, a positive amount debited or credited to one account."""

    __tablename__ = "credit_posting"
    __table_args__ = (
        CheckConstraint("amount_hundredths > 0", name="amount_positive"),
        CheckConstraint("side IN ('debit', 'credit')", name="side_known"),
    )

    id: int | None = Field(default=None, sa_column=Column(BIGINT, primary_key=True))
    transaction_id: int = Field(
        sa_column=Column(BIGINT, ForeignKey("ledger_transaction.id"), nullable=False, index=True)
    )
    account_id: int = Field(
        sa_column=Column(BIGINT, ForeignKey("ledger_account.id"), nullable=False, index=True)
    )
    side: str = Field(sa_column=Column(String(6), nullable=False))
    amount_hundredths: int = Field(sa_column=Column(BigInteger, nullable=False))


class CreditSource(Base, table=True):
    """学分来源: which records and which rule clause and version a credit (or its reversal) came
    from. The sum per learner and ``key`` is what the ledger has granted for that entitlement."""

    __tablename__ = "credit_source"
    __table_args__ = (
        CheckConstraint("amount_hundredths <> 0", name="amount_not_zero"),
        Index("ix_credit_source_learner_key", "learner_id", "key"),
        # statistics by period, read from the index alone on PostgreSQL
        Index(
            "ix_credit_source_earned_on",
            "earned_on",
            postgresql_include=["key", "amount_hundredths"],
        ),
        # a unit's credits issued: one index range per unit path, read from the index alone
        Index(
            "ix_credit_source_unit_path_earned_on",
            "unit_path",
            "earned_on",
            postgresql_include=["key", "amount_hundredths"],
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(BIGINT, primary_key=True))
    transaction_id: int = Field(
        sa_column=Column(BIGINT, ForeignKey("ledger_transaction.id"), nullable=False, index=True)
    )
    learner_id: uuid.UUID
    key: str = Field(max_length=80)
    clause: str = Field(max_length=40)
    category_code: str = Field(max_length=40)
    earned_on: date = Field(sa_column=Column(Date, nullable=False))
    rule_version_id: int | None = Field(default=None, foreign_key="rule_version.id")
    amount_hundredths: int = Field(sa_column=Column(BigInteger, nullable=False))
    # a native array on PostgreSQL (written by COPY without JSON text), JSON on SQLite
    record_ids: list[int] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(BigInteger).with_variant(JSON(), "sqlite"), nullable=False),
    )
    # a certification's credits name it here instead of records
    certification_id: uuid.UUID | None = Field(default=None)
    # the unit the line counts under in the statistics: where the learning was hosted (hours
    # and completion lines: the activity's host unit) or where the certified learner lives
    # (certifications); NULL for volunteer points, which are not credits
    unit_path: str | None = Field(default=None, sa_column=Column(String(400), nullable=True))


class LedgerOutbox(Base, table=True):
    """The ledger's outbox: learners whose records changed since their last settlement.

    Filled by triggers on ``learning_record`` (every insert, every status change), in the
    same transaction as the change, so no change can be missed. ``seq`` grows on every new
    change; a settlement removes the row only if ``seq`` is still what it read before loading
    the records, so a change that lands meanwhile keeps the learner queued.
    """

    __tablename__ = "ledger_outbox"

    learner_id: uuid.UUID = Field(primary_key=True)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    queued_at: datetime = Field(
        default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )

"""Shapes of balances, ledger history, traces and the auditors' reconciliation."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field


class CategoryBalance(BaseModel):
    """A learner's credits in one category, in hundredths."""

    category: str
    balance_hundredths: int


class CreditSummary(BaseModel):
    """A learner's credit balances and points."""

    learner_id: uuid.UUID
    total_hundredths: int
    categories: list[CategoryBalance]
    points_hundredths: int
    settlement_pending: bool = Field(
        description="records changed since the last settlement: credits still to come or go"
    )


class PostingPublic(BaseModel):
    """One leg of a transaction."""

    account_kind: str
    learner_id: uuid.UUID | None
    category: str
    side: str
    amount_hundredths: int


class SourcePublic(BaseModel):
    """Where a credit (or its reversal) came from: rule clause and version, records."""

    key: str
    clause: str
    category: str
    earned_on: date
    amount_hundredths: int
    rule_version_id: int | None
    record_ids: list[int]
    certification_id: uuid.UUID | None


class TransactionPublic(BaseModel):
    """A ledger transaction with its legs and provenance."""

    id: int
    kind: str
    learner_id: uuid.UUID | None
    net_hundredths: int = Field(description="what it changed in the learner's balance")
    rule_version_id: int | None
    reverses_id: int | None
    reference: str | None
    memo: str
    created_by: str
    created_at: datetime
    postings: list[PostingPublic]
    sources: list[SourcePublic]


class SettlementResult(BaseModel):
    """What a settlement run did."""

    learners: int
    records: int
    transactions: int
    remaining_learners: int


class ExpiryRequest(BaseModel):
    """Expire unspent credits as of a day (the first day of a year, usually)."""

    model_config = ConfigDict(extra="forbid")
    as_of: date = Field(
        description="the day of the run; a run that posts may not be after today (Beijing"
        " time, 422 expiry-in-the-future), a dry run may look ahead"
    )
    dry_run: bool = True


class ExpiryLine(BaseModel):
    """Credits of one learner and category that expire."""

    learner_id: uuid.UUID
    category: str
    hundredths: int


class ExpiryResult(BaseModel):
    """What an expiry run expires."""

    as_of: date
    dry_run: bool
    expiry_years: int | None
    lines: list[ExpiryLine]
    total_hundredths: int


class Discrepancy(BaseModel):
    """One thing the reconciliation found that does not add up."""

    check: str
    subject: str
    expected: int
    actual: int
    detail: str


class ReconciliationReport(BaseModel):
    """Every balance recomputed from records and rules and compared with the ledger."""

    learners_checked: int
    unsettled_learners: int = Field(
        description="learners with records still in the outbox, settled by the worker shortly;"
        " their entitlements are checked once settled"
    )
    transactions_checked: int
    discrepancies: list[Discrepancy]
    healthy: bool

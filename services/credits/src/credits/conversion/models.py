"""Conversion targets and conversions (学分转换)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, ForeignKey, Index, Integer, text
from sqlmodel import Field

from credits.db import Base

BIGINT = BigInteger().with_variant(Integer(), "sqlite")


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), nullable=nullable)


class ConversionTarget(Base, table=True):
    """转换目标: what credits can be converted into, at what price, kept as data."""

    __tablename__ = "conversion_target"

    code: str = Field(primary_key=True, max_length=40)
    name_zh: str = Field(max_length=80)
    name_en: str = Field(max_length=80)
    unit_zh: str = Field(max_length=20)
    # per unit: [{"hundredths": int, "categories": [codes] | null}]
    requirements: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    max_units_per_request: int = Field(default=1)
    max_units_per_year: int | None = Field(default=None)
    prerequisites: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    cancel_window_days: int = Field(default=30)
    active: bool = Field(default=True)


class Conversion(Base, table=True):
    """学分转换: credits spent on a target under its rule, after the college's review.

    The debit is one ledger transaction (``transaction_id``); cancelling within the window posts
    its reversal (``cancel_transaction_id``). Nothing is ever deleted.
    """

    __tablename__ = "conversion"
    __table_args__ = (
        Index(
            "uq_conversion_approval_key",
            "approval_key",
            unique=True,
            sqlite_where=text("approval_key IS NOT NULL"),
            postgresql_where=text("approval_key IS NOT NULL"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    learner_id: uuid.UUID = Field(index=True)
    learner_unit_path: str = Field(max_length=400)
    target_code: str = Field(foreign_key="conversion_target.code", max_length=40)
    units: int
    status: str = Field(default="applied", max_length=10)
    note: str | None = Field(default=None, max_length=200)
    applied_by: str = Field(max_length=60)
    applied_at: datetime = Field(default_factory=_now, sa_column=_ts())
    decided_by: str | None = Field(default=None, max_length=60)
    decided_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    decision_reason: str | None = Field(default=None, max_length=200)
    approval_key: str | None = Field(default=None, max_length=300)
    debits: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    transaction_id: int | None = Field(
        default=None, sa_column=Column(BIGINT, ForeignKey("ledger_transaction.id"), nullable=True)
    )
    cancelled_by: str | None = Field(default=None, max_length=60)
    cancelled_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    cancel_reason: str | None = Field(default=None, max_length=200)
    cancel_transaction_id: int | None = Field(
        default=None, sa_column=Column(BIGINT, ForeignKey("ledger_transaction.id"), nullable=True)
    )

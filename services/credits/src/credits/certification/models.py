"""Certification of outcomes from elsewhere (学习成果认证): standards, submissions, evidence."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy import BigInteger, Column, Date, DateTime, ForeignKey, Integer, UniqueConstraint
from sqlmodel import Field

from credits.db import Base

BIGINT = BigInteger().with_variant(Integer(), "sqlite")


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), nullable=nullable)


class CertificationStandard(Base, table=True):
    """认定标准: credits for an outcome type and level (data; a null category: reviewer's)."""

    __tablename__ = "certification_standard"
    __table_args__ = (UniqueConstraint("outcome_type", "level"),)

    id: int | None = Field(default=None, primary_key=True)
    outcome_type: str = Field(max_length=40)
    level: str = Field(max_length=20)
    name_zh: str = Field(max_length=80)
    name_en: str = Field(max_length=100)
    hundredths: int
    category_code: str | None = Field(default=None, max_length=40)
    active: bool = Field(default=True)


class Certification(Base, table=True):
    """学习成果认证: an outcome a learner gained elsewhere, submitted with evidence and reviewed."""

    __tablename__ = "certification"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    learner_id: uuid.UUID = Field(index=True)
    learner_unit_path: str = Field(max_length=400)
    outcome_type: str = Field(max_length=40)
    level: str = Field(max_length=20)
    title: str = Field(max_length=120)
    issuer: str = Field(max_length=120)
    issued_on: date = Field(sa_column=Column(Date, nullable=False))
    category_code: str | None = Field(default=None, max_length=40)
    status: str = Field(default="submitted", max_length=10)
    submitted_by: str = Field(max_length=60)
    submitted_at: datetime = Field(default_factory=_now, sa_column=_ts())
    reviewed_by: str | None = Field(default=None, max_length=60)
    reviewed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    review_reason: str | None = Field(default=None, max_length=200)
    standard_id: int | None = Field(default=None, foreign_key="certification_standard.id")
    hundredths: int | None = Field(default=None)
    transaction_id: int | None = Field(
        default=None, sa_column=Column(BIGINT, ForeignKey("ledger_transaction.id"), nullable=True)
    )


class CertificationEvidence(Base, table=True):
    """佐证材料: one evidence file, stored by its SHA-256 outside the database."""

    __tablename__ = "certification_evidence"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    certification_id: uuid.UUID = Field(foreign_key="certification.id", index=True)
    sha256: str = Field(max_length=64)
    media_type: str = Field(max_length=40)
    size_bytes: int
    original_name: str = Field(max_length=120)
    uploaded_by: str = Field(max_length=60)
    uploaded_at: datetime = Field(default_factory=_now, sa_column=_ts())

"""Shapes of certification standards, submissions, evidence and reviews."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kernel.text import PlainText, ReasonText

OutcomeType = Literal["vocational_qualification", "mooc_certificate", "award", "prior_learning"]


class Strict(BaseModel):
    """Refuse unknown fields: a submission cannot set its status, credits or owner."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class StandardPublic(BaseModel):
    """One row of the standards table."""

    outcome_type: str
    level: str
    name_zh: str
    name_en: str
    hundredths: int
    category: str | None


class CertificationSubmit(Strict):
    """An outcome from elsewhere, submitted by the learner (or staff on their behalf)."""

    outcome_type: OutcomeType
    level: PlainText = Field(min_length=1, max_length=20)
    title: PlainText = Field(min_length=1, max_length=120)
    issuer: PlainText = Field(min_length=1, max_length=120)
    issued_on: date
    category: PlainText | None = Field(default=None, max_length=40)
    learner: uuid.UUID | None = Field(default=None, description="staff only: whose outcome")


class Review(Strict):
    """Approve or reject; the reviewer may correct the level and must name a category where
    the standard leaves it open."""

    decision: Literal["approve", "reject"]
    reason: ReasonText = Field(min_length=1, max_length=200)
    level: PlainText | None = Field(default=None, max_length=20)
    category: PlainText | None = Field(default=None, max_length=40)


class EvidencePublic(BaseModel):
    """An evidence file as listed (the content is fetched separately)."""

    id: uuid.UUID
    media_type: str
    size_bytes: int
    original_name: str
    sha256: str
    uploaded_at: datetime


class CertificationPublic(BaseModel):
    """A certification as shown."""

    id: uuid.UUID
    learner_id: uuid.UUID
    outcome_type: str
    level: str
    title: str
    issuer: str
    issued_on: date
    category: str | None
    status: str
    submitted_by: str
    submitted_at: datetime
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_reason: str | None
    hundredths: int | None
    transaction_id: int | None
    evidence: list[EvidencePublic]

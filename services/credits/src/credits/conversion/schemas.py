"""Shapes of conversion targets and conversions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kernel.text import PlainText, ReasonText


class Strict(BaseModel):
    """Refuse unknown fields (a body cannot set a status, debits or an owner)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TargetPublic(BaseModel):
    """A conversion target and its price per unit."""

    code: str
    name_zh: str
    name_en: str
    unit_zh: str
    requirements: list[dict[str, Any]]
    max_units_per_request: int
    max_units_per_year: int | None
    prerequisites: list[str]
    cancel_window_days: int


class ConversionApply(Strict):
    """A resident's application."""

    target: PlainText = Field(min_length=1, max_length=40)
    units: int = Field(default=1, ge=1, le=100)
    note: ReasonText | None = Field(default=None, max_length=200)


class Decision(Strict):
    """Approve or reject, always with a reason."""

    decision: Literal["approve", "reject"]
    reason: ReasonText = Field(min_length=1, max_length=200)


class CancelRequest(Strict):
    """Cancel an approved conversion within its window."""

    reason: ReasonText = Field(min_length=1, max_length=200)


class ConversionPublic(BaseModel):
    """A conversion as shown."""

    id: uuid.UUID
    learner_id: uuid.UUID
    target: str
    units: int
    status: str
    note: str | None
    applied_by: str
    applied_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    debits: dict[str, int]
    transaction_id: int | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    cancel_transaction_id: int | None

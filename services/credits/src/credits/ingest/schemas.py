"""Shapes of partner record batches. Each item is checked on its own, so one bad item never
sinks its good neighbours."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

MAX_BATCH = 1000


class PartnerRecord(BaseModel):
    """One stretch of online learning as the partner platform saw it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=120, description="the partner's own record id")
    learner: str = Field(min_length=14, max_length=14, description="learning account number")
    activity: uuid.UUID
    start: AwareDatetime
    end: AwareDatetime
    minutes: int = Field(ge=0, le=24 * 60)
    evidence: dict[str, Any] = Field(default_factory=dict)


class Batch(BaseModel):
    """A whole request body, for the one-call parse of a clean batch (other keys are ignored, as
    by the item-by-item path, which judges any body this one refuses)."""

    records: list[PartnerRecord] = Field(min_length=1, max_length=MAX_BATCH)


class ItemError(BaseModel):
    """Why an item was refused."""

    field: str
    reason: str


class ItemResult(BaseModel):
    """What became of one item: created, duplicate (a retry), conflict or rejected."""

    index: int
    id: str | None
    status: Literal["created", "duplicate", "conflict", "rejected"]
    record_id: int | None = None
    errors: list[ItemError] = Field(default_factory=list)


class BatchResult(BaseModel):
    """Per-item results and their counts."""

    created: int
    duplicates: int
    conflicts: int
    rejected: int
    results: list[ItemResult]

"""Shapes of partner record batches. Each item is checked on its own, so one bad item never
sinks its good neighbours."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

MAX_BATCH = 1000
MAX_EVIDENCE_DEPTH = 32
# the instants a record may name (of those, ones in the future are refused later, item by item)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _depth(value: Any) -> int:
    """How deep ``value`` nests, stopping one level past :data:`MAX_EVIDENCE_DEPTH`; a float
    that is not finite counts as too deep (JSON has no NaN or Infinity to store it as)."""
    stack, deepest = [(value, 1)], 0
    while stack:
        item, level = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return MAX_EVIDENCE_DEPTH + 1
        deepest = max(deepest, level)
        if deepest > MAX_EVIDENCE_DEPTH:
            break
        if isinstance(item, dict):
            stack += [(v, level + 1) for v in item.values()]
        elif isinstance(item, list):
            stack += [(v, level + 1) for v in item]
    return deepest


class PartnerRecord(BaseModel):
    """One stretch of online learning as the partner platform saw it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=120, description="the partner's own record id")
    learner: str = Field(min_length=14, max_length=14, description="learning account number")
    activity: uuid.UUID
    # bounds checked in pydantic's core: a Python validator here costs ~3 us an item
    start: AwareDatetime = Field(ge=EARLIEST, lt=LATEST)
    end: AwareDatetime = Field(ge=EARLIEST, lt=LATEST)
    minutes: int = Field(ge=0, le=24 * 60)
    evidence: dict[str, Any] = Field(default_factory=dict)

    @field_validator("evidence")
    @classmethod
    def _storable(cls, evidence: dict[str, Any]) -> dict[str, Any]:
        # the usual evidence is a few plain values (this loop is ~0.3 us an item): only
        # evidence that nests or holds a float that is not finite is walked
        for value in evidence.values():
            kind = value.__class__
            if kind is str or kind is int or kind is bool or value is None:
                continue
            if kind is float and value - value == 0:  # inf - inf and nan - nan are nan
                continue
            break
        else:
            return evidence
        if _depth(evidence) > MAX_EVIDENCE_DEPTH:
            raise ValueError(
                f"evidence nests at most {MAX_EVIDENCE_DEPTH} levels deep and holds only"
                " finite numbers (no NaN or Infinity)"
            )
        return evidence


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

"""Shapes of partner record batches. Each item is checked on its own, so one bad item never
sinks its good neighbours."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from kernel.text import CONTROL_FREE

MAX_BATCH = 1000
MAX_EVIDENCE_DEPTH = 32
# the instants a record may name (of those, ones in the future are refused later, item by item)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _unstorable(value: Any) -> str | None:
    """Why ``value`` cannot be stored as evidence, or None: it nests more than
    :data:`MAX_EVIDENCE_DEPTH` levels, holds a float that is not finite (JSON has no NaN or
    Infinity), or a text or key with NUL (PostgreSQL reads no NUL out of JSON)."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > MAX_EVIDENCE_DEPTH:
            return f"evidence nests at most {MAX_EVIDENCE_DEPTH} levels deep"
        if isinstance(item, float) and not math.isfinite(item):
            return "evidence holds only finite numbers (no NaN or Infinity)"
        if isinstance(item, str) and "\x00" in item:
            return "evidence text may not hold NUL (U+0000)"
        if isinstance(item, dict):
            if any("\x00" in key for key in item):
                return "evidence keys may not hold NUL (U+0000)"
            stack += [(v, level + 1) for v in item.values()]
        elif isinstance(item, list):
            stack += [(v, level + 1) for v in item]
    return None


class PartnerRecord(BaseModel):
    """One stretch of online learning as the partner platform saw it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # no control characters (PostgreSQL text holds no NUL), checked in pydantic's core
    id: str = Field(
        min_length=1,
        max_length=120,
        pattern=CONTROL_FREE,
        description="the partner's own record id",
    )
    learner: str = Field(
        min_length=14, max_length=14, pattern=CONTROL_FREE, description="learning account number"
    )
    activity: uuid.UUID
    # bounds checked in pydantic's core: a Python validator here costs ~3 us an item
    start: AwareDatetime = Field(ge=EARLIEST, lt=LATEST)
    end: AwareDatetime = Field(ge=EARLIEST, lt=LATEST)
    # a stretch of no whole minute is no learning (as an xAPI statement under a minute is
    # refused): it would still make its learner count as a participant in the statistics
    minutes: int = Field(ge=1, le=24 * 60)
    evidence: dict[str, Any] = Field(default_factory=dict)

    @field_validator("evidence")
    @classmethod
    def _storable(cls, evidence: dict[str, Any]) -> dict[str, Any]:
        # the usual evidence is a few plain values (this loop is well under a microsecond an
        # item): only evidence that nests, holds a float that is not finite or a NUL is walked
        for key, value in evidence.items():
            if "\x00" in key:
                break
            kind = value.__class__
            if kind is str:
                if "\x00" in value:
                    break
                continue
            if kind is int or kind is bool or value is None:
                continue
            if kind is float and value - value == 0:  # inf - inf and nan - nan are nan
                continue
            break
        else:
            return evidence
        problem = _unstorable(evidence)
        if problem is not None:
            raise ValueError(problem)
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

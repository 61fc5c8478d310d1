"""Time values from the database, made comparable across backends."""

from __future__ import annotations

from datetime import UTC, datetime


def aware(moment: datetime | None) -> datetime | None:
    """Mark a naive datetime as UTC (SQLite returns naive values for timestamptz columns)."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def aware_utc(moment: datetime) -> datetime:
    """Like :func:`aware`, for a value that is never None."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

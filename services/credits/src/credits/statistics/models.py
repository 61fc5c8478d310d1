"""Kept reports: the figures of a report that took long to compute, for a short while.

A district's report reads every record of its period (a year is some 3.5 million at Muye's
size) and takes several seconds however it is indexed (docs/decisions.md). When the credits
service's own figures of a report took longer than ``statistics_keep_after_seconds`` to read,
they are kept here, and the same report asked again within ``statistics_keep_seconds`` is
answered from them, saying when they were read (``as_of``). Only the credits service's own
figures are kept: who may see the unit, its population and the registrations are asked of the
accounts service on every request. Kept figures are derived data, not a state of the bank:
writing them is not an audit trail entry (each report asked is one, as before).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Float, String, UniqueConstraint
from sqlmodel import Field

from credits.db import Base


class KeptReport(Base, table=True):
    """One report's figures as last read: per kind, unit path and period."""

    __tablename__ = "statistics_kept_report"
    __table_args__ = (UniqueConstraint("kind", "unit_path", "period", name="uq_kept_report"),)

    id: int | None = Field(default=None, primary_key=True)
    # "report" (a unit's statistics), "stars" (learning star candidates)
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    unit_path: str = Field(sa_column=Column(String(255), nullable=False))
    # the report's period as text: "2026-01-01..2026-12-31", or "2026|<rule version>"
    period: str = Field(sa_column=Column(String(120), nullable=False))
    as_of: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    seconds: float = Field(sa_column=Column(Float, nullable=False))
    figures: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))

"""Rule versions as stored: data, dated, never edited once published."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Date, DateTime, UniqueConstraint
from sqlmodel import Field

from credits.db import Base


def _now() -> datetime:
    return datetime.now(UTC)


class RuleVersion(Base, table=True):
    """学分积累与转换办法: one dated version of the credit rules (a draft until published).

    A published version is never edited, only superseded by a later one; which version applies
    to a day is the last published one covering it.
    """

    __tablename__ = "rule_version"
    __table_args__ = (UniqueConstraint("code", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40)
    version: int
    title: str = Field(max_length=120)
    status: str = Field(default="draft", max_length=10)
    effective_from: date = Field(sa_column=Column(Date, nullable=False))
    effective_to: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    digest: str = Field(max_length=64)
    created_by: str = Field(max_length=60)
    created_at: datetime = Field(
        default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    published_by: str | None = Field(default=None, max_length=60)
    published_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    publish_reason: str | None = Field(default=None, max_length=200)

"""The school network (办学网络): organisational units in a tree with typed levels."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, String
from sqlmodel import Field

from accounts.db import Base


def _now() -> datetime:
    return datetime.now(UTC)


class UnitLevel(Base, table=True):
    """办学层级: a level of the network (district college, town school, learning point...).

    Levels are data: Muye has three, other places two or four.
    """

    __tablename__ = "unit_level"

    code: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=80)
    rank: int = Field(ge=1, le=9)


class Unit(Base, table=True):
    """办学单位: a unit of the school network, with its place in the tree.

    ``path`` is the chain of keys from the root (``/410711/410711100/``) so that "this unit and
    everything under it" is one indexed prefix query.
    """

    __tablename__ = "unit"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    key: str = Field(max_length=40, unique=True)
    name: str = Field(max_length=120)
    level_code: str = Field(foreign_key="unit_level.code", max_length=40)
    parent_id: uuid.UUID | None = Field(default=None, foreign_key="unit.id", index=True)
    path: str = Field(sa_column=Column(String(400), nullable=False, index=True))
    division_code: str | None = Field(default=None, max_length=12, index=True)
    division_name: str | None = Field(default=None, max_length=80)
    population: int | None = Field(default=None, ge=0)
    address: str | None = Field(default=None, max_length=200)
    status: str = Field(default="active", max_length=20)
    is_demo: bool = Field(default=False)
    created_at: datetime = Field(
        default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )

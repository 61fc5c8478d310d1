"""Staff users: people who work the system, each bound to a unit and everything under it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime
from sqlmodel import Field

from accounts.db import Base
from kernel.roles import STAFF_ROLES

__all__ = ["STAFF_ROLES", "StaffUser"]


def _now() -> datetime:
    return datetime.now(UTC)


class StaffUser(Base, table=True):
    """工作人员: a staff user with one role bound to one unit."""

    __tablename__ = "staff_user"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    username: str = Field(max_length=60, unique=True)
    display_name: str = Field(max_length=80)
    password_hash: str = Field(max_length=200)
    role: str = Field(max_length=40)
    unit_id: uuid.UUID = Field(foreign_key="unit.id", index=True)
    status: str = Field(default="active", max_length=20)
    failed_sign_ins: int = Field(default=0)
    locked_until: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    # when the last failed sign-in was counted: a count quiet for 30 days starts again
    last_failed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    created_at: datetime = Field(
        default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )

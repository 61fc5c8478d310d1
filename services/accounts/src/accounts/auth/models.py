"""Refresh tokens: opaque, stored hashed, rotated on use, a reused one revokes its family."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime
from sqlmodel import Field

from accounts.db import Base


def _now() -> datetime:
    return datetime.now(UTC)


class RefreshToken(Base, table=True):
    """刷新令牌: one link of a rotation chain (``family_id`` ties the chain together)."""

    __tablename__ = "refresh_token"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    family_id: uuid.UUID = Field(index=True)
    token_hash: str = Field(max_length=64, unique=True)
    subject: str = Field(max_length=60)
    kind: str = Field(max_length=20)
    issued_at: datetime = Field(
        default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))

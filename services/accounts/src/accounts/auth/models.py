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


class UnknownNameAttempts(Base, table=True):
    """Failed sign-ins under a name that names no account, counted as an account's are.

    Without it a lockout would say which phone numbers and account numbers are registered:
    the limit-th wrong password locks a real account and never an unknown name. The name is
    kept as its keyed hash only (an ID number or phone must not be readable here).
    """

    __tablename__ = "unknown_name_attempts"

    name_index: str = Field(primary_key=True, max_length=64)
    failed_sign_ins: int = Field(default=0)
    locked_until: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    last_attempt_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
    )

"""Partner platforms (合作平台) as OAuth clients."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field

from accounts.db import Base

PARTNER_SCOPES = ("records:write", "records:read")


def _now() -> datetime:
    return datetime.now(UTC)


class PartnerClient(Base, table=True):
    """合作平台: an e-learning platform that posts hours with client credentials.

    The secret is stored only as an Argon2 hash; it is shown once, when made or rotated.
    """

    __tablename__ = "partner_client"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: str = Field(max_length=60, unique=True)
    name: str = Field(max_length=120)
    secret_hash: str = Field(max_length=200)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    unit_id: uuid.UUID = Field(foreign_key="unit.id", index=True)
    status: str = Field(default="active", max_length=20)
    secret_rotated_at: datetime = Field(
        default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    created_at: datetime = Field(
        default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )

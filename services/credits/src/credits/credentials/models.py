"""Issued documents (出具的证明): every transcript and credential the college has issued."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, UniqueConstraint, text
from sqlmodel import Field

from credits.db import Base

BIGINT = BigInteger().with_variant(Integer(), "sqlite")
KINDS = ("transcript", "achievement", "clr")


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), nullable=nullable)


class IssuedDocument(Base, table=True):
    """出具记录: one transcript (PDF) or credential (VC-JWT) as issued, and whether it stands.

    Holds only what the public verification page shows (the holder's masked name, the title,
    dates, status) and a SHA-256 of the exact bytes issued; never the learner's plain personal
    data. ``subject_ref`` names what the document certifies (``conversion:<id>``,
    ``certification:<id>``, ``completion:<activity id>``, or ``portfolio`` for a whole-record
    snapshot), so a reversal of those credits finds the documents to revoke.
    """

    __tablename__ = "issued_document"
    __table_args__ = (
        UniqueConstraint("certificate_number"),
        UniqueConstraint("status_list", "status_index"),
        Index("ix_issued_document_learner_subject", "learner_id", "subject_ref"),
        # a status list's bits are read from its revoked rows, which are few
        Index(
            "ix_issued_document_revoked",
            "status_list",
            sqlite_where=text("revoked_at IS NOT NULL"),
            postgresql_where=text("revoked_at IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(BIGINT, primary_key=True))
    document_id: uuid.UUID = Field(default_factory=uuid.uuid4, unique=True)
    certificate_number: str = Field(max_length=24)
    kind: str = Field(max_length=12)
    learner_id: uuid.UUID
    subject_ref: str = Field(max_length=80)
    title: str = Field(max_length=160)
    holder_masked_name: str = Field(max_length=40)
    issued_by: str = Field(max_length=60)
    issued_at: datetime = Field(default_factory=_now, sa_column=_ts())
    expires_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # credentials only: their bit in the published Bitstring Status List
    status_list: int | None = Field(default=None)
    status_index: int | None = Field(default=None)
    digest: str = Field(default="", max_length=64)
    revoked_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    revoked_reason: str | None = Field(default=None, max_length=200)


class StatusList(Base, table=True):
    """One published status list and the secret that orders its bits (hex; NULL: issue order,
    kept by lists begun before bits were shuffled, whose first bits are already handed out)."""

    __tablename__ = "status_list"

    number: int = Field(sa_column=Column(Integer(), primary_key=True, autoincrement=False))
    permutation_key: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=_now, sa_column=_ts())

"""Personal learning accounts (个人学习账号) and the sequence their numbers come from."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy import JSON, Column, DateTime, LargeBinary, String
from sqlmodel import Field

from accounts.db import Base

GROUPS = (
    "elderly",  # 老年人
    "youth",  # 青少年
    "disabled",  # 残疾人
    "unemployed",  # 失业人员
    "migrant_workers",  # 进城务工人员
    "rural_residents",  # 农村居民
    "veterans",  # 退役士兵
    "left_behind",  # 留守妇女儿童
)
LEARNER_ROLES = ("volunteer", "part_time_teacher")  # 志愿者, 兼职教师
STATUSES = ("active", "frozen", "closed")
CONSENT_CHANNELS = ("app", "paper", "staff_entry", "import")


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), nullable=nullable)


class LearningAccount(Base, table=True):
    """个人学习账号: one per resident, real name; personal data encrypted at rest.

    ``id_number_index`` and ``phone_index`` are blind indexes (keyed hashes) for lookups;
    ``*_masked`` keep only what may be displayed.
    """

    __tablename__ = "learning_account"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    account_number: str = Field(max_length=14, unique=True)
    name: str = Field(max_length=60)
    id_number_cipher: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    id_number_index: str = Field(max_length=64, unique=True)
    id_number_masked: str = Field(max_length=18)
    phone_cipher: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    phone_index: str | None = Field(default=None, max_length=64, index=True)
    phone_masked: str | None = Field(default=None, max_length=11)
    birth_date: date
    gender: str = Field(max_length=6)
    residence_unit_id: uuid.UUID = Field(foreign_key="unit.id", index=True)
    residence_path: str = Field(sa_column=Column(String(400), nullable=False, index=True))
    groups: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    consent_version: str = Field(max_length=20)
    consent_at: datetime = Field(sa_column=_ts())
    consent_channel: str = Field(max_length=20)
    guardian_name: str | None = Field(default=None, max_length=60)
    guardian_consent_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    status: str = Field(default="active", max_length=10)
    status_reason: str | None = Field(default=None, max_length=200)
    password_hash: str | None = Field(default=None, max_length=200)
    failed_sign_ins: int = Field(default=0)
    locked_until: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # when the last failed sign-in was counted: a count quiet for 30 days starts again
    last_failed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_at: datetime = Field(default_factory=_now, sa_column=_ts())
    updated_at: datetime = Field(default_factory=_now, sa_column=_ts())


class AccountNumberSequence(Base, table=True):
    """The last sequence number used for account numbers within a district."""

    __tablename__ = "account_number_sequence"

    district_code: str = Field(primary_key=True, max_length=6)
    last_value: int = Field(default=0)

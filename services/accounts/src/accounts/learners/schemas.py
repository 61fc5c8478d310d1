"""Request and response shapes of learning accounts. Bodies reject unknown fields."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kernel.text import PlainText, ReasonText

Group = Literal[
    "elderly",
    "youth",
    "disabled",
    "unemployed",
    "migrant_workers",
    "rural_residents",
    "veterans",
    "left_behind",
]
LearnerRole = Literal["volunteer", "part_time_teacher"]
ConsentChannel = Literal["app", "paper", "staff_entry", "import"]


class Strict(BaseModel):
    """Base of request bodies: unknown fields are refused (no mass assignment)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Consent(Strict):
    """The resident's consent to processing of personal data (PIPL)."""

    version: PlainText = Field(min_length=1, max_length=20)
    at: datetime
    channel: ConsentChannel


class Guardian(Strict):
    """A guardian's consent, required for a resident under 14."""

    name: PlainText = Field(min_length=1, max_length=60)
    consent_at: datetime


class AccountCreate(Strict):
    """What staff (or the resident, registering in the app) supply to open an account."""

    name: PlainText = Field(min_length=1, max_length=60)
    id_number: str = Field(min_length=15, max_length=20)
    phone: str | None = Field(default=None, max_length=20)
    residence_unit: str = Field(min_length=1, max_length=40, description="key of a learning point")
    groups: list[Group] = Field(default_factory=list, max_length=8)
    roles: list[LearnerRole] = Field(default_factory=list, max_length=2)
    consent: Consent
    guardian: Guardian | None = None
    password: str | None = Field(default=None, min_length=8, max_length=200)


class AccountUpdate(Strict):
    """Fields staff may change; absent fields stay as they are."""

    name: PlainText | None = Field(default=None, min_length=1, max_length=60)
    phone: str | None = Field(default=None, max_length=20)
    residence_unit: str | None = Field(default=None, max_length=40)
    groups: list[Group] | None = Field(default=None, max_length=8)
    roles: list[LearnerRole] | None = Field(default=None, max_length=2)
    reason: ReasonText = Field(min_length=1, max_length=200)


class StatusChange(Strict):
    """Freeze, unfreeze or close an account, always with a reason."""

    status: Literal["active", "frozen", "closed"]
    reason: ReasonText = Field(min_length=1, max_length=200)


class RevealRequest(Strict):
    """An audited request to see the plain ID number and phone."""

    reason: ReasonText = Field(min_length=5, max_length=200)


class AccountPublic(BaseModel):
    """A learning account as shown: personal data masked."""

    id: uuid.UUID
    account_number: str
    name: str
    id_number_masked: str
    phone_masked: str | None
    birth_date: date
    gender: str
    residence_unit: str
    groups: list[str]
    roles: list[str]
    consent_version: str
    status: str
    status_reason: str | None
    created_at: datetime


class Revealed(BaseModel):
    """The plain personal data, after an audited reveal."""

    id: uuid.UUID
    id_number: str
    phone: str | None

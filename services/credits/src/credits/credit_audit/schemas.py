"""Shapes of the credit audit (学分审计): a sample of learners and each credit's evidence chain."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, Field


class RuleVersionRef(BaseModel):
    """The rule version a provenance line cites, as published."""

    id: int
    code: str
    version: int
    title: str
    status: str
    effective_from: date
    effective_to: date | None
    published_by: str | None
    published_at: datetime | None
    digest: str = Field(description="SHA-256 of the version's body, as stored when it was made")


class RecordSource(BaseModel):
    """Where a learning record came from; the fields of its ``kind`` are set, others null.

    ``check_in``: the attendance row and its session. ``staff_entry``: who entered it (and from
    which sheet row), plus the session. ``partner`` / ``xapi``: the platform's client id and its
    own record id (for xAPI the statement id). Every kind: who verified the record, if anyone.
    """

    kind: str
    attendance_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    session_starts_at: datetime | None = None
    session_ends_at: datetime | None = None
    session_place: str | None = None
    checked_in_at: datetime | None = None
    checked_out_at: datetime | None = None
    entered_by: str | None = None
    entered_by_unit: str | None = None
    entered_at: str | None = None
    entered_via: str | None = None
    sheet_file: str | None = None
    sheet_sha256: str | None = None
    sheet_row: int | None = None
    verified_by: str | None = None
    verified_at: datetime | None = None
    partner_client: str | None = None
    partner_record_id: str | None = None
    xapi_statement_id: str | None = None


class RecordEvidence(BaseModel):
    """A learning record behind a credit: what, when, how long, its status and its source."""

    id: int
    learner_id: uuid.UUID
    activity_id: uuid.UUID
    activity_title: str
    activity_kind: str
    host_unit_path: str
    category: str
    mode: str
    started_at: datetime
    ended_at: datetime
    minutes: int
    status: str
    status_changed_by: str
    status_changed_at: datetime
    source: RecordSource


class EvidenceDocument(BaseModel):
    """One certification evidence file's metadata (the file itself is kept by its SHA-256)."""

    id: uuid.UUID
    original_name: str
    media_type: str
    size_bytes: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime


class CertificationEvidence(BaseModel):
    """A certification behind a credit: the outcome, its review and its evidence files."""

    id: uuid.UUID
    outcome_type: str
    level: str
    title: str
    issuer: str
    issued_on: date
    status: str
    submitted_by: str
    submitted_at: datetime
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_reason: str | None
    standard_id: int | None
    hundredths: int | None
    learner_unit_path: str
    documents: list[EvidenceDocument]


class ConversionEvidence(BaseModel):
    """The conversion request a debit (or its cancellation) belongs to: review and outcome."""

    id: uuid.UUID
    target_code: str
    target_name_zh: str | None
    units: int
    status: str
    applied_by: str
    applied_at: datetime
    decided_by: str | None = Field(description="the reviewer")
    decided_at: datetime | None
    decision_reason: str | None
    debits: dict[str, int]
    cancelled_by: str | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    learner_unit_path: str


class ProvenanceLine(BaseModel):
    """One provenance line of an entry: the rule clause and version, and what it was made from."""

    key: str
    clause: str
    category: str
    earned_on: date
    amount_hundredths: int
    rule_version: RuleVersionRef | None
    record_ids: list[int]
    records: list[RecordEvidence]
    certification: CertificationEvidence | None


class EntryChain(BaseModel):
    """A ledger entry (记账凭证) and its whole chain of evidence."""

    id: int
    kind: str
    learner_id: uuid.UUID | None
    created_at: datetime
    created_by: str
    net_hundredths: int = Field(description="what it changed in the learner's balance")
    rule_version_id: int | None
    reverses_id: int | None
    reference: str | None
    memo: str
    lines: list[ProvenanceLine]
    conversion: ConversionEvidence | None


class SampledLearner(BaseModel):
    """One learner of the sample with their entries of the period that touch the unit."""

    learner_id: uuid.UUID
    net_hundredths: int
    entries: list[EntryChain]


class CreditAuditSample(BaseModel):
    """A reproducible sample of learners with ledger activity in a unit and period."""

    unit: str
    unit_path: str
    period_from: date
    period_to: date
    seed: int = Field(description="the seed used: the same seed gives the same learners")
    requested_size: int
    population: int = Field(description="learners with ledger entries in the unit and period")
    learners: list[SampledLearner]

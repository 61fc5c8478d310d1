"""Shapes of a learner's portfolio parts as the credits service gives them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from credits.activities.schemas import EnrolmentPublic
from credits.attendance.schemas import AttendancePublic
from credits.certification.schemas import CertificationPublic
from credits.conversion.schemas import ConversionPublic
from credits.ledger.schemas import CreditSummary, TransactionPublic
from credits.records.schemas import HoursSummary, RecordPublic
from kernel.pagination import Page


class PortfolioParts(BaseModel):
    """Every part of a learner's e-portfolio the credits service keeps, read in one go.

    Lists that grow for a lifetime come as their first page with ``next_cursor``; page on with
    the part's own route.
    """

    enrolments: list[EnrolmentPublic]
    attendance: Page[AttendancePublic]
    hours: HoursSummary
    recent_records: Page[RecordPublic]
    credit_balance: CreditSummary
    credit_history: Page[TransactionPublic]
    certifications: list[CertificationPublic]
    conversions: list[ConversionPublic]
    awards: list[CertificationPublic] = Field(
        description="approved certifications of outcome type award (表彰); no awards register"
        " exists yet"
    )

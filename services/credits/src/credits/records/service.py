"""Reading learning records."""

from __future__ import annotations

from credits.records.models import LearningRecord
from credits.records.schemas import RecordPublic
from kernel.clock import aware_utc


def to_public(record: LearningRecord) -> RecordPublic:
    """The API view of a record."""
    assert record.id is not None
    return RecordPublic(
        id=record.id,
        learner_id=record.learner_id,
        activity_id=record.activity_id,
        session_id=record.session_id,
        category=record.category_code,
        mode=record.mode,
        source=record.source,
        started_at=aware_utc(record.started_at),
        ended_at=aware_utc(record.ended_at),
        minutes=record.minutes,
        status=record.status,
        evidence=dict(record.evidence),
    )

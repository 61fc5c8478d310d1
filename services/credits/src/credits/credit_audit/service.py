"""The credit audit (学分审计): which ledger entries touch a unit, a reproducible sample of
learners, and each credit's chain of evidence, in a bounded number of queries.

Credits keeps no residence, so a unit is reached through what the ledger cites: an entry
*touches* a unit when one of its provenance lines names a learning record of an activity hosted
in the unit's subtree, or it credits a certification or moves a conversion filed under a
residence in the subtree (``learner_unit_path``, copied from the resident's token at filing).
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, any_, func, true, union
from sqlalchemy import select as sql_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from credits.activities.models import Activity, ActivitySession
from credits.certification.models import Certification, CertificationEvidence
from credits.conversion.models import Conversion, ConversionTarget
from credits.credit_audit.schemas import (
    CertificationEvidence as CertificationView,
)
from credits.credit_audit.schemas import (
    ConversionEvidence,
    CreditAuditSample,
    EntryChain,
    EvidenceDocument,
    ProvenanceLine,
    RecordEvidence,
    RecordSource,
    RuleVersionRef,
    SampledLearner,
)
from credits.ledger import statements
from credits.ledger.models import CreditSource, LedgerTransaction
from credits.ledger.service import one_of
from credits.records.models import Attendance, LearningRecord, RecordStatusChange
from credits.rules.engine import CHINA
from credits.rules.models import RuleVersion
from kernel.clock import aware, aware_utc

CHUNK = 500  # ids per IN list on SQLite (PostgreSQL takes one array parameter)
SEED_LIMIT = 2**31 - 1
CONVERSION_KINDS = ("conversion", "conversion_cancel")


def period_bounds(period_from: date, period_to: date) -> tuple[datetime, datetime]:
    """The instants of a period of Beijing days: from 00:00 on the first to 00:00 after the last."""
    since = datetime.combine(period_from, time.min, CHINA)
    until = datetime.combine(period_to + timedelta(days=1), time.min, CHINA)
    return since, until


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _unit_activities(path: str) -> Any:
    return select(col(Activity.id)).where(
        col(Activity.host_unit_path).startswith(path, autoescape=True)
    )


def touching(session: AsyncSession, path: str, *where: ColumnElement[bool]) -> Any:
    """``(id, learner_id)`` of the ledger entries meeting ``where`` that touch the unit at
    ``path``: a UNION of three plain joins, so the planner drives each from the entries ``where``
    selects (a period, a learner, an id) instead of hashing every provenance line of the unit."""
    entry = (col(LedgerTransaction.id), col(LedgerTransaction.learner_id))
    via_records = select(*entry).join(
        CreditSource, col(CreditSource.transaction_id) == col(LedgerTransaction.id)
    )
    if _dialect(session) == "postgresql":
        via_records = via_records.join(
            LearningRecord, col(LearningRecord.id) == any_(col(CreditSource.record_ids))
        )
    else:  # SQLite keeps the ids as a JSON array
        items = func.json_each(col(CreditSource.record_ids)).table_valued("value")
        via_records = via_records.join(items, true()).join(
            LearningRecord, col(LearningRecord.id) == items.c.value
        )
    via_records = via_records.where(
        *where, col(LearningRecord.activity_id).in_(_unit_activities(path))
    )
    # certifications and conversions are few: their transaction ids are read once, hashed
    certified = select(*entry).where(
        *where,
        col(LedgerTransaction.id).in_(
            select(col(Certification.transaction_id)).where(
                col(Certification.learner_unit_path).startswith(path, autoescape=True),
                col(Certification.transaction_id).is_not(None),
            )
        ),
    )
    converted = select(*entry).where(
        *where,
        col(LedgerTransaction.id).in_(
            union(
                select(col(Conversion.transaction_id)).where(
                    col(Conversion.learner_unit_path).startswith(path, autoescape=True)
                ),
                select(col(Conversion.cancel_transaction_id)).where(
                    col(Conversion.learner_unit_path).startswith(path, autoescape=True)
                ),
            )
        ),
    )
    return union(via_records, certified, converted)


def _in_period(since: datetime, until: datetime) -> list[ColumnElement[bool]]:
    return [
        # as UTC: SQLite compares the stored UTC digits as text
        col(LedgerTransaction.created_at) >= since.astimezone(UTC),
        col(LedgerTransaction.created_at) < until.astimezone(UTC),
        col(LedgerTransaction.learner_id).is_not(None),
    ]


async def sample(
    session: AsyncSession,
    *,
    unit: str,
    unit_path: str,
    period_from: date,
    period_to: date,
    size: int,
    seed: int | None,
) -> CreditAuditSample:
    """Draw ``size`` learners with entries touching the unit in the period, and their chains.

    The population is ranked by learner id in SQL and only its count comes back; ``seed`` picks
    the ranks (``random.Random(seed).sample``), and only those learners are read. A past period's
    population never changes (entries are dated when written, and never removed), so the same
    seed gives the same learners.
    """
    used = seed if seed is not None else secrets.randbelow(SEED_LIMIT)
    since, until = period_bounds(period_from, period_to)
    touched = touching(session, unit_path, *_in_period(since, until)).subquery()
    population = sql_select(touched.c.learner_id).distinct().subquery()
    total = int(
        (await session.execute(sql_select(func.count()).select_from(population))).scalar_one()
    )
    ranks = sorted(random.Random(used).sample(range(total), min(size, total)))
    learners: list[uuid.UUID] = []
    if ranks:
        ranked = sql_select(
            population.c.learner_id,
            func.row_number().over(order_by=population.c.learner_id).label("rank"),
        ).subquery()
        chosen = await session.execute(
            sql_select(ranked.c.learner_id)
            .where(ranked.c.rank.in_([r + 1 for r in ranks]))
            .order_by(ranked.c.rank)
        )
        learners = list(chosen.scalars())
    entries: list[LedgerTransaction] = []
    if learners:
        of_learners = one_of(session, col(LedgerTransaction.learner_id), learners)
        ours = touching(session, unit_path, *_in_period(since, until), of_learners).subquery()
        entries = list(
            (
                await session.execute(
                    select(LedgerTransaction)
                    .where(col(LedgerTransaction.id).in_(sql_select(ours.c.id)))
                    .order_by(col(LedgerTransaction.id))
                )
            ).scalars()
        )
    by_learner: dict[uuid.UUID, list[EntryChain]] = defaultdict(list)
    for chain in await chains(session, entries):
        assert chain.learner_id is not None
        by_learner[chain.learner_id].append(chain)
    return CreditAuditSample(
        unit=unit,
        unit_path=unit_path,
        period_from=period_from,
        period_to=period_to,
        seed=used,
        requested_size=size,
        population=total,
        learners=[
            SampledLearner(
                learner_id=learner,
                net_hundredths=sum(e.net_hundredths for e in by_learner[learner]),
                entries=by_learner[learner],
            )
            for learner in learners
        ],
    )


async def entry_touches(session: AsyncSession, entry_id: int, path: str) -> bool:
    """Whether ledger entry ``entry_id`` touches the unit at ``path``."""
    found = await session.execute(
        touching(session, path, col(LedgerTransaction.id) == entry_id).limit(1)
    )
    return found.first() is not None


def unit_learners(path: str) -> Any:
    """Learner ids of a unit's subtree as the ledger can know them: learning in the unit, or a
    certification or conversion filed under a residence in it (a SELECT, for reconciliation)."""
    return union(
        select(col(LearningRecord.learner_id)).where(
            col(LearningRecord.activity_id).in_(_unit_activities(path))
        ),
        select(col(Certification.learner_id)).where(
            col(Certification.learner_unit_path).startswith(path, autoescape=True)
        ),
        select(col(Conversion.learner_id)).where(
            col(Conversion.learner_unit_path).startswith(path, autoescape=True)
        ),
    )


async def _rows_by_ids(
    session: AsyncSession, query: Any, column: Any, ids: Iterable[Any]
) -> list[Any]:
    """``query`` restricted to ``column IN ids``: one array on PostgreSQL, chunks elsewhere."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    if _dialect(session) == "postgresql":
        return list((await session.execute(query.where(one_of(session, column, wanted)))).all())
    found: list[Any] = []
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        found.extend((await session.execute(query.where(column.in_(chunk)))).all())
    return found


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) else None


async def _records(session: AsyncSession, ids: Iterable[int]) -> dict[int, RecordEvidence]:
    """The records with their activity, session, attendance and verification (five reads)."""
    rows = await _rows_by_ids(
        session,
        sql_select(LearningRecord, col(Activity.title), col(Activity.kind)).join(
            Activity, col(Activity.id) == col(LearningRecord.activity_id)
        ),
        col(LearningRecord.id),
        ids,
    )
    records = [(r, title, kind) for r, title, kind in rows]
    meetings = {
        m.id: m
        for (m,) in await _rows_by_ids(
            session,
            select(ActivitySession),
            col(ActivitySession.id),
            {r.session_id for r, _, _ in records if r.session_id is not None},
        )
    }
    attendance_ids = {
        a for r, _, _ in records if (a := _uuid(r.evidence.get("attendance_id"))) is not None
    }
    attended = {
        a.id: a
        for (a,) in await _rows_by_ids(
            session, select(Attendance), col(Attendance.id), attendance_ids
        )
    }
    verified: dict[int, tuple[str, datetime]] = {}
    for record_id, by, at in await _rows_by_ids(
        session,
        sql_select(
            col(RecordStatusChange.record_id),
            col(RecordStatusChange.changed_by),
            col(RecordStatusChange.changed_at),
        )
        .where(col(RecordStatusChange.to_status) == "verified")
        .order_by(col(RecordStatusChange.id)),
        col(RecordStatusChange.record_id),
        [r.id for r, _, _ in records],
    ):
        verified[int(record_id)] = (by, aware_utc(at))  # the last verification wins
    out: dict[int, RecordEvidence] = {}
    for record, title, kind in records:
        assert record.id is not None
        evidence: dict[str, Any] = record.evidence or {}
        source = RecordSource(kind=record.source)
        meeting = meetings.get(record.session_id) if record.session_id else None
        if meeting is not None:
            source.session_id = meeting.id
            source.session_starts_at = aware(meeting.starts_at)
            source.session_ends_at = aware(meeting.ends_at)
            source.session_place = meeting.place
        attendance = attended.get(_uuid(evidence.get("attendance_id")))
        if attendance is not None:
            source.attendance_id = attendance.id
            source.checked_in_at = aware(attendance.checked_in_at)
            source.checked_out_at = aware(attendance.checked_out_at)
        if record.source == "staff_entry":
            source.entered_by = _text(evidence.get("entered_by"))
            source.entered_by_unit = _text(evidence.get("entered_by_unit"))
            source.entered_at = _text(evidence.get("entered_at"))
            source.entered_via = _text(evidence.get("via"))
            source.sheet_file = _text(evidence.get("file"))
            source.sheet_sha256 = _text(evidence.get("file_sha256"))
            source.sheet_row = _int(evidence.get("row"))
        if record.source in ("partner", "xapi", "import"):
            source.partner_client = record.source_client
            source.partner_record_id = record.external_id
        if record.source == "xapi":
            source.xapi_statement_id = record.external_id
        if record.id in verified:
            source.verified_by, source.verified_at = verified[record.id]
        elif record.status == "verified":  # verified on arrival (a QR check-in)
            source.verified_by = record.status_changed_by
            source.verified_at = aware(record.status_changed_at)
        out[record.id] = RecordEvidence(
            id=record.id,
            learner_id=record.learner_id,
            activity_id=record.activity_id,
            activity_title=title,
            activity_kind=kind,
            host_unit_path=record.host_unit_path,
            category=record.category_code,
            mode=record.mode,
            started_at=aware_utc(record.started_at),
            ended_at=aware_utc(record.ended_at),
            minutes=record.minutes,
            status=record.status,
            status_changed_by=record.status_changed_by,
            status_changed_at=aware_utc(record.status_changed_at),
            source=source,
        )
    return out


async def _certifications(
    session: AsyncSession, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, CertificationView]:
    wanted = list(ids)
    documents: dict[uuid.UUID, list[EvidenceDocument]] = defaultdict(list)
    for (doc,) in await _rows_by_ids(
        session,
        select(CertificationEvidence).order_by(col(CertificationEvidence.uploaded_at)),
        col(CertificationEvidence.certification_id),
        wanted,
    ):
        documents[doc.certification_id].append(
            EvidenceDocument(
                id=doc.id,
                original_name=doc.original_name,
                media_type=doc.media_type,
                size_bytes=doc.size_bytes,
                sha256=doc.sha256,
                uploaded_by=doc.uploaded_by,
                uploaded_at=aware_utc(doc.uploaded_at),
            )
        )
    out = {}
    for (c,) in await _rows_by_ids(session, select(Certification), col(Certification.id), wanted):
        out[c.id] = CertificationView(
            id=c.id,
            outcome_type=c.outcome_type,
            level=c.level,
            title=c.title,
            issuer=c.issuer,
            issued_on=c.issued_on,
            status=c.status,
            submitted_by=c.submitted_by,
            submitted_at=aware_utc(c.submitted_at),
            reviewed_by=c.reviewed_by,
            reviewed_at=aware(c.reviewed_at),
            review_reason=c.review_reason,
            standard_id=c.standard_id,
            hundredths=c.hundredths,
            learner_unit_path=c.learner_unit_path,
            documents=documents[c.id],
        )
    return out


async def _conversions(
    session: AsyncSession, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, ConversionEvidence]:
    out = {}
    for c, name in await _rows_by_ids(
        session,
        sql_select(Conversion, col(ConversionTarget.name_zh)).outerjoin(
            ConversionTarget, col(ConversionTarget.code) == col(Conversion.target_code)
        ),
        col(Conversion.id),
        ids,
    ):
        out[c.id] = ConversionEvidence(
            id=c.id,
            target_code=c.target_code,
            target_name_zh=name,
            units=c.units,
            status=c.status,
            applied_by=c.applied_by,
            applied_at=aware_utc(c.applied_at),
            decided_by=c.decided_by,
            decided_at=aware(c.decided_at),
            decision_reason=c.decision_reason,
            debits={k: int(v) for k, v in c.debits.items()},
            cancelled_by=c.cancelled_by,
            cancelled_at=aware(c.cancelled_at),
            cancel_reason=c.cancel_reason,
            learner_unit_path=c.learner_unit_path,
        )
    return out


def _conversion_id(entry: LedgerTransaction) -> uuid.UUID | None:
    if entry.kind not in CONVERSION_KINDS or not entry.reference:
        return None
    prefix, _, rest = entry.reference.partition(":")
    return _uuid(rest) if prefix == "conversion" else None


async def chains(session: AsyncSession, entries: Sequence[LedgerTransaction]) -> list[EntryChain]:
    """The evidence chain of each entry, in the order given.

    A fixed number of reads however many entries: postings and provenance (two), rule versions,
    records with activities, sessions, attendance and verifications (five), certifications and
    their files (two), conversions (one); id lists go in chunks on SQLite.
    """
    if not entries:
        return []
    views = await statements.transactions_public(session, list(entries), None)
    sources = [s for v in views for s in v.sources]
    versions = {
        v.id: RuleVersionRef(
            id=v.id,
            code=v.code,
            version=v.version,
            title=v.title,
            status=v.status,
            effective_from=v.effective_from,
            effective_to=v.effective_to,
            published_by=v.published_by,
            published_at=aware(v.published_at),
            digest=v.digest,
        )
        for (v,) in await _rows_by_ids(
            session,
            select(RuleVersion),
            col(RuleVersion.id),
            {s.rule_version_id for s in sources if s.rule_version_id is not None},
        )
    }
    records = await _records(session, {i for s in sources for i in s.record_ids})
    certifications = await _certifications(
        session, {s.certification_id for s in sources if s.certification_id is not None}
    )
    conversions = await _conversions(
        session, {c for e in entries if (c := _conversion_id(e)) is not None}
    )
    out = []
    for entry, view in zip(entries, views, strict=True):
        conversion_id = _conversion_id(entry)
        out.append(
            EntryChain(
                id=view.id,
                kind=view.kind,
                learner_id=view.learner_id,
                created_at=aware_utc(view.created_at),
                created_by=view.created_by,
                net_hundredths=view.net_hundredths,
                rule_version_id=view.rule_version_id,
                reverses_id=view.reverses_id,
                reference=view.reference,
                memo=view.memo,
                lines=[
                    ProvenanceLine(
                        key=s.key,
                        clause=s.clause,
                        category=s.category,
                        earned_on=s.earned_on,
                        amount_hundredths=s.amount_hundredths,
                        rule_version=versions.get(s.rule_version_id)
                        if s.rule_version_id is not None
                        else None,
                        record_ids=s.record_ids,
                        records=[records[i] for i in s.record_ids if i in records],
                        certification=certifications.get(s.certification_id)
                        if s.certification_id is not None
                        else None,
                    )
                    for s in view.sources
                ],
                conversion=conversions.get(conversion_id) if conversion_id else None,
            )
        )
    return out

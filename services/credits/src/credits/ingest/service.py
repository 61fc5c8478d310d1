"""Partner batches into learning records: checked per item, written in a few set-based
statements, never stored twice (unique partner id), never overlapping a live stretch of the same
learner, never more than 24 hours on one learner's Beijing day.

Order of work for one batch: resolve learners (a short-lived cache before the accounts
service); then, in the transaction, read activities, existing partner ids, the live stretches
near each learner's items and the day totals (one statement, one snapshot, on PostgreSQL);
decide every item; insert the accepted ones in one statement.

No lock is held while deciding. On PostgreSQL the insert's trigger takes the learners' locks and
checks overlap and day totals again against everything committed; a batch that lost a race with
a concurrent one (or a deadlock) is rolled back and decided again, and now sees the winner's
rows, so the loser's items get their per-item reasons. SQLite serialises writers, so the
decisions made here hold.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from credits.ingest.learners import Learner, LearnerDirectory
from credits.ingest.parsing import ParsedBatch
from credits.ingest.repository import (
    CHINA,
    CHINA_OFFSET,
    ActivityFacts,
    IngestRepository,
    NewRecord,
    StoredRecord,
)
from credits.ingest.schemas import BatchResult, ItemError, ItemResult, PartnerRecord
from kernel.problems import ServiceUnavailable
from kernel.text import account_number

__all__ = ["CHINA", "content_hash", "ingest"]

CLOCK_SKEW = timedelta(minutes=2)
DAY_MINUTES = 24 * 60
ATTEMPTS = 4
# what the insert trigger raises when a concurrent batch got there first, and deadlocks
_RACES = {
    ("23514", "learner_day_minutes_partner_limit"),
    ("23P01", "learning_record_partner_overlap"),
}
_RETRY_STATES = {"40P01", "40001"}


def content_hash(
    item: PartnerRecord, *, activity: str | None = None, evidence: dict[str, Any] | None = None
) -> str:
    """Digest of what the partner said, to tell a retry from a changed record.

    Instants enter as epoch microseconds, so the same moment written with another offset is
    the same content. ``activity`` may pass ``str(item.activity)`` already made; ``evidence``
    the part of the item's evidence a retry must repeat (by default all of it).
    """
    compared = item.evidence if evidence is None else evidence
    shown = (
        json.dumps(compared, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if compared
        else "{}"
    )
    canonical = "|".join(
        (
            account_number(item.learner),
            activity or str(item.activity),
            str(int(item.start.timestamp() * 1_000_000)),
            str(int(item.end.timestamp() * 1_000_000)),
            str(item.minutes),
            shown,
        )
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(slots=True)
class _Item:
    """A parsed record with what every check needs worked out once."""

    index: int
    record: PartnerRecord
    number: str  # learning account number, upper case
    start: datetime  # UTC
    end: datetime  # UTC
    day: date  # the Beijing day it counts on
    digest: str


Comparable = Callable[[dict[str, Any]], dict[str, Any]]


def _prepare(records: dict[int, PartnerRecord], comparable: Comparable | None) -> list[_Item]:
    activity_text: dict[uuid.UUID, str] = {}
    items = []
    for index, record in records.items():
        activity = activity_text.get(record.activity)
        if activity is None:
            activity = activity_text[record.activity] = str(record.activity)
        start = record.start.astimezone(UTC)
        items.append(
            _Item(
                index=index,
                record=record,
                number=account_number(record.learner),
                start=start,
                end=record.end.astimezone(UTC),
                day=(start + CHINA_OFFSET).date(),
                digest=content_hash(
                    record,
                    activity=activity,
                    evidence=comparable(record.evidence) if comparable else None,
                ),
            )
        )
    return items


def _lost_race(exc: DBAPIError) -> bool:
    state = getattr(exc.orig, "sqlstate", None)
    if state in _RETRY_STATES:
        return True
    constraint = getattr(getattr(exc.orig, "__cause__", None), "constraint_name", None)
    return (state, constraint) in _RACES


async def ingest(
    *,
    session: AsyncSession,
    directory: LearnerDirectory,
    accounts: httpx.AsyncClient,
    authorization: str,
    client_id: str,
    batch: ParsedBatch,
    source: str = "partner",
    comparable: Comparable | None = None,
    now: datetime | None = None,
) -> BatchResult:
    """Check and store one parsed batch; every item gets a result. The caller commits.

    ``source`` names the records' way in: ``partner`` (record batches) or ``xapi`` (statements
    mapped to partner records by :mod:`credits.xapi`); the checks are the same. ``comparable``
    gives the part of an item's evidence a retry must repeat to be a duplicate (by default all).
    """
    moment = now or datetime.now(UTC)
    learners = await directory.resolve(
        accounts, authorization, (account_number(item.learner) for item in batch.records.values())
    )
    items = _prepare(batch.records, comparable)
    for attempt in range(ATTEMPTS):
        try:
            decided = await _decide_and_store(
                session, learners, client_id, items, moment, source=source
            )
            break
        except DBAPIError as exc:
            if not _lost_race(exc):
                raise
            await session.rollback()
            if attempt + 1 == ATTEMPTS:
                raise ServiceUnavailable(
                    "Concurrent batches for the same learners kept colliding; nothing of this"
                    " batch was stored. Retry it.",
                    detail_zh="同一学习者的多批记录同时提交发生冲突，本批记录未保存，请重试。",
                    headers={"Retry-After": "1"},
                ) from None
    results = sorted([*batch.refused, *decided], key=lambda r: r.index)
    assert len(results) == batch.size
    counts = defaultdict(int, {"created": 0})
    for r in results:
        counts[r.status] += 1
    return BatchResult(
        created=counts["created"],
        duplicates=counts["duplicate"],
        conflicts=counts["conflict"],
        rejected=counts["rejected"],
        results=results,
    )


def _rejected(item: _Item, field: str, reason: str) -> ItemResult:
    return ItemResult(
        index=item.index,
        id=item.record.id,
        status="rejected",
        errors=[ItemError(field=field, reason=reason)],
    )


def _known(item: _Item, stored: StoredRecord) -> ItemResult:
    same = stored.content_hash == item.digest
    return ItemResult(
        index=item.index,
        id=item.record.id,
        status="duplicate" if same else "conflict",
        record_id=stored.id,
        errors=[]
        if same
        else [ItemError(field="id", reason="this id was stored with other content")],
    )


def _refusal(
    item: _Item,
    learner: Learner | None,
    activity: ActivityFacts | None,
    client_id: str,
    moment: datetime,
) -> tuple[str, str] | None:
    """Why ``item`` cannot be stored whatever else is recorded, or None."""
    length = (item.end - item.start).total_seconds() / 60
    if learner is None:
        return "learner", "unknown learning account number"
    if learner[1] != "active":
        return "learner", f"the learning account is {learner[1]}"
    if activity is None or activity.partner_client != client_id:
        return "activity", "unknown activity, or not one of this partner's"
    if length <= 0:
        return "end", "end must be after start"
    if item.record.minutes > length:
        return "minutes", "more minutes than the interval holds"
    if item.end > moment + CLOCK_SKEW:
        return "end", "the stretch ends in the future"
    return None


async def _decide_and_store(
    session: AsyncSession,
    learners: dict[str, Learner],
    client_id: str,
    items: list[_Item],
    moment: datetime,
    *,
    source: str,
) -> list[ItemResult]:
    repo = IngestRepository.from_session(session)
    results: list[ItemResult] = []
    # windows and days of every item whose learner may post; the activity is checked after
    known = [i for i in items if learners.get(i.number, (None, ""))[1] == "active"]
    spans: dict[uuid.UUID, tuple[datetime, datetime]] = {}
    for item in known:
        learner_id = learners[item.number][0]
        first, last = spans.get(learner_id, (item.start, item.end))
        spans[learner_id] = (min(first, item.start), max(last, item.end))
    found = await repo.snapshot(
        client_id=client_id,
        external_ids=[item.record.id for item in items],
        activity_ids={item.record.activity for item in items},
        windows=spans,
        day_keys={(learners[i.number][0], i.day) for i in known},
    )
    activities, stored = found.activities, found.stored
    refusals: dict[int, tuple[str, str]] = {}
    # learners by account number: the id comes back from the database only as a key
    candidates: dict[str, list[_Item]] = defaultdict(list)
    for item in items:
        learner = learners.get(item.number)
        refusal = _refusal(item, learner, activities.get(item.record.activity), client_id, moment)
        if refusal is not None:
            refusals[item.index] = refusal
        else:
            candidates[item.number].append(item)
    number_of = {learners[number][0]: number for number in candidates}
    intervals: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for learner_id, started, ended in found.overlapping:
        if learner_id in number_of:
            intervals[number_of[learner_id]].append((started, ended))
    day_minutes: dict[tuple[str, date], int] = defaultdict(int)
    for (learner_id, day), minutes in found.day_minutes.items():
        if learner_id in number_of:
            day_minutes[(number_of[learner_id], day)] = minutes
    for item in items:
        if item.record.id in stored:  # a retry is a retry, whatever else has changed since
            results.append(_known(item, stored[item.record.id]))
        elif item.index in refusals:
            results.append(_rejected(item, *refusals[item.index]))

    accepted: list[tuple[_Item, NewRecord]] = []
    for number, group in candidates.items():
        taken = intervals[number]
        for item in sorted(group, key=lambda i: (i.start, i.index)):
            if item.record.id in stored:
                continue
            start, end = item.start, item.end
            if any(s < end and start < e for s, e in taken):
                results.append(
                    _rejected(item, "start", "overlaps a stretch already recorded for this learner")
                )
                continue
            on_day = (number, item.day)
            if day_minutes[on_day] + item.record.minutes > DAY_MINUTES:
                results.append(
                    _rejected(item, "minutes", "more than 24 hours in one day for this learner")
                )
                continue
            taken.append((start, end))
            day_minutes[on_day] += item.record.minutes
            record = NewRecord(
                learner_id=learners[number][0],
                activity=activities[item.record.activity],
                external_id=item.record.id,
                started_at=start,
                ended_at=end,
                minutes=item.record.minutes,
                evidence={**item.record.evidence, "_content_hash": item.digest},
            )
            accepted.append((item, record))
    if not accepted:
        return results

    ids = await repo.insert(
        [r for _, r in accepted], client_id=client_id, moment=moment, source=source
    )
    late: list[_Item] = []
    for item, record in accepted:
        record_id = ids.get(record.external_id)
        if record_id is None:  # a concurrent request stored the same partner id first
            late.append(item)
        else:
            results.append(
                ItemResult(
                    index=item.index, id=record.external_id, status="created", record_id=record_id
                )
            )
    if late:
        winners = await repo.stored(client_id, [item.record.id for item in late])
        results += [_known(item, winners[item.record.id]) for item in late]
    return results

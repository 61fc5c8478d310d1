"""Partner batches into learning records: checked per item, written in a few set-based
statements, never stored twice (unique partner id), never overlapping what is recorded.

Order of work for one batch: parse each item; resolve learners through the accounts service
in one call; load activities, existing partner ids and overlapping records in one query each;
decide every item; insert the accepted ones with ON CONFLICT DO NOTHING.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, text
from sqlalchemy import select as sql_select  # sqlmodel's select types at most four columns
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from credits.activities.models import Activity
from credits.ingest.schemas import BatchResult, ItemError, ItemResult, PartnerRecord
from credits.learners import lookup_learners
from credits.records.models import LearningRecord
from kernel.clock import aware_utc
from kernel.problems import PROBLEMS, DomainError


class InvalidBatch(DomainError):
    """The body is not a batch at all (items are judged one by one, the envelope is not)."""

    type = PROBLEMS + "invalid-batch"
    status = 422
    title = "Invalid batch"


CHINA = timezone(timedelta(hours=8))  # a learner's day is a Beijing-time day
CLOCK_SKEW = timedelta(minutes=2)
LIVE = ("pending", "verified")
_item = TypeAdapter(PartnerRecord)
_batch = TypeAdapter(list[PartnerRecord])


def content_hash(item: PartnerRecord) -> str:
    """Digest of what the partner said, to tell a retry from a changed record.

    Instants enter as epoch microseconds, so the same moment written with another offset is
    the same content.
    """
    evidence = json.dumps(item.evidence, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    canonical = "|".join(
        (
            item.learner.upper(),
            str(item.activity),
            str(int(item.start.timestamp() * 1_000_000)),
            str(int(item.end.timestamp() * 1_000_000)),
            str(item.minutes),
            evidence,
        )
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _lock_learners(session: AsyncSession, learners: set[uuid.UUID]) -> None:
    # concurrent batches for one learner take turns, so two overlapping stretches cannot both
    # pass the overlap check; sorted, so two batches never wait on each other in a cycle
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite writes are serialised by the database itself
    keys = sorted({int.from_bytes(learner.bytes[:8], "big", signed=True) for learner in learners})
    # one round trip; taken in key order, so two batches never wait on each other in a cycle
    await session.execute(
        text("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:keys AS bigint[])) AS k"),
        {"keys": keys},
    )


def _day(moment: datetime) -> str:
    return moment.astimezone(CHINA).date().isoformat()


async def ingest(
    *,
    session: AsyncSession,
    accounts: httpx.AsyncClient,
    authorization: str,
    client_id: str,
    items: list[Any],
    source: str = "partner",
    now: datetime | None = None,
) -> BatchResult:
    """Check and store one batch; every item gets a result.

    ``source`` names the records' way in: ``partner`` (record batches) or ``xapi`` (statements
    mapped to partner records by :mod:`credits.xapi`); the checks are the same.
    """
    moment = now or datetime.now(UTC)
    results: list[ItemResult | None] = [None] * len(items)
    parsed: dict[int, PartnerRecord] = {}
    try:  # the usual case, a clean batch, in one call; item by item only to find the bad ones
        parsed = dict(enumerate(_batch.validate_python(items)))
        raw_items: list[tuple[int, Any]] = []
    except ValidationError:
        raw_items = list(enumerate(items))
    for index, raw in raw_items:
        try:
            item = _item.validate_python(raw)
        except ValidationError as exc:
            given = (
                raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
            )
            errors = [
                ItemError(field=".".join(str(p) for p in e["loc"]) or "item", reason=e["msg"])
                for e in exc.errors()
            ]
            results[index] = ItemResult(index=index, id=given, status="rejected", errors=errors)
            continue
        parsed[index] = item
    seen: dict[str, int] = {}
    for index, item in list(parsed.items()):
        if item.id in seen:
            results[index] = ItemResult(
                index=index,
                id=item.id,
                status="rejected",
                errors=[
                    ItemError(field="id", reason=f"repeats item {seen[item.id]} of this batch")
                ],
            )
            del parsed[index]
        else:
            seen[item.id] = index

    learners = await lookup_learners(
        accounts, authorization, sorted({i.learner.upper() for i in parsed.values()})
    )
    # lock before looking for retries: a concurrent request for the same learner commits first,
    # and we then see its rows (READ COMMITTED) as duplicates, not as overlapping stretches
    await _lock_learners(session, {found[0] for found in learners.values()})
    # what is stored already under these partner ids: retries and conflicts
    existing = {
        row.external_id: row
        for row in (
            await session.execute(
                select(
                    col(LearningRecord.id),
                    col(LearningRecord.external_id),
                    col(LearningRecord.evidence),
                ).where(
                    col(LearningRecord.source_client) == client_id,
                    col(LearningRecord.external_id).in_([i.id for i in parsed.values()]),
                )
            )
        ).all()
    }
    hashes = {index: content_hash(item) for index, item in parsed.items()}
    for index, item in list(parsed.items()):
        stored = existing.get(item.id)
        if stored is None:
            continue
        same = stored.evidence.get("_content_hash") == hashes[index]
        results[index] = ItemResult(
            index=index,
            id=item.id,
            status="duplicate" if same else "conflict",
            record_id=stored.id,
            errors=[]
            if same
            else [ItemError(field="id", reason="this id was stored with other content")],
        )
        del parsed[index]

    activities = {
        a.id: a
        for a in (
            await session.execute(
                select(Activity).where(col(Activity.id).in_({i.activity for i in parsed.values()}))
            )
        ).scalars()
    }

    def refuse(index: int, item: PartnerRecord, field: str, reason: str) -> None:
        results[index] = ItemResult(
            index=index,
            id=item.id,
            status="rejected",
            errors=[ItemError(field=field, reason=reason)],
        )
        del parsed[index]

    for index, item in list(parsed.items()):
        learner = learners.get(item.learner.upper())
        activity = activities.get(item.activity)
        length = (item.end - item.start).total_seconds() / 60
        if learner is None:
            refuse(index, item, "learner", "unknown learning account number")
        elif learner[1] != "active":
            refuse(index, item, "learner", f"the learning account is {learner[1]}")
        elif activity is None or activity.partner_client != client_id:
            refuse(index, item, "activity", "unknown activity, or not one of this partner's")
        elif length <= 0:
            refuse(index, item, "end", "end must be after start")
        elif item.minutes > length:
            refuse(index, item, "minutes", "more minutes than the interval holds")
        elif item.end > moment + CLOCK_SKEW:
            refuse(index, item, "end", "the stretch ends in the future")

    by_learner: dict[uuid.UUID, list[int]] = defaultdict(list)
    for index, item in parsed.items():
        by_learner[learners[item.learner.upper()][0]].append(index)
    intervals: dict[uuid.UUID, list[tuple[datetime, datetime]]] = defaultdict(list)
    day_minutes: dict[tuple[uuid.UUID, str], int] = defaultdict(int)
    if parsed:
        learner_ids = list(by_learner)
        earliest = min(i.start for i in parsed.values())
        latest = max(i.end for i in parsed.values())
        # only the stretches that overlap the batch's span, not everything around it
        overlapping = await session.execute(
            select(
                col(LearningRecord.learner_id),
                col(LearningRecord.started_at),
                col(LearningRecord.ended_at),
            ).where(
                col(LearningRecord.learner_id).in_(learner_ids),
                col(LearningRecord.status).in_(LIVE),
                col(LearningRecord.started_at) < latest,
                col(LearningRecord.ended_at) > earliest,
            )
        )
        for learner_id, started, ended in overlapping.all():
            intervals[learner_id].append((aware_utc(started), aware_utc(ended)))
        # minutes already recorded on each Beijing day the batch touches, summed in the database
        first_day = datetime.combine(earliest.astimezone(CHINA).date(), datetime.min.time(), CHINA)
        last_day = datetime.combine(latest.astimezone(CHINA).date(), datetime.min.time(), CHINA)
        if session.get_bind().dialect.name == "postgresql":
            local_day = func.date(func.timezone("Asia/Shanghai", col(LearningRecord.started_at)))
        else:
            local_day = func.date(col(LearningRecord.started_at), "+8 hours")
        sums = await session.execute(
            sql_select(
                col(LearningRecord.learner_id), local_day, func.sum(col(LearningRecord.minutes))
            )
            .where(
                col(LearningRecord.learner_id).in_(learner_ids),
                col(LearningRecord.status).in_(LIVE),
                col(LearningRecord.started_at) >= first_day,
                col(LearningRecord.started_at) < last_day + timedelta(days=1),
            )
            .group_by(col(LearningRecord.learner_id), local_day)
        )
        for learner_id, on_day, minutes in sums.all():
            day_minutes[(learner_id, str(on_day))] += int(minutes)

    accepted: list[tuple[int, dict[str, Any]]] = []
    for learner_id, indexes in by_learner.items():
        for index in sorted(indexes, key=lambda i: (parsed[i].start, i)):
            item = parsed[index]
            start, end = item.start.astimezone(UTC), item.end.astimezone(UTC)
            if any(s < end and start < e for s, e in intervals[learner_id]):
                refuse(index, item, "start", "overlaps a stretch already recorded for this learner")
                continue
            day = (learner_id, _day(start))
            if day_minutes[day] + item.minutes > 24 * 60:
                refuse(index, item, "minutes", "more than 24 hours in one day for this learner")
                continue
            intervals[learner_id].append((start, end))
            day_minutes[day] += item.minutes
            activity = activities[item.activity]
            accepted.append(
                (
                    index,
                    {
                        "learner_id": learner_id,
                        "activity_id": activity.id,
                        "category_code": activity.category_code,
                        "mode": activity.mode,
                        "host_unit_path": activity.host_unit_path,
                        "source": source,
                        "source_client": client_id,
                        "external_id": item.id,
                        "started_at": start,
                        "ended_at": end,
                        "minutes": item.minutes,
                        "evidence": {**item.evidence, "_content_hash": hashes[index]},
                        "status": "pending",
                        "status_changed_at": moment,
                        "status_changed_by": f"partner:{client_id}",
                        "created_at": moment,
                    },
                )
            )

    if accepted:
        dialect = session.get_bind().dialect.name
        where = text("external_id IS NOT NULL")
        keys = ["source_client", "external_id"]
        if dialect == "postgresql":
            statement: Any = pg_insert(LearningRecord).on_conflict_do_nothing(
                index_elements=keys, index_where=where
            )
        else:
            statement = sqlite_insert(LearningRecord).on_conflict_do_nothing(
                index_elements=keys, index_where=where
            )
        returned = await session.execute(
            statement.returning(col(LearningRecord.id), col(LearningRecord.external_id)),
            [values for _, values in accepted],
        )
        ids = {external: record_id for record_id, external in returned.all()}
        late: list[int] = []
        for index, values in accepted:
            record_id = ids.get(values["external_id"])
            if record_id is not None:
                results[index] = ItemResult(
                    index=index, id=values["external_id"], status="created", record_id=record_id
                )
            else:  # a concurrent request stored the same partner id first: say which it was
                late.append(index)
        if late:
            rows = await session.execute(
                select(
                    col(LearningRecord.id),
                    col(LearningRecord.external_id),
                    col(LearningRecord.evidence),
                ).where(
                    col(LearningRecord.source_client) == client_id,
                    col(LearningRecord.external_id).in_([parsed[i].id for i in late]),
                )
            )
            winners = {row.external_id: row for row in rows}
            for index in late:
                winner = winners[parsed[index].id]
                same = winner.evidence.get("_content_hash") == hashes[index]
                results[index] = ItemResult(
                    index=index,
                    id=parsed[index].id,
                    status="duplicate" if same else "conflict",
                    record_id=winner.id,
                )
    final = [r for r in results if r is not None]
    assert len(final) == len(items)
    return BatchResult(
        created=sum(r.status == "created" for r in final),
        duplicates=sum(r.status == "duplicate" for r in final),
        conflicts=sum(r.status == "conflict" for r in final),
        rejected=sum(r.status == "rejected" for r in final),
        results=final,
    )

"""xAPI statements into learning records: each statement mapped to a partner record
(:mod:`credits.xapi.statements`) and stored by the partner ingestion (:func:`ingest`), which does
every check (learner, the partner's own activity, overlap, 24 hours a day, retries)."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from credits.ingest.learners import LearnerDirectory
from credits.ingest.parsing import parse_items
from credits.ingest.schemas import BatchResult, ItemError, ItemResult
from credits.ingest.service import ingest
from credits.xapi import statements

# the partner record's fields, as the statement names them
FIELDS = {
    "id": "id",
    "learner": "actor.account.name",
    "activity": "object.id",
    "start": "timestamp",
    "end": "timestamp",
    "minutes": "result.duration",
    "evidence": "statement",
}


def _in_xapi_terms(error: ItemError) -> ItemError:
    head = error.field.partition(".")[0]
    return ItemError(field=FIELDS.get(head, error.field), reason=error.reason)


async def record_statements(
    *,
    session: AsyncSession,
    directory: LearnerDirectory,
    accounts: httpx.AsyncClient,
    authorization: str,
    client_id: str,
    items: list[Any],
) -> BatchResult:
    """Check and store a partner's statements; every statement gets a result, in order."""
    results: list[ItemResult | None] = [None] * len(items)
    mapped: list[dict[str, Any]] = []
    positions: list[int] = []  # where each mapped record stood among the statements
    seen: dict[str, int] = {}
    for index, raw in enumerate(items):
        given = statements.statement_id(raw)
        if given is not None and given in seen:
            results[index] = ItemResult(
                index=index,
                id=given,
                status="rejected",
                errors=[ItemError(field="id", reason=f"repeats statement {seen[given]}")],
            )
            continue
        try:
            record = statements.to_partner_record(raw)
        except statements.Refusal as refusal:
            results[index] = ItemResult(
                index=index,
                id=given,
                status="rejected",
                errors=[ItemError(field=refusal.field, reason=refusal.reason)],
            )
            continue
        seen[record["id"]] = index
        mapped.append(record)
        positions.append(index)
    if mapped:
        stored = await ingest(
            session=session,
            directory=directory,
            accounts=accounts,
            authorization=authorization,
            client_id=client_id,
            batch=parse_items(mapped),
            source="xapi",
            comparable=statements.comparable,
        )
        for outcome in stored.results:
            index = positions[outcome.index]
            results[index] = outcome.model_copy(
                update={"index": index, "errors": [_in_xapi_terms(e) for e in outcome.errors]}
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

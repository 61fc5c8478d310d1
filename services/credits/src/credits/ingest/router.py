"""The partner ingestion route: up to 1,000 records a request, per-item results."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from credits.audit import service as audit
from credits.ingest import service
from credits.ingest.models import IdempotencyRecord
from credits.ingest.parsing import BatchTooLarge, InvalidBatch, parse_batch
from credits.ingest.schemas import BatchResult
from kernel.auth import CurrentPrincipal
from kernel.db import SessionDep
from kernel.problems import PROBLEMS, DomainError, Forbidden

router = APIRouter(prefix="/api/v1", tags=["learning records"])


__all__ = ["BatchTooLarge", "IdempotencyKeyReused", "InvalidBatch", "router"]


class IdempotencyKeyReused(DomainError):
    """The same Idempotency-Key came with a different body."""

    type = PROBLEMS + "idempotency-key-reused"
    status = 422
    title = "Idempotency key reused"


async def _stored_answer(session: AsyncSession, client: str, key: str) -> IdempotencyRecord | None:
    """The answer stored under this client's Idempotency-Key, if any."""
    query = select(IdempotencyRecord).where(
        col(IdempotencyRecord.client) == client, col(IdempotencyRecord.key) == key
    )
    return (await session.execute(query)).scalar_one_or_none()


@router.post("/learning-records:batch", response_model=BatchResult)
async def post_batch(
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """Store a partner platform's learning stretches; each item gets its own result.

    Body: ``{"records": [{"id", "learner", "activity", "start", "end", "minutes",
    "evidence"?}, ...]}``. The same ``id`` with the same content is a no-op that answers with
    the stored record; with other content it is a per-item conflict. With an
    ``Idempotency-Key`` header the whole answer is stored, and a retry gets it back unchanged.
    """
    if principal.kind != "partner" or not principal.has_scope("records:write"):
        raise Forbidden(
            "Only partner platforms post record batches.", detail_zh="仅合作平台可提交学习记录。"
        )
    client_id = str(principal.claims.get("client_id") or principal.subject)
    body = await request.body()  # parsed once, here; the gateway passed the bytes through
    digest = hashlib.sha256(body).hexdigest() if idempotency_key else ""
    if idempotency_key:
        stored = await _stored_answer(session, client_id, idempotency_key)
        if stored is not None:
            if stored.request_hash != digest:
                raise IdempotencyKeyReused("This Idempotency-Key was used with a different body.")
            return JSONResponse(
                stored.response,
                status_code=stored.status_code,
                headers={"Idempotent-Replay": "true"},
            )
    result = await service.ingest(
        session=session,
        directory=request.app.state.learner_directory,
        accounts=request.app.state.accounts,
        authorization=request.headers["authorization"],
        client_id=client_id,
        batch=parse_batch(body),
    )
    if idempotency_key:
        payload = result.model_dump(mode="json")
        try:
            async with session.begin_nested():
                session.add(
                    IdempotencyRecord(
                        client=client_id,
                        key=idempotency_key,
                        request_hash=digest,
                        status_code=200,
                        response=payload,
                    )
                )
                await session.flush()
        except IntegrityError:
            # the same key is being served concurrently: give up ours, answer with theirs
            # (if it was for this body: ours is rolled back, and was not what they stored)
            await session.rollback()
            stored = await _stored_answer(session, client_id, idempotency_key)
            assert stored is not None  # the concurrent request committed it
            if stored.request_hash != digest:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was used with a different body."
                ) from None
            return JSONResponse(
                stored.response,
                status_code=stored.status_code,
                headers={"Idempotent-Replay": "true"},
            )
    audit.record(
        session,
        actor=principal,
        action="learning_record.batch",
        target_type="partner_client",
        target_id=str(client_id),
        after={
            "created": result.created,
            "duplicates": result.duplicates,
            "conflicts": result.conflicts,
            "rejected": result.rejected,
        },
    )
    await session.commit()
    return Response(result.model_dump_json(), media_type="application/json")

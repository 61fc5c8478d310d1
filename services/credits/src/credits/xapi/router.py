"""The xAPI statements route: partner platforms post completed/attended statements."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request

from credits.audit import service as audit
from credits.ingest.parsing import InvalidBatch
from credits.ingest.schemas import MAX_BATCH, BatchResult
from credits.xapi import service, statements
from kernel.auth import CurrentPrincipal
from kernel.db import SessionDep
from kernel.problems import Forbidden

router = APIRouter(prefix="/api/v1", tags=["learning records"])

_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "description": "one xAPI statement (1.0.3 or 2.0), or an array of 1 to "
                    f"{MAX_BATCH}",
                    "oneOf": [
                        {"type": "object"},
                        {"type": "array", "items": {"type": "object"}, "maxItems": MAX_BATCH},
                    ],
                }
            }
        },
    }
}


_DESCRIPTION = f"""A statement counts when its verb is completed or attended, its actor an Agent
with the account `{{"homePage": "{statements.LEARNER_HOME_PAGE}", "name": <learning account
number>}}`, its object the Activity `{statements.ACTIVITY_IRI_PREFIX}<activity id>` (one of this
partner's), with `result.duration` (the learning time) and `timestamp` (when it ended);
`context.extensions["{statements.STARTED_AT}"]` may say when it began (otherwise it began
`result.duration` before `timestamp`). The statement `id` is required and becomes the record's
partner id: posting a statement again is a `duplicate`, the same id with other content a
`conflict`. The statement is kept as the record's evidence. Every statement gets a result, in
order. This is not a Learning Record Store: statements are not served back."""


@router.post(
    "/xapi/statements",
    response_model=BatchResult,
    description=_DESCRIPTION,
    openapi_extra=_BODY,
)
async def post_statements(
    request: Request, principal: CurrentPrincipal, session: SessionDep
) -> BatchResult:
    """Store a partner platform's xAPI statements as learning records, each with its result."""
    if principal.kind != "partner" or not principal.has_scope("records:write"):
        raise Forbidden(
            "Only partner platforms post xAPI statements.", detail_zh="仅合作平台可提交学习记录。"
        )
    client_id = str(principal.claims.get("client_id") or principal.subject)
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise InvalidBatch("The body is not JSON.") from None
    except RecursionError:
        raise InvalidBatch("The body nests too deeply to be statements.") from None
    items = [body] if isinstance(body, dict) else body
    if not isinstance(items, list) or not items:
        raise InvalidBatch("The body must be a statement or a non-empty array of statements.")
    if len(items) > MAX_BATCH:
        raise InvalidBatch(f"At most {MAX_BATCH} statements a request; this one has {len(items)}.")
    result = await service.record_statements(
        session=session,
        directory=request.app.state.learner_directory,
        accounts=request.app.state.accounts,
        authorization=request.headers["authorization"],
        client_id=client_id,
        items=items,
    )
    audit.record(
        session,
        actor=principal,
        action="xapi.statements",
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
    return result

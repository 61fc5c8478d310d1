"""Routes of the PDF transcript: a resident's own, or staff for a learner they cover."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from credits.audit import service as audit
from credits.learners import learner_profile
from credits.transcript import service
from kernel.access import WRITING_STAFF, require_resident, require_staff
from kernel.auth import CurrentPrincipal
from kernel.db import SessionDep
from kernel.tokens import Principal

router = APIRouter(prefix="/api/v1", tags=["transcript"])

PDF: dict[int | str, dict[str, Any]] = {
    201: {"content": {"application/pdf": {}}, "description": "the transcript"}
}


async def _issue(
    request: Request, session: SessionDep, principal: Principal, learner: uuid.UUID
) -> Response:
    profile = await learner_profile(request, principal, learner)
    issuer = request.app.state.credential_issuer
    issued = await service.issue(
        session=session,
        issuer=issuer,
        learner_id=learner,
        profile=profile,
        font_file=request.app.state.settings.transcript_font_file,
        actor=principal.subject,
    )
    audit.record(
        session,
        actor=principal,
        action="transcript.issue",
        target_type="learner",
        target_id=str(learner),
    )
    await session.commit()
    number = issued.document.certificate_number
    return Response(
        issued.pdf,
        status_code=201,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="transcript-{number}.pdf"',
            "Location": issuer.verify_url(number),
            "X-Certificate-Number": number,
            "Cache-Control": "no-store",
        },
    )


@router.post("/me/transcripts", status_code=201, response_class=Response, responses=PDF)
async def my_transcript(
    request: Request, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    """Issue the resident's transcript (学分证明) as a PDF with its own certificate number."""
    learner = uuid.UUID(require_resident(principal))
    return await _issue(request, session, principal, learner)


@router.post(
    "/learners/{learner_id}/transcripts", status_code=201, response_class=Response, responses=PDF
)
async def learner_transcript(
    learner_id: uuid.UUID, request: Request, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    """Staff covering the learner issue their transcript (e.g. at a learning point's counter)."""
    require_staff(principal, WRITING_STAFF)
    return await _issue(request, session, principal, learner_id)

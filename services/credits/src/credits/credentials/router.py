"""Routes of credentials: residents and staff issue them; anyone fetches the keys and the
status list, verifies a credential, or opens a document's verification page."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlmodel import col, select

from credits.audit import service as audit
from credits.credentials import page, service
from credits.credentials.models import IssuedDocument
from credits.credentials.schemas import (
    CredentialIssued,
    CredentialRequest,
    IssuedDocumentPublic,
    VerificationRequest,
    VerificationResult,
)
from credits.learners import VisibleLearner, learner_profile
from kernel.access import WRITING_STAFF, require_resident, require_staff
from kernel.auth import CurrentPrincipal
from kernel.clock import aware, aware_utc
from kernel.db import SessionDep
from kernel.pagination import Page, PageDep
from kernel.problems import NotFound
from kernel.text import CONTROL_FREE
from kernel.tokens import Principal

router = APIRouter(tags=["credentials"])

# the page and the list are public and change when a credential is revoked: never cached long
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none';"
    " form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _issuer(request: Request) -> service.Issuer:
    issuer: service.Issuer = request.app.state.credential_issuer
    return issuer


async def _issue(
    request: Request,
    session: SessionDep,
    principal: Principal,
    learner: uuid.UUID,
    body: CredentialRequest,
) -> CredentialIssued:
    profile = await learner_profile(request, principal, learner)
    issuer = _issuer(request)
    if body.kind == "clr":
        issued = await service.issue_clr(
            session=session,
            issuer=issuer,
            learner_id=learner,
            holder_name=str(profile.get("name", "")),
            actor=principal.subject,
        )
    else:
        assert body.subject is not None
        issued = await service.issue_achievement(
            session=session,
            issuer=issuer,
            learner_id=learner,
            holder_name=str(profile.get("name", "")),
            kind=body.kind,
            subject=body.subject,
            actor=principal.subject,
        )
    audit.record(
        session,
        actor=principal,
        action="credential.issue",
        target_type="learner",
        target_id=str(learner),
        after={"kind": body.kind, "subject": body.subject},
    )
    await session.commit()
    document = issued.document
    assert document.status_list is not None and document.status_index is not None
    return CredentialIssued(
        certificate_number=document.certificate_number,
        kind=document.kind,
        subject_ref=document.subject_ref,
        title=document.title,
        issued_at=aware_utc(document.issued_at),
        expires_at=aware(document.expires_at),
        verify_url=issuer.verify_url(document.certificate_number),
        status_list_credential=issuer.list_url(document.status_list),
        status_list_index=document.status_index,
        credential=issued.token,
    )


@router.post("/api/v1/me/credentials", response_model=CredentialIssued, status_code=201)
async def issue_mine(
    body: CredentialRequest, request: Request, principal: CurrentPrincipal, session: SessionDep
) -> CredentialIssued:
    """Issue one of the resident's achievements (Open Badges 3.0) or their whole record
    (CLR 2.0) as a signed VC-JWT."""
    learner = uuid.UUID(require_resident(principal))
    return await _issue(request, session, principal, learner, body)


@router.get("/api/v1/me/documents", response_model=Page[IssuedDocumentPublic])
async def my_documents(
    request: Request, principal: CurrentPrincipal, session: SessionDep, page: PageDep
) -> Page[IssuedDocumentPublic]:
    """The transcripts and credentials issued to the resident, newest first, each with whether
    it still stands and where anyone can check it."""
    learner = uuid.UUID(require_resident(principal))
    return await service.documents_of(
        session=session, issuer=_issuer(request), learner_id=learner, page=page
    )


@router.get("/api/v1/learners/{learner_id}/documents", response_model=Page[IssuedDocumentPublic])
async def learner_documents(
    request: Request, learner: VisibleLearner, session: SessionDep, page: PageDep
) -> Page[IssuedDocumentPublic]:
    """A learner's issued transcripts and credentials (staff covering the learner, auditors)."""
    return await service.documents_of(
        session=session, issuer=_issuer(request), learner_id=learner, page=page
    )


@router.post(
    "/api/v1/learners/{learner_id}/credentials", response_model=CredentialIssued, status_code=201
)
async def issue_for_learner(
    learner_id: uuid.UUID,
    body: CredentialRequest,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> CredentialIssued:
    """Staff covering the learner issue a credential for them."""
    require_staff(principal, WRITING_STAFF)
    return await _issue(request, session, principal, learner_id, body)


@router.get("/.well-known/credential-keys.json")
async def credential_keys(request: Request) -> JSONResponse:
    """The college's credential-verification keys (RS256), not the access-token keys."""
    return JSONResponse(
        _issuer(request).keys.public_jwks(), headers={"Cache-Control": "public, max-age=300"}
    )


@router.get(
    "/credentials/status/{list_number}",
    responses={200: {"content": {"application/vc+jwt": {}}}},
    response_class=Response,
)
async def status_list(
    list_number: Annotated[int, Path(ge=1, le=service.MAX_STATUS_LISTS)],
    request: Request,
    session: SessionDep,
) -> Response:
    """A Bitstring Status List of revocations, signed as a VC-JWT (valid for a day)."""
    issuer = _issuer(request)
    in_use = await session.execute(
        select(IssuedDocument.id).where(col(IssuedDocument.status_list) == list_number).limit(1)
    )
    if in_use.first() is None:
        raise NotFound(f"No status list {list_number}.", detail_zh="没有该状态列表。")
    token = await service.status_list_token(session, issuer, list_number)
    return Response(token, media_type="application/vc+jwt", headers={"Cache-Control": "no-cache"})


@router.post("/api/v1/credential-verifications", response_model=VerificationResult)
async def verify_credential(
    body: VerificationRequest, request: Request, session: SessionDep
) -> VerificationResult:
    """Verify a VC-JWT: signature, issuer, revocation and validity period (anyone may ask)."""
    checked = await service.verify(session, _issuer(request), body.credential)
    verdict, document = checked.verdict, checked.document
    result: dict[str, Any] = {
        "verdict": verdict.status,
        "valid": verdict.valid,
        "reason": verdict.reason,
    }
    if verdict.credential is not None:
        result["credential_id"] = str(verdict.credential.get("id", "")) or None
    if document is not None:
        result.update(
            certificate_number=document.certificate_number,
            title=document.title,
            holder_masked_name=document.holder_masked_name,
            issued_at=aware(document.issued_at),
            expires_at=aware(document.expires_at),
        )
    return VerificationResult(**result)


@router.get("/verify/{certificate_number}", response_class=HTMLResponse)
async def verification_page(
    certificate_number: Annotated[str, Path(max_length=40, pattern=CONTROL_FREE)],
    request: Request,
    session: SessionDep,
) -> HTMLResponse:
    """The public page a transcript's QR code opens: valid, revoked, expired or unknown."""
    document = await service.by_number(session, certificate_number)
    if document is None:
        facts = page.PageFacts(certificate_number=certificate_number[:40], verdict="unknown")
        return HTMLResponse(page.render(facts), status_code=404, headers=PAGE_HEADERS)
    facts = page.PageFacts(
        certificate_number=document.certificate_number,
        verdict=service.standing(document, datetime.now(UTC)),
        kind_name=service.KIND_NAMES[document.kind],
        title=document.title,
        issuer_name=_issuer(request).profile.name,
        holder_masked_name=document.holder_masked_name,
        issued_at=aware(document.issued_at),
        expires_at=aware(document.expires_at),
        revoked_at=aware(document.revoked_at),
    )
    return HTMLResponse(page.render(facts), headers=PAGE_HEADERS)

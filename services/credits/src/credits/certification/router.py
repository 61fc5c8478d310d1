"""Routes of certification: standards for everyone, submissions with evidence by residents (or
staff for them), review by the college."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse
from sqlmodel import col, select

from credits.activities.service import unit_path
from credits.audit import service as audit
from credits.certification import service, storage
from credits.certification.models import Certification, CertificationEvidence, CertificationStandard
from credits.certification.schemas import (
    CertificationPublic,
    CertificationSubmit,
    EvidencePublic,
    Review,
    StandardPublic,
)
from credits.learners import VisibleLearner, covers_learner, require_visible_learner
from kernel.access import READING_STAFF, WRITING_STAFF, require_staff
from kernel.auth import CurrentPrincipal
from kernel.db import SessionDep
from kernel.pagination import Page, PageDep, cursor_uuid, encode_cursor
from kernel.problems import Forbidden
from kernel.roles import COLLEGE_STAFF, DISTRICT_ADMIN
from kernel.tokens import Principal

router = APIRouter(prefix="/api/v1", tags=["certification"])

REVIEWERS = (COLLEGE_STAFF, DISTRICT_ADMIN)


def _evidence_folder(request: Request) -> Path:
    folder: Path = request.app.state.settings.data_dir / "evidence"
    return folder


async def _visible(
    request: Request,
    session: SessionDep,
    principal: Principal,
    certification_id: uuid.UUID,
    *,
    roles: tuple[str, ...] = READING_STAFF,
) -> Certification:
    """The certification if the caller is its learner or staff with one of ``roles`` covering
    the learner where they live now (accounts is asked; ``learner_unit_path`` is the residence
    of the day it was filed, which the credit audit keeps, not who covers the learner)."""
    certification = await session.get(Certification, certification_id)
    if certification is not None and (
        (principal.kind == "resident" and principal.subject == str(certification.learner_id))
        or await covers_learner(request, principal, certification.learner_id, roles=roles)
    ):
        return certification
    raise service.CertificationNotFound(
        f"No certification {certification_id} that you may see.", detail_zh="找不到该认证申请。"
    )


@router.get("/certification-standards", response_model=list[StandardPublic])
async def standards(session: SessionDep) -> list[StandardPublic]:
    """The standards table: credits per outcome type and level."""
    rows = await session.execute(
        select(CertificationStandard)
        .where(col(CertificationStandard.active))
        .order_by(col(CertificationStandard.id))
    )
    return [service.standard_public(s) for s in rows.scalars()]


@router.post("/certifications", response_model=CertificationPublic, status_code=201)
async def submit(
    body: CertificationSubmit, request: Request, principal: CurrentPrincipal, session: SessionDep
) -> CertificationPublic:
    """Submit an outcome from elsewhere: a resident for themself, staff for a learner they cover."""
    if principal.kind == "resident":
        if body.learner is not None and str(body.learner) != principal.subject:
            raise Forbidden(
                "A resident submits only their own outcomes.",
                detail_zh="居民只能提交本人的学习成果。",
            )
        learner = uuid.UUID(principal.subject)
        path = str(principal.claims.get("unit_path") or "/")
    else:
        require_staff(principal, WRITING_STAFF)
        if body.learner is None:
            raise service.InvalidCertification(
                "Staff must name the learner whose outcome this is.",
                detail_zh="工作人员代为提交时须指明学习者。",
            )
        learner = body.learner
        account = await require_visible_learner(request, principal, learner)
        found = await unit_path(request.app.state.accounts, str(account.get("residence_unit")))
        path = found or str(principal.claims.get("unit_path"))
    certification = await service.submit(
        session=session, learner_id=learner, unit_path=path, data=body, actor=principal.subject
    )
    audit.record(
        session,
        actor=principal,
        action="certification.submit",
        target_type="certification",
        target_id=str(certification.id),
        after=body,
    )
    await session.commit()
    return await service.to_public(session, certification)


@router.post(
    "/certifications/{certification_id}/evidence",
    response_model=EvidencePublic,
    status_code=201,
)
async def upload_evidence(
    certification_id: uuid.UUID,
    file: UploadFile,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> EvidencePublic:
    """Upload one evidence file (PDF, PNG or JPEG; the content decides, not the name).

    The same file again (a retried upload) is the evidence stored already: 200 with it, and
    nothing added."""
    certification = await _visible(
        request, session, principal, certification_id, roles=WRITING_STAFF
    )
    limit: int = request.app.state.settings.evidence_max_bytes
    content = await file.read(limit + 1)
    evidence, created = await service.add_evidence(
        session=session,
        certification=certification,
        folder=_evidence_folder(request),
        content=content,
        filename=file.filename,
        max_bytes=limit,
        actor=principal.subject,
    )
    if created:
        audit.record(
            session,
            actor=principal,
            action="certification.evidence",
            target_type="certification",
            target_id=str(certification.id),
            after=evidence,
        )
        await session.commit()
    else:
        response.status_code = 200
    return EvidencePublic(
        id=evidence.id,
        media_type=evidence.media_type,
        size_bytes=evidence.size_bytes,
        original_name=evidence.original_name,
        sha256=evidence.sha256,
        uploaded_at=evidence.uploaded_at,
    )


@router.get("/certifications/{certification_id}/evidence/{evidence_id}")
async def download_evidence(
    certification_id: uuid.UUID,
    evidence_id: uuid.UUID,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> FileResponse:
    """One evidence file, as an attachment with the type sniffed at upload."""
    await _visible(request, session, principal, certification_id)
    evidence = await session.get(CertificationEvidence, evidence_id)
    if evidence is None or evidence.certification_id != certification_id:
        raise service.CertificationNotFound(
            f"No evidence {evidence_id} of this certification.",
            detail_zh="找不到该认证的这份佐证材料，请返回认证详情重新打开。",
        )
    # a certificate's scan shows the person (name, often the ID number and a photo): who
    # opened it is on the trail, as a reveal of an ID number is in accounts
    await audit.record_query(
        session,
        actor=principal,
        action="certification.evidence.open",
        target_type="certification_evidence",
        target_id=str(evidence.id),
        after={"certification_id": str(certification_id), "sha256": evidence.sha256},
    )
    return FileResponse(
        storage.path_of(_evidence_folder(request), evidence.sha256),
        media_type=evidence.media_type,
        filename=evidence.original_name,
        headers={"X-Content-Type-Options": "nosniff"},
    )


@router.get("/certifications/{certification_id}", response_model=CertificationPublic)
async def get_certification(
    certification_id: uuid.UUID, request: Request, principal: CurrentPrincipal, session: SessionDep
) -> CertificationPublic:
    """One certification with its evidence list (its learner, or staff covering the learner's
    residence as it is now)."""
    certification = await _visible(request, session, principal, certification_id)
    return await service.to_public(session, certification)


@router.get("/me/certifications", response_model=list[CertificationPublic])
async def my_certifications(
    principal: CurrentPrincipal, session: SessionDep
) -> list[CertificationPublic]:
    """The resident's certifications, newest first."""
    if principal.kind != "resident":
        raise Forbidden(
            "Only a resident has their own certifications.", detail_zh="此操作需要居民本人登录。"
        )
    learner = uuid.UUID(principal.subject)
    return await service.certifications_of(session=session, learner_id=learner)


@router.get("/learners/{learner_id}/certifications", response_model=list[CertificationPublic])
async def learner_certifications(
    learner: VisibleLearner, session: SessionDep
) -> list[CertificationPublic]:
    """A learner's certifications, newest first (staff covering the learner, auditors)."""
    return await service.certifications_of(session=session, learner_id=learner)


@router.get("/certifications", response_model=Page[CertificationPublic])
async def list_certifications(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    status: Annotated[str | None, Query(pattern="^(submitted|approved|rejected)$")] = None,
    learner: uuid.UUID | None = None,
) -> Page[CertificationPublic]:
    """Certifications filed under the caller's unit and below, in id order.

    Filed under the learner's residence of the day they were submitted: a resident who moved
    since stays listed where they filed (opening one, or its evidence, is for staff covering
    where the learner lives now), and the learner's own list
    (``/learners/{id}/certifications``) follows the residence."""
    path = require_staff(principal, READING_STAFF)
    query = select(Certification).where(
        col(Certification.learner_unit_path).startswith(path, autoescape=True)
    )
    if status is not None:
        query = query.where(col(Certification.status) == status)
    if learner is not None:
        query = query.where(col(Certification.learner_id) == learner)
    if page.cursor:
        query = query.where(col(Certification.id) > cursor_uuid(page.cursor, "after"))
    rows = list(
        (
            await session.execute(query.order_by(col(Certification.id)).limit(page.limit + 1))
        ).scalars()
    )
    items = await service.to_public_many(session, rows[: page.limit])
    more = len(rows) > page.limit
    return Page[CertificationPublic](
        items=items, next_cursor=encode_cursor({"after": str(items[-1].id)}) if more else None
    )


@router.post("/certifications/{certification_id}/review", response_model=CertificationPublic)
async def review(
    certification_id: uuid.UUID,
    body: Review,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> CertificationPublic:
    """Approve against the standards table (credits posted at once) or reject with a reason
    (the college covering the learner's residence as it is now)."""
    require_staff(principal, REVIEWERS)
    found = await session.get(Certification, certification_id)
    if found is None or not await covers_learner(
        request, principal, found.learner_id, roles=REVIEWERS
    ):
        raise service.CertificationNotFound(
            f"No certification {certification_id} you may review.",
            detail_zh="找不到您可以审核的该认证申请。",
        )
    certification = await service.review(
        session=session, certification_id=certification_id, data=body, actor=principal.subject
    )
    audit.record(
        session,
        actor=principal,
        action="certification.review",
        target_type="certification",
        target_id=str(certification_id),
        before={"status": "submitted"},  # only a submitted certification is reviewed
        after={**body.model_dump(mode="json"), "status": str(certification.status)},
        reason=getattr(body, "reason", None),
        outcome=str(certification.status),
    )
    await session.commit()
    return await service.to_public(session, certification)

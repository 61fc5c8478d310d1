"""Certification (学习成果认证): submit with evidence, review against the standards table,
credit on approval."""

from __future__ import annotations

import unicodedata
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from credits.catalogue.models import ActivityCategory
from credits.certification import storage
from credits.certification.models import (
    Certification,
    CertificationEvidence,
    CertificationStandard,
)
from credits.certification.schemas import (
    CertificationPublic,
    CertificationSubmit,
    EvidencePublic,
    Review,
    StandardPublic,
)
from credits.ledger import service as ledger
from credits.ledger.service import Draft, Leg, Source
from credits.rules import engine
from kernel.clock import aware, aware_utc
from kernel.packagedata import read_json
from kernel.problems import PROBLEMS, Conflict, DomainError, NotFound

MAX_FILES = 5
# advisory lock (SUBMIT_LOCK_CLASS, hashtext(learner)) of a learner's submissions; 7411-7413
# are ingestion's learner buckets, statistics reports and the rule versions (credits.ledger)
SUBMIT_LOCK_CLASS = 7414
_SUBMIT_LOCK = text("SELECT pg_advisory_xact_lock(:lock_class, hashtext(:learner))")
_STATUS_ZH = {"submitted": "待审核", "approved": "已通过", "rejected": "未通过"}


class CertificationNotFound(NotFound):
    """No certification, or none the caller may see."""

    type = PROBLEMS + "certification-not-found"
    title = "Certification not found"


class CertificationRefused(Conflict):
    """The certification cannot be changed as asked in its current state."""

    type = PROBLEMS + "certification-refused"
    title = "Certification refused"


class CertificationExists(Conflict):
    """The learner has submitted this very certificate already (it waits or was approved)."""

    type = PROBLEMS + "certification-exists"
    title = "Certification already submitted"


class CertificationDuplicate(Conflict):
    """Approving would credit a certificate the learner has been credited for already."""

    type = PROBLEMS + "certification-duplicate"
    title = "Certificate already credited"


class InvalidEvidence(DomainError):
    """The uploaded file is not acceptable evidence."""

    type = PROBLEMS + "invalid-evidence"
    status = 422
    title = "Invalid evidence"


class InvalidCertification(DomainError):
    """The submission or review names something that does not exist."""

    type = PROBLEMS + "invalid-certification"
    status = 422
    title = "Invalid certification"


def default_standards() -> dict[str, Any]:
    """The standards table shipped with the service."""
    return read_json("credits.certification", "data/standards.json")


async def load_standards(*, session: AsyncSession, data: dict[str, Any]) -> dict[str, int]:
    """Create or update standards from ``data``; idempotent."""
    created = updated = 0
    for raw in data["standards"]:
        found = (
            await session.execute(
                select(CertificationStandard).where(
                    col(CertificationStandard.outcome_type) == raw["outcome_type"],
                    col(CertificationStandard.level) == raw["level"],
                )
            )
        ).scalar_one_or_none()
        values = {
            "name_zh": raw["name_zh"],
            "name_en": raw["name_en"],
            "hundredths": raw["hundredths"],
            "category_code": raw["category"],
        }
        if found is None:
            session.add(
                CertificationStandard(
                    outcome_type=raw["outcome_type"], level=raw["level"], **values
                )
            )
            created += 1
        elif any(getattr(found, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(found, k, v)
            updated += 1
    await session.flush()
    return {"created": created, "updated": updated, "total": len(data["standards"])}


def standard_public(standard: CertificationStandard) -> StandardPublic:
    """The API view of a standard."""
    return StandardPublic(
        outcome_type=standard.outcome_type,
        level=standard.level,
        name_zh=standard.name_zh,
        name_en=standard.name_en,
        hundredths=standard.hundredths,
        category=standard.category_code,
    )


def _public(
    certification: Certification, files: list[CertificationEvidence]
) -> CertificationPublic:
    return CertificationPublic(
        id=certification.id,
        learner_id=certification.learner_id,
        outcome_type=certification.outcome_type,
        level=certification.level,
        title=certification.title,
        issuer=certification.issuer,
        issued_on=certification.issued_on,
        category=certification.category_code,
        status=certification.status,
        submitted_by=certification.submitted_by,
        submitted_at=aware_utc(certification.submitted_at),
        reviewed_by=certification.reviewed_by,
        reviewed_at=aware(certification.reviewed_at),
        review_reason=certification.review_reason,
        hundredths=certification.hundredths,
        transaction_id=certification.transaction_id,
        evidence=[
            EvidencePublic(
                id=f.id,
                media_type=f.media_type,
                size_bytes=f.size_bytes,
                original_name=f.original_name,
                sha256=f.sha256,
                uploaded_at=aware_utc(f.uploaded_at),
            )
            for f in files
        ],
    )


async def to_public(session: AsyncSession, certification: Certification) -> CertificationPublic:
    """The API view of a certification with its evidence list."""
    return (await to_public_many(session, [certification]))[0]


async def to_public_many(
    session: AsyncSession, certifications: Sequence[Certification]
) -> list[CertificationPublic]:
    """The API views of several certifications, their evidence read in one query."""
    files: dict[uuid.UUID, list[CertificationEvidence]] = defaultdict(list)
    if certifications:
        rows = await session.execute(
            select(CertificationEvidence)
            .where(col(CertificationEvidence.certification_id).in_([c.id for c in certifications]))
            .order_by(col(CertificationEvidence.uploaded_at), col(CertificationEvidence.id))
        )
        for evidence in rows.scalars():
            files[evidence.certification_id].append(evidence)
    return [_public(c, files[c.id]) for c in certifications]


async def certifications_of(
    *, session: AsyncSession, learner_id: uuid.UUID
) -> list[CertificationPublic]:
    """The learner's certifications, newest submission first, with their evidence lists."""
    rows = await session.execute(
        select(Certification)
        .where(col(Certification.learner_id) == learner_id)
        .order_by(col(Certification.submitted_at).desc(), col(Certification.id))
    )
    return await to_public_many(session, list(rows.scalars()))


async def _standard(
    session: AsyncSession, outcome_type: str, level: str
) -> CertificationStandard | None:
    return (
        await session.execute(
            select(CertificationStandard).where(
                col(CertificationStandard.outcome_type) == outcome_type,
                col(CertificationStandard.level) == level,
                col(CertificationStandard.active),
            )
        )
    ).scalar_one_or_none()


async def _check_category(session: AsyncSession, category: str | None) -> None:
    if category is not None and await session.get(ActivityCategory, category) is None:
        raise InvalidCertification(
            f"Unknown category {category!r}; see GET /api/v1/categories.",
            detail_zh="类别不存在，请查看类别列表。",
        )


def _identity(text: str) -> str:
    """A title or issuer as compared between submissions: NFKC-folded (full-width letters and
    digits are the ASCII ones), case-folded, whitespace closed up."""
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def _same_certificate(a: Certification, outcome_type: str, title: str, issuer: str) -> bool:
    return (
        a.outcome_type == outcome_type
        and _identity(a.title) == _identity(title)
        and _identity(a.issuer) == _identity(issuer)
    )


async def _standing(
    session: AsyncSession, learner_id: uuid.UUID, issued_on: date, statuses: tuple[str, ...]
) -> list[Certification]:
    """The learner's certifications of one issue date in the given statuses."""
    rows = await session.execute(
        select(Certification).where(
            col(Certification.learner_id) == learner_id,
            col(Certification.issued_on) == issued_on,
            col(Certification.status).in_(statuses),
        )
    )
    return list(rows.scalars())


async def submit(
    *,
    session: AsyncSession,
    learner_id: uuid.UUID,
    unit_path: str,
    data: CertificationSubmit,
    actor: str,
) -> Certification:
    """Record a submission; it waits for evidence and the college's review."""
    if await _standard(session, data.outcome_type, data.level) is None:
        raise InvalidCertification(
            f"No standard for {data.outcome_type} level {data.level!r}; "
            "see GET /api/v1/certification-standards.",
            detail_zh="认定标准中没有该成果类型和等级。",
        )
    await _check_category(session, data.category)
    # one submission per certificate: a retried POST (the app timed out, the first was stored)
    # or the same certificate sent again would otherwise wait for review twice and could be
    # credited twice. Two submissions of one learner at once take turns (SQLite: one writer).
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            _SUBMIT_LOCK, {"lock_class": SUBMIT_LOCK_CLASS, "learner": str(learner_id)}
        )
    for found in await _standing(session, learner_id, data.issued_on, ("submitted", "approved")):
        if _same_certificate(found, data.outcome_type, data.title, data.issuer):
            raise CertificationExists(
                f"This certificate ({data.title}, issued by {data.issuer} on "
                f"{data.issued_on.isoformat()}) was submitted already as {found.id} and is "
                f"{found.status}: add evidence to that submission or wait for its review.",
                detail_zh=f"该证书已提交过（申请编号 {found.id}，"
                f"状态：{_STATUS_ZH[found.status]}），请在原申请中补充材料或等待审核，不必重复提交。",
                existing=str(found.id),
                existing_status=found.status,
            )
    certification = Certification(
        learner_id=learner_id,
        learner_unit_path=unit_path,
        outcome_type=data.outcome_type,
        level=data.level,
        title=data.title,
        issuer=data.issuer,
        issued_on=data.issued_on,
        category_code=data.category,
        submitted_by=actor,
    )
    session.add(certification)
    await session.flush()
    return certification


async def add_evidence(
    *,
    session: AsyncSession,
    certification: Certification,
    folder: Path,
    content: bytes,
    filename: str | None,
    max_bytes: int,
    actor: str,
) -> tuple[CertificationEvidence, bool]:
    """Check and keep one evidence file of a submitted certification; the same file again
    (a retried upload) is the evidence stored already, returned with ``created`` false."""
    certification = (
        await session.execute(
            select(Certification)
            .where(col(Certification.id) == certification.id)
            .with_for_update()  # uploads at once take turns: the file limit holds
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    if certification.status != "submitted":
        raise CertificationRefused(
            f"The certification is {certification.status}; evidence can no longer be added.",
            detail_zh="该认证申请已审核，不能再上传材料。",
        )
    kept = list(
        (
            await session.execute(
                select(CertificationEvidence).where(
                    col(CertificationEvidence.certification_id) == certification.id
                )
            )
        ).scalars()
    )
    digest = storage.digest_of(content)
    for evidence in kept:
        if evidence.sha256 == digest:
            return evidence, False
    if len(kept) >= MAX_FILES:
        raise InvalidEvidence(
            f"At most {MAX_FILES} files per certification.",
            detail_zh=f"每项认证最多上传 {MAX_FILES} 个文件。",
        )
    try:
        media_type = storage.check(content, max_bytes=max_bytes)
    except storage.EvidenceRejected as exc:
        raise InvalidEvidence(
            f"The file was refused: {exc.reason}. Send a PDF, PNG or JPEG of at most "
            f"{max_bytes // 1_000_000} MB.",
            detail_zh=f"文件不符合要求：请上传不超过 {max_bytes // 1_000_000} MB 的"
            " PDF、PNG 或 JPEG 文件。",
            reason=exc.reason,
        ) from None
    storage.store(folder, content)
    evidence = CertificationEvidence(
        certification_id=certification.id,
        sha256=digest,
        media_type=media_type,
        size_bytes=len(content),
        original_name=storage.safe_name(filename),
        uploaded_by=actor,
    )
    session.add(evidence)
    await session.flush()
    return evidence, True


async def review(
    *, session: AsyncSession, certification_id: uuid.UUID, data: Review, actor: str
) -> Certification:
    """Approve (credits posted in the same transaction) or reject with a reason."""
    found = await session.get(Certification, certification_id)
    if found is None:
        raise CertificationNotFound(
            f"No certification {certification_id}.", detail_zh="找不到该认证申请。"
        )
    await ledger.lock_learners(session, [found.learner_id])
    certification = (
        await session.execute(
            select(Certification)
            .where(col(Certification.id) == certification_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    if certification.status != "submitted":
        raise CertificationRefused(
            f"The certification is already {certification.status}.",
            detail_zh="该认证申请已审核。",
        )
    now = datetime.now(UTC)
    certification.reviewed_by, certification.reviewed_at = actor, now
    certification.review_reason = data.reason
    if data.decision == "reject":
        certification.status = "rejected"
        await session.flush()
        return certification
    level = data.level or certification.level
    standard = await _standard(session, certification.outcome_type, level)
    if standard is None:
        raise InvalidCertification(
            f"No standard for {certification.outcome_type} level {level!r}.",
            detail_zh="认定标准中没有该等级。",
        )
    evidence = (
        await session.execute(
            select(CertificationEvidence.id).where(
                col(CertificationEvidence.certification_id) == certification.id
            )
        )
    ).first()
    if evidence is None:
        raise CertificationRefused(
            "A certification is approved only on evidence; none has been uploaded.",
            detail_zh="尚未上传佐证材料，不能通过认证。",
        )
    await _refuse_credited_twice(session, certification)
    category = standard.category_code or data.category or certification.category_code
    if category is None:
        raise InvalidCertification(
            "This standard leaves the category open: name one in the review.",
            detail_zh="该标准未规定类别，请在审核时指定类别。",
        )
    await _check_category(session, category)
    learner = certification.learner_id
    account = (await ledger.ensure_accounts(session, [(learner, category)]))[(learner, category)]
    issuing = await ledger.system_account(session, "issuing")
    amount = standard.hundredths
    (transaction_id,) = await ledger.write(
        session,
        [
            Draft(
                kind="certification",
                learner_id=learner,
                created_by=actor,
                legs=[Leg(account, "credit", amount), Leg(issuing, "debit", amount)],
                sources=[
                    Source(
                        key=f"certification:{certification.id}",
                        clause=f"certification.{standard.outcome_type}.{standard.level}",
                        category=category,
                        earned_on=engine.local_day(now),
                        amount=amount,
                        rule_version_id=None,
                        certification_id=certification.id,
                        unit_path=certification.learner_unit_path,
                    )
                ],
                reference=f"certification:{certification.id}",
                memo=certification.title[:200],
            )
        ],
    )
    certification.status = "approved"
    certification.level, certification.category_code = level, category
    certification.standard_id, certification.hundredths = standard.id, amount
    certification.transaction_id = transaction_id
    await session.flush()
    return certification


async def _refuse_credited_twice(session: AsyncSession, certification: Certification) -> None:
    """Refuse to approve a certificate the learner was credited for already: the same
    certificate (type, title, issuer, issue date) or the same evidence file under another
    name. Submissions made at once can both pass the submit check; approvals hold the
    learner's lock, so this check sees every approval before it."""
    approved = await _standing(
        session, certification.learner_id, certification.issued_on, ("approved",)
    )
    for found in approved:
        if _same_certificate(
            found, certification.outcome_type, certification.title, certification.issuer
        ):
            raise CertificationDuplicate(
                f"The learner was credited for this certificate already (certification "
                f"{found.id}); reject this submission as a duplicate.",
                detail_zh=f"该证书已认定并计入学分（申请编号 {found.id}），"
                "请以“重复提交”驳回本申请。",
                existing=str(found.id),
            )
    files = select(CertificationEvidence.sha256).where(
        col(CertificationEvidence.certification_id) == certification.id
    )
    shared = (
        await session.execute(
            select(CertificationEvidence.certification_id)
            .join(
                Certification, col(Certification.id) == col(CertificationEvidence.certification_id)
            )
            .where(
                col(Certification.learner_id) == certification.learner_id,
                col(Certification.status) == "approved",
                col(CertificationEvidence.sha256).in_(files),
            )
            .limit(1)
        )
    ).scalar_one_or_none()
    if shared is not None:
        raise CertificationDuplicate(
            f"An evidence file of this submission is evidence of certification {shared}, which "
            "was credited already; check whether they are one certificate.",
            detail_zh=f"本申请的佐证材料与已认定的申请（编号 {shared}）相同，"
            "请核实是否为同一证书。",
            existing=str(shared),
        )

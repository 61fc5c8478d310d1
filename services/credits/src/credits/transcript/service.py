"""Issuing a PDF transcript: gather the figures, record the document, render it off the loop."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from credits.credentials import service as credentials
from credits.credentials.models import IssuedDocument
from credits.credentials.revocation import PORTFOLIO
from credits.transcript import figures as portfolio
from kernel.problems import PROBLEMS, ServiceUnavailable

TITLE = "终身学习档案·学分证明 Lifelong-learning transcript"


class TranscriptUnavailable(ServiceUnavailable):
    """The transcript cannot be rendered here (its font is not installed)."""

    type = PROBLEMS + "transcript-unavailable"
    title = "Transcript unavailable"


@dataclass(frozen=True)
class IssuedTranscript:
    """A transcript as issued: its row and the PDF."""

    document: IssuedDocument
    pdf: bytes


async def issue(
    *,
    session: AsyncSession,
    issuer: credentials.Issuer,
    learner_id: uuid.UUID,
    profile: dict[str, Any],
    font_file: Path,
    actor: str,
) -> IssuedTranscript:
    """Record and render a transcript of the learner's record as it stands now."""
    # reportlab loads on the first transcript, not at every service start
    from credits.transcript import render

    figures = await portfolio.gather(session, learner_id)
    now = credentials.now_seconds()
    expires = issuer.snapshot_expiry(now)
    name = str(profile.get("name", ""))
    document = await credentials.record(
        session,
        kind="transcript",
        learner_id=learner_id,
        subject_ref=PORTFOLIO,
        title=TITLE,
        holder_name=name,
        actor=actor,
        issued_at=now,
        expires_at=expires,
        with_status=False,
    )
    data = render.TranscriptData(
        issuer_name=issuer.profile.name,
        certificate_number=document.certificate_number,
        issued_at=now,
        valid_until=expires,
        verify_url=issuer.verify_url(document.certificate_number),
        learner_name=name,
        id_number_masked=str(profile.get("id_number_masked", "")),
        account_number=str(profile.get("account_number", "")),
        figures=figures,
    )
    try:
        pdf = await asyncio.to_thread(render.render, data, font_file)
    except render.FontMissing:
        raise TranscriptUnavailable(
            "The transcript font is not installed on this server; the operator must run"
            " `make setup` (Debian package fonts-wqy-microhei).",
            detail_zh="服务器未安装学分证明所需字体，请联系管理员。",
        ) from None
    document.digest = hashlib.sha256(pdf).hexdigest()
    await session.flush()
    return IssuedTranscript(document, pdf)

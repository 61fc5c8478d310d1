"""Routes of the credit rules: read by anyone, authored and published by the college."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time

from fastapi import APIRouter, Depends
from sqlalchemy import select as sql_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from credits.audit import service as audit
from credits.incentives import service as incentives
from credits.ledger import service as ledger
from credits.ledger import settlement
from credits.records.models import LearningRecord
from credits.rules import engine
from credits.rules import service as rules
from credits.rules.models import RuleVersion
from credits.rules.schemas import (
    FIRST_DAY,
    LAST_DAY,
    BalanceChange,
    CorrectionRequest,
    CorrectionResult,
    PointsChange,
    RuleVersionCreate,
    RuleVersionPublic,
)
from kernel.access import require_staff
from kernel.auth import CurrentPrincipal, require_roles
from kernel.db import SessionDep
from kernel.problems import PROBLEMS, DomainError
from kernel.roles import COLLEGE_STAFF, DISTRICT_ADMIN

router = APIRouter(prefix="/api/v1", tags=["credit rules"])

RULE_AUTHORS = (COLLEGE_STAFF, DISTRICT_ADMIN)
CHUNK = 500
# rule_version.id is a 32-bit integer on PostgreSQL: a larger id names no version (and would
# be a driver error, a 500, if it reached the database)
LAST_ID = 2**31 - 1


class RuleVersionRefused(DomainError):
    """The version cannot be published as it stands."""

    type = PROBLEMS + "rule-version-refused"
    status = 422
    title = "Rule version refused"


async def _version(session: AsyncSession, version_id: int) -> RuleVersion:
    """The version, or 404 (an id out of the column's range included)."""
    if not 0 < version_id <= LAST_ID:
        raise rules.RuleVersionNotFound(
            f"No rule version {version_id}.", detail_zh="找不到该规则版本。"
        )
    return await rules.get_or_raise(session, version_id)


@router.get("/rule-versions", response_model=list[RuleVersionPublic])
async def list_versions(session: SessionDep) -> list[RuleVersionPublic]:
    """Every rule version, published and draft, oldest first (the rules are public)."""
    rows = await session.execute(select(RuleVersion).order_by(col(RuleVersion.id)))
    return [rules.to_public(v) for v in rows.scalars()]


@router.get("/rule-versions/{version_id}", response_model=RuleVersionPublic)
async def get_version(version_id: int, session: SessionDep) -> RuleVersionPublic:
    """One rule version with its body and digest."""
    return rules.to_public(await _version(session, version_id))


@router.post(
    "/rule-versions",
    response_model=RuleVersionPublic,
    status_code=201,
    dependencies=[Depends(require_roles(*RULE_AUTHORS))],  # refused before the body is read
)
async def create_version(
    body: RuleVersionCreate, principal: CurrentPrincipal, session: SessionDep
) -> RuleVersionPublic:
    """A new draft (college staff); validated now, published later."""
    require_staff(principal, RULE_AUTHORS)
    version = await rules.create_draft(session=session, data=body, actor=principal.subject)
    audit.record(
        session,
        actor=principal,
        action="rule_version.create",
        target_type="rule_version",
        target_id=str(version.id),
        after=body,
    )
    await session.commit()
    return rules.to_public(version)


async def _affected_learners(session: AsyncSession, version: RuleVersion) -> list[uuid.UUID]:
    # as UTC: SQLite compares the stored UTC digits as text, and would read a +08:00 bound's
    # digits as UTC (missing the first eight hours of the version's first day)
    start = datetime.combine(version.effective_from, time.min, engine.CHINA).astimezone(UTC)
    query = sql_select(col(LearningRecord.learner_id)).where(
        col(LearningRecord.started_at) >= start
    )
    if version.effective_to is not None:
        end = datetime.combine(version.effective_to, time.min, engine.CHINA).astimezone(UTC)
        query = query.where(col(LearningRecord.started_at) < end)
    rows = await session.execute(
        query.group_by(col(LearningRecord.learner_id)).order_by(col(LearningRecord.learner_id))
    )
    return list(rows.scalars())


@router.post("/rule-versions/{version_id}/publish", response_model=CorrectionResult)
async def publish(
    version_id: int, body: CorrectionRequest, principal: CurrentPrincipal, session: SessionDep
) -> CorrectionResult:
    """Publish a draft and settle every learner whose credits or volunteer points it changes.

    With ``dry_run`` (the default) nothing is published: the answer lists every balance that
    would change and by how much, and (``point_changes``) the volunteer points of every
    learner, unit and year whose year's last day the version covers. Without it the version
    is published and adjustment entries citing it are posted in the same transaction.
    History is never rewritten.
    """
    require_staff(principal, RULE_AUTHORS)
    if not body.dry_run:
        # no settlement may read the versions until this one is committed with its own
        # settlement (ledger.RULES_LOCK), taken before any learner's lock; and the version
        # is read under it, so two publications of one draft cannot both find it a draft
        await ledger.lock_rules(session, exclusive=True)
    version = await _version(session, version_id)
    if not (
        FIRST_DAY <= version.effective_from <= LAST_DAY
        and (version.effective_to is None or FIRST_DAY <= version.effective_to <= LAST_DAY)
    ):  # a draft stored before drafts were bounded
        raise RuleVersionRefused(
            f"Rule version {version.id} takes effect outside {FIRST_DAY} to {LAST_DAY}; author"
            " a new version with its days in range.",
            detail_zh=f"规则版本的生效日期须在 {FIRST_DAY} 至 {LAST_DAY} 之间，请新建版本。",
        )
    if body.dry_run:
        rules.require_draft(version)
        extra = [rules.as_ruleset(version)]
    else:
        rules.mark_published(version, actor=principal.subject, reason=body.reason)
        await session.flush()
        extra = []
    learners = await _affected_learners(session, version)
    changes: list[BalanceChange] = []
    for start in range(0, len(learners), CHUNK):
        outcome = await settlement.settle(
            session,
            learners[start : start + CHUNK],
            actor=f"staff:{principal.subject}",
            extra_versions=extra,
            write=not body.dry_run,
            lock=not body.dry_run,
            cause_version_id=version.id,
            memo=f"rule correction: {body.reason}"[:200],
        )
        changes.extend(
            BalanceChange(
                learner_id=str(c.learner_id),
                category=c.category,
                before_hundredths=c.before,
                after_hundredths=c.after,
                delta_hundredths=c.delta,
            )
            for c in outcome.changes
        )
    # volunteer points read the version of their year's last day: settled (or listed) too
    points = [
        PointsChange(
            learner_id=str(p.learner_id),
            unit=p.unit,
            year=p.year,
            before_hundredths=p.granted,
            after_hundredths=p.entitled,
            delta_hundredths=p.delta,
        )
        for p in await incentives.resettle_for(
            session,
            version,
            write=not body.dry_run,
            actor=f"staff:{principal.subject}",
            memo=f"rule correction: {body.reason}"[:200],
            drafted=body.dry_run,
        )
    ]
    if not body.dry_run:
        audit.record(
            session,
            actor=principal,
            action="rule_version.publish",
            target_type="rule_version",
            target_id=str(version.id),
            before={"status": "draft"},  # only a draft is published (mark_published)
            after={
                "status": version.status,
                "changes": len(changes),
                "point_changes": len(points),
                "total_delta_hundredths": sum(c.delta_hundredths for c in changes),
            },
            reason=body.reason,
        )
        await session.commit()
    assert version.id is not None
    return CorrectionResult(
        version_id=version.id,
        dry_run=body.dry_run,
        learners=len(learners),
        changes=changes,
        total_delta_hundredths=sum(c.delta_hundredths for c in changes),
        point_changes=points,
        total_points_delta_hundredths=sum(p.delta_hundredths for p in points),
    )

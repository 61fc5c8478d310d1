"""Rule versions: drafts authored by the college, published once, never edited after."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from credits.rules import engine
from credits.rules.models import RuleVersion
from credits.rules.schemas import RuleVersionCreate, RuleVersionPublic, to_ruleset
from kernel.packagedata import read_json
from kernel.problems import PROBLEMS, Conflict, NotFound


class RuleVersionNotFound(NotFound):
    """No such rule version."""

    type = PROBLEMS + "rule-version-not-found"
    title = "Rule version not found"


class RuleVersionPublished(Conflict):
    """A published version is never changed."""

    type = PROBLEMS + "rule-version-published"
    title = "Rule version already published"


def digest(body: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a rule body, shown with the version."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def to_public(version: RuleVersion) -> RuleVersionPublic:
    """The API view of a rule version."""
    assert version.id is not None
    return RuleVersionPublic(
        id=version.id,
        code=version.code,
        version=version.version,
        title=version.title,
        status=version.status,
        effective_from=version.effective_from,
        effective_to=version.effective_to,
        body=version.body,
        digest=version.digest,
        created_by=version.created_by,
        created_at=version.created_at,
        published_by=version.published_by,
        published_at=version.published_at,
    )


def as_ruleset(version: RuleVersion) -> engine.RuleSet:
    """What the engine reads of a stored version."""
    assert version.id is not None
    return to_ruleset(
        version_id=version.id,
        effective_from=version.effective_from,
        effective_to=version.effective_to,
        body=version.body,
    )


async def published(session: AsyncSession) -> list[RuleVersion]:
    """Published versions in publication order (a later one wins where they overlap)."""
    rows = await session.execute(
        select(RuleVersion)
        .where(col(RuleVersion.status) == "published")
        .order_by(col(RuleVersion.published_at), col(RuleVersion.id))
    )
    return list(rows.scalars())


async def published_rulesets(session: AsyncSession) -> list[engine.RuleSet]:
    """The published versions as the engine reads them, in publication order."""
    return [as_ruleset(v) for v in await published(session)]


async def get_or_raise(session: AsyncSession, version_id: int) -> RuleVersion:
    """The version, or 404."""
    version = await session.get(RuleVersion, version_id)
    if version is None:
        raise RuleVersionNotFound(f"No rule version {version_id}.", detail_zh="找不到该规则版本。")
    return version


async def create_draft(
    *, session: AsyncSession, data: RuleVersionCreate, actor: str
) -> RuleVersion:
    """A new draft: the next version number of its code."""
    body = data.body.model_dump(mode="json")
    latest = (
        await session.execute(
            select(func.max(col(RuleVersion.version))).where(col(RuleVersion.code) == data.code)
        )
    ).scalar_one_or_none()
    version = RuleVersion(
        code=data.code,
        version=(latest or 0) + 1,
        title=data.title,
        effective_from=data.effective_from,
        effective_to=data.effective_to,
        body=body,
        digest=digest(body),
        created_by=actor,
    )
    session.add(version)
    await session.flush()
    return version


def require_draft(version: RuleVersion) -> None:
    """Refuse to change a version that is not a draft any more."""
    if version.status != "draft":
        raise RuleVersionPublished(
            f"Rule version {version.id} is {version.status}; publish a new version instead.",
            detail_zh="已发布的规则版本不能修改，请发布新版本。",
        )


def mark_published(version: RuleVersion, *, actor: str, reason: str) -> None:
    """Publish a draft (the caller settles the credits it changes in the same transaction)."""
    require_draft(version)
    version.status = "published"
    version.published_by = actor
    version.published_at = datetime.now(UTC)
    version.publish_reason = reason


def default_rule_file() -> dict[str, Any]:
    """The district's default rule set shipped with the service."""
    return read_json("credits.rules", "data/muye_default.json")


async def load_default_rules(
    *, session: AsyncSession, actor: str = "system:seed"
) -> dict[str, int]:
    """Publish the default rule set when no version of its code exists yet; idempotent."""
    data = default_rule_file()
    exists = (
        await session.execute(select(RuleVersion.id).where(col(RuleVersion.code) == data["code"]))
    ).first()
    if exists is not None:
        return {"created": 0}
    create = RuleVersionCreate(
        code=data["code"],
        title=data["title"],
        effective_from=date.fromisoformat(data["effective_from"]),
        effective_to=date.fromisoformat(data["effective_to"]) if data["effective_to"] else None,
        body=data["body"],
    )
    version = await create_draft(session=session, data=create, actor=actor)
    mark_published(version, actor=actor, reason="the district's default rule set")
    await session.flush()
    return {"created": 1}

"""The auditor's endpoints, the same in every service: list entries and verify the chain.

Only auditors and the district administrator may call them, and every call (a refused one
too) is itself written to the trail.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kernel import auditstore
from kernel.auditstore import AuditTables
from kernel.auth import CurrentPrincipal
from kernel.clock import aware_utc
from kernel.db import SessionDep
from kernel.pagination import Page, PageDep, cursor_row_id, encode_cursor
from kernel.problems import Forbidden
from kernel.roles import AUDITOR, DISTRICT_ADMIN
from kernel.tokens import Principal

AUDIT_READERS = (AUDITOR, DISTRICT_ADMIN)

log = logging.getLogger("kernel.auditapi")


class AuditEntryPublic(BaseModel):
    """One audit entry as stored, with its place in the chain."""

    seq: int
    at: datetime
    actor: str
    actor_kind: str
    actor_role: str | None
    actor_unit: str | None
    action: str
    target_type: str
    target_id: str
    before_digest: str | None
    after_digest: str | None
    reason: str | None
    request_id: str | None
    outcome: str
    prev_hash: str
    hash: str


class ChainLink(BaseModel):
    """A position in the chain."""

    seq: int
    hash: str


class ChainBreak(BaseModel):
    """The first entry that was altered, removed or inserted."""

    seq: int
    kind: Literal["altered", "removed", "inserted"]
    detail: str


class ChainVerification(BaseModel):
    """The result of walking the whole chain from its anchor to its head."""

    ok: bool
    entries_checked: int
    first_break: ChainBreak | None
    anchor: ChainLink
    head: ChainLink


async def _admit(
    session: AsyncSession, tables: AuditTables, principal: Principal, what: str
) -> None:
    """Refuse anyone but auditors; the refusal is committed to the trail before it is raised."""
    if principal.kind == "staff" and principal.has_role(*AUDIT_READERS):
        return
    auditstore.stage(
        session,
        tables,
        [
            auditstore.new_entry(
                actor=principal,
                action=what,
                target_type="audit_trail",
                target_id="*",
                outcome="refused",
            )
        ],
    )
    await session.commit()
    raise Forbidden(
        "Only auditors may read the audit trail.", detail_zh="只有审计人员可以查看审计日志。"
    )


async def commit_query(session: AsyncSession) -> None:
    """Commit the auditor's query entry; a chain an intruder extended cannot take it.

    A forged entry sitting after the head takes the number the next entry needs, so every
    audited write fails until it is dealt with (fail closed). The auditor's read still answers,
    so the break can be seen and investigated; the lost entry is logged instead.
    """
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        log.error("audit: the auditor's query could not be chained; verify the audit chain")


def audit_router(tables: AuditTables, *, service: str) -> APIRouter:
    """The auditor's routes over ``tables``, under ``/api/v1/audit/{service}``.

    The service's name is part of the path so the gateway, which maps public paths to services
    one to one, can route each service's trail without rewriting paths.
    """
    router = APIRouter(prefix=f"/api/v1/audit/{service}", tags=["audit trail"])

    @router.get("/entries", response_model=Page[AuditEntryPublic])
    async def list_entries(
        principal: CurrentPrincipal,
        session: SessionDep,
        page: PageDep,
        action: Annotated[str | None, Query(max_length=60)] = None,
        actor: Annotated[str | None, Query(max_length=80)] = None,
        target_type: Annotated[str | None, Query(max_length=40)] = None,
        target_id: Annotated[str | None, Query(max_length=80)] = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Page[AuditEntryPublic]:
        """Audit entries, newest first, filtered by action, actor, target and time (审计日志)."""
        await _admit(session, tables, principal, "audit.list")
        entry = tables.entry
        query = select(entry).order_by(entry.c.seq.desc()).limit(page.limit + 1)
        filters = {
            "action": action,
            "actor": actor,
            "target_type": target_type,
            "target_id": target_id,
        }
        for name, value in filters.items():
            if value is not None:
                query = query.where(entry.c[name] == value)
        if since is not None:
            query = query.where(entry.c.at >= aware_utc(since))
        if until is not None:
            query = query.where(entry.c.at < aware_utc(until))
        if page.cursor is not None:
            query = query.where(entry.c.seq < cursor_row_id(page.cursor, "seq"))
        rows = (await session.execute(query)).mappings().all()
        items = [AuditEntryPublic.model_validate(dict(row)) for row in rows[: page.limit]]
        more = len(rows) > page.limit
        auditstore.stage(
            session,
            tables,
            [
                auditstore.new_entry(
                    actor=principal,
                    action="audit.list",
                    target_type="audit_trail",
                    target_id="*",
                    after={k: v for k, v in filters.items() if v is not None}
                    | {"since": since, "until": until, "cursor": page.cursor},
                )
            ],
        )
        await commit_query(session)
        return Page(
            items=items, next_cursor=encode_cursor({"seq": items[-1].seq}) if more else None
        )

    @router.get("/verify", response_model=ChainVerification)
    async def verify_chain(
        principal: CurrentPrincipal,
        session: SessionDep,
        anchored: Annotated[
            str | None,
            Query(
                pattern=r"^[0-9]+:[0-9a-f]{64}$",
                description="a head (SEQ:HASH) kept outside the database; the chain must hold it",
            ),
        ] = None,
    ) -> ChainVerification:
        """Walk the whole chain and name the first entry altered, removed or inserted."""
        await _admit(session, tables, principal, "audit.verify")
        link = auditstore.parse_link(anchored) if anchored else None
        checked = await auditstore.verify(session, tables, anchored=link)
        result = ChainVerification(
            ok=checked.ok,
            entries_checked=checked.entries_checked,
            first_break=(
                ChainBreak(
                    seq=checked.first_break.seq,
                    kind=checked.first_break.kind,
                    detail=checked.first_break.detail,
                )
                if checked.first_break is not None
                else None
            ),
            anchor=ChainLink(seq=checked.anchor.seq, hash=checked.anchor.hash),
            head=ChainLink(seq=checked.head.seq, hash=checked.head.hash),
        )
        auditstore.stage(
            session,
            tables,
            [
                auditstore.new_entry(
                    actor=principal,
                    action="audit.verify",
                    target_type="audit_trail",
                    target_id="*",
                    after=result.model_dump(mode="json"),
                    outcome="ok" if checked.ok else "broken",
                )
            ],
        )
        await commit_query(session)
        return result

    return router

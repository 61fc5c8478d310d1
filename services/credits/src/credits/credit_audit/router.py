"""Routes of the credit audit (学分审计), for auditors and the district administrator.

One function per query, each reading what it answers and nothing else.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from credits.activities.service import unit_path
from credits.audit import service as audit
from credits.credit_audit import export, service
from credits.credit_audit.schemas import CreditAuditSample, EntryChain
from credits.learners import require_visible_learner
from credits.ledger import reconciliation
from credits.ledger.models import LedgerTransaction
from credits.ledger.schemas import ReconciliationReport
from credits.statistics.period import EARLIEST, LATEST
from kernel.access import covers, require_staff
from kernel.auth import CurrentPrincipal
from kernel.db import SessionDep
from kernel.exports import EXPORT_FORMATS, export_response
from kernel.problems import PROBLEMS, DomainError, Forbidden, NotFound
from kernel.roles import AUDITOR, DISTRICT_ADMIN
from kernel.tokens import Principal

router = APIRouter(prefix="/api/v1", tags=["credit audit"])

# read-only auditors of the county college, and the district administrator; not the college
# staff who grant the credits being audited
CREDIT_AUDITORS = (AUDITOR, DISTRICT_ADMIN)
MAX_SAMPLE = 200
# a key goes into the accounts service's path: nothing that could end or extend it
UNIT_KEY = r"^[0-9A-Za-z_-]+$"
UnitKey = Annotated[
    str, Path(max_length=40, pattern=UNIT_KEY, description="the unit's division code")
]


class InvalidAuditPeriod(DomainError):
    """The period ends before it starts."""

    type = PROBLEMS + "invalid-audit-period"
    status = 422
    title = "Invalid audit period"


class UnitOutOfScope(Forbidden):
    """The unit is not within the auditor's own."""

    type = PROBLEMS + "unit-out-of-scope"
    title = "Unit out of scope"


class UnknownUnit(NotFound):
    """No unit has this code."""

    type = PROBLEMS + "unknown-unit"
    title = "Unknown unit"


async def _audited_unit(request: Request, principal: Principal, unit: str) -> str:
    """The path of ``unit`` once the caller may audit it (403 or 404 otherwise)."""
    require_staff(principal, CREDIT_AUDITORS)
    path = await unit_path(request.app.state.accounts, unit)
    if path is None:
        raise UnknownUnit(f"No unit {unit}.", detail_zh="找不到该单位。")
    if not covers(principal, path, roles=CREDIT_AUDITORS):
        raise UnitOutOfScope(
            f"The unit {unit} is not within yours.", detail_zh="该单位不在您的审计范围内。"
        )
    return path


EXPORTS: dict[int | str, dict[str, object]] = {
    200: {
        "description": "the sample as JSON, or as a workbook (`format=xlsx`: 样本, 账目, 规则,"
        " 学习记录, 来源) or the 来源 table as CSV (`format=csv`)",
        "content": {media: {} for media in EXPORT_FORMATS.values()},
    }
}


@router.get("/credit-audits/sample", response_model=CreditAuditSample, responses=EXPORTS)
async def audit_sample(
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    unit: Annotated[
        str, Query(max_length=40, pattern=UNIT_KEY, description="the unit's division code")
    ],
    period_from: Annotated[date, Query(alias="from", description="first Beijing day")],
    period_to: Annotated[date, Query(alias="to", description="last Beijing day, included")],
    size: Annotated[int, Query(ge=1, le=MAX_SAMPLE)] = 10,
    seed: Annotated[int | None, Query(ge=0, le=service.SEED_LIMIT)] = None,
    format: Annotated[Literal["json", "xlsx", "csv"], Query()] = "json",
) -> CreditAuditSample | Response:
    """A reproducible sample of learners with ledger entries touching the unit (and its
    subtree) in the period, with every such entry's chain of evidence: rule clause and version,
    learning records, and their sources. The same ``seed`` gives the same learners."""
    action = "credit_audit.sample" if format == "json" else "credit_audit.export"
    async with audit.refusals_recorded(
        session, actor=principal, action=action, target_type="unit", target_id=unit
    ):
        path = await _audited_unit(request, principal, unit)
    if period_to < period_from:
        raise InvalidAuditPeriod(
            "The period ends before it starts.", detail_zh="审计期间的结束日期早于开始日期。"
        )
    if period_from < EARLIEST or period_to > LATEST:
        raise InvalidAuditPeriod(
            f"A period lies between {EARLIEST} and {LATEST}.",
            detail_zh=f"审计期间须在 {EARLIEST} 至 {LATEST} 之间。",
        )
    drawn = await service.sample(
        session,
        unit=unit,
        unit_path=path,
        period_from=period_from,
        period_to=period_to,
        size=size,
        seed=seed,
    )
    await audit.record_query(
        session,
        actor=principal,
        action=action,
        target_type="unit",
        target_id=unit,
        after={
            "from": period_from.isoformat(),
            "to": period_to.isoformat(),
            "size": size,
            "seed": drawn.seed,
            "format": format,
            "learners": [str(learner.learner_id) for learner in drawn.learners],
        },
    )
    if format == "json":
        return drawn
    tables = export.sheets(drawn)
    if format == "csv":
        tables = [t for t in tables if t.title == "来源"]
    return export_response(format, export.filename(drawn), tables)


@router.get("/credit-audits/entries/{transaction_id}", response_model=EntryChain)
async def audit_entry(
    transaction_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> EntryChain:
    """One ledger entry's chain of evidence, for an auditor whose unit it touches (or who
    covers the learner's residence)."""
    missing = NotFound(
        f"No ledger entry {transaction_id} that you may audit.",
        detail_zh="找不到该账目或无权审计。",
    )
    async with audit.refusals_recorded(
        session,
        actor=principal,
        action="credit_audit.entry",
        target_type="ledger_transaction",
        target_id=str(transaction_id),
    ):
        own = require_staff(principal, CREDIT_AUDITORS)
        entry = await session.get(LedgerTransaction, transaction_id)
        if entry is None or entry.learner_id is None:
            raise missing
        if not await service.entry_touches(session, transaction_id, own):
            try:
                await require_visible_learner(request, principal, entry.learner_id)
            except NotFound:
                raise missing from None
    (chain,) = await service.chains(session, [entry])
    await audit.record_query(
        session,
        actor=principal,
        action="credit_audit.entry",
        target_type="ledger_transaction",
        target_id=str(transaction_id),
        after={"learner_id": str(entry.learner_id)},
    )
    return chain


@router.get("/credit-audits/reconciliation/{unit}", response_model=ReconciliationReport)
async def audit_reconciliation(
    unit: UnitKey, request: Request, principal: CurrentPrincipal, session: SessionDep
) -> ReconciliationReport:
    """The ledger's reconciliation for the learners of a unit's subtree: each balance, entry,
    certification and conversion of theirs recomputed from records and rules; differences
    listed."""
    async with audit.refusals_recorded(
        session,
        actor=principal,
        action="credit_audit.reconciliation",
        target_type="unit",
        target_id=unit,
    ):
        path = await _audited_unit(request, principal, unit)
    learners = list((await session.execute(service.unit_learners(path))).scalars())
    report = await reconciliation.reconcile(session, learners)
    await audit.record_query(
        session,
        actor=principal,
        action="credit_audit.reconciliation",
        target_type="unit",
        target_id=unit,
        after={"learners": len(learners), "discrepancies": len(report.discrepancies)},
    )
    return report

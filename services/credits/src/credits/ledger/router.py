"""Routes of the ledger: balances and history, traces, settlement, expiry, reconciliation."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from credits.audit import service as audit
from credits.learners import VisibleLearner, require_visible_learner
from credits.ledger import expiry, reconciliation, settlement, statements
from credits.ledger.models import LedgerTransaction
from credits.ledger.schemas import (
    CreditSummary,
    ExpiryRequest,
    ExpiryResult,
    ReconciliationReport,
    SettlementResult,
    TransactionPublic,
)
from kernel.access import require_resident, require_staff
from kernel.auth import CurrentPrincipal
from kernel.db import SessionDep
from kernel.pagination import Page, PageDep
from kernel.problems import NotFound
from kernel.roles import AUDITOR, COLLEGE_STAFF, DISTRICT_ADMIN

router = APIRouter(prefix="/api/v1", tags=["credit ledger"])

LEDGER_KEEPERS = (COLLEGE_STAFF, DISTRICT_ADMIN)
AUDITORS = (AUDITOR, COLLEGE_STAFF, DISTRICT_ADMIN)


@router.get("/me/credits", response_model=CreditSummary)
async def my_credits(principal: CurrentPrincipal, session: SessionDep) -> CreditSummary:
    """The signed-in resident's credit balances (学分账户)."""
    return await statements.summary_of(
        session=session, learner_id=uuid.UUID(require_resident(principal))
    )


@router.get("/me/credit-history", response_model=Page[TransactionPublic])
async def my_history(
    principal: CurrentPrincipal, session: SessionDep, page: PageDep
) -> Page[TransactionPublic]:
    """The resident's ledger entries, newest first, each with where its credits came from."""
    return await statements.history_of(
        session=session, learner_id=uuid.UUID(require_resident(principal)), page=page
    )


@router.get("/learners/{learner_id}/credits", response_model=CreditSummary)
async def learner_credits(learner: VisibleLearner, session: SessionDep) -> CreditSummary:
    """A learner's balances, for staff covering the learner and auditors."""
    return await statements.summary_of(session=session, learner_id=learner)


@router.get("/learners/{learner_id}/credit-history", response_model=Page[TransactionPublic])
async def learner_history(
    learner: VisibleLearner, session: SessionDep, page: PageDep
) -> Page[TransactionPublic]:
    """A learner's ledger entries, for staff covering the learner and auditors."""
    return await statements.history_of(session=session, learner_id=learner, page=page)


@router.get("/credit-transactions/{transaction_id}", response_model=TransactionPublic)
async def get_transaction(
    transaction_id: int, request: Request, principal: CurrentPrincipal, session: SessionDep
) -> TransactionPublic:
    """One transaction with every leg and the records and rule version behind it."""
    missing = NotFound(
        f"No ledger transaction {transaction_id} that you may see.", detail_zh="找不到该记账凭证。"
    )
    if not 0 < transaction_id < 2**63:  # a 64-bit id, or none stored (as records answer)
        raise missing
    transaction = await session.get(LedgerTransaction, transaction_id)
    if transaction is None:
        raise missing
    if transaction.learner_id is None:
        require_staff(principal, AUDITORS)
    else:
        try:
            await require_visible_learner(request, principal, transaction.learner_id)
        except NotFound:
            raise missing from None
    return (await statements.transactions_public(session, [transaction], transaction.learner_id))[0]


@router.post("/ledger/settlements", response_model=SettlementResult)
async def run_settlement(principal: CurrentPrincipal, session: SessionDep) -> SettlementResult:
    """Settle learners whose records changed, now (the background worker does it anyway)."""
    require_staff(principal, LEDGER_KEEPERS)
    outcome = await settlement.accrue_pending(session, actor=f"staff:{principal.subject}")
    audit.record(
        session,
        actor=principal,
        action="ledger.settlement",
        target_type="ledger",
        target_id="*",
        after={"learners": len(outcome.learners), "records": outcome.records},
    )
    await session.commit()
    remaining = len(await settlement.queued_learners(session, 10_000))
    return SettlementResult(
        learners=len(outcome.learners),
        records=outcome.records,
        transactions=outcome.transactions,
        remaining_learners=remaining,
    )


@router.post("/ledger/expiry-runs", response_model=ExpiryResult)
async def expire(
    body: ExpiryRequest, principal: CurrentPrincipal, session: SessionDep
) -> ExpiryResult:
    """Expire unspent credits due on ``as_of``; a dry run lists them without posting."""
    require_staff(principal, LEDGER_KEEPERS)
    result = await expiry.run_expiry(
        session, as_of=body.as_of, dry_run=body.dry_run, actor=f"staff:{principal.subject}"
    )
    if not body.dry_run:
        audit.record(
            session,
            actor=principal,
            action="ledger.expiry",
            target_type="ledger",
            target_id=str(body.as_of),
            after=body,
        )
        await session.commit()
    return result


@router.get("/ledger/reconciliation", response_model=ReconciliationReport)
async def reconcile(principal: CurrentPrincipal, session: SessionDep) -> ReconciliationReport:
    """Recompute every balance from records and rule versions; list each difference.

    An auditor's query: answered or refused, it is written to the audit trail."""
    async with audit.refusals_recorded(
        session,
        actor=principal,
        action="ledger.reconciliation",
        target_type="ledger",
        target_id="*",
    ):
        require_staff(principal, AUDITORS)
    report = await reconciliation.reconcile(session)
    await audit.record_query(
        session,
        actor=principal,
        action="ledger.reconciliation",
        target_type="ledger",
        target_id="*",
        after={"discrepancies": len(report.discrepancies)},
    )
    return report

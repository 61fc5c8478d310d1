"""Routes of the portfolio's credits parts: for the gateway's e-portfolio, in one request."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from credits.learners import VisibleLearner
from credits.portfolio import service
from credits.portfolio.schemas import PortfolioParts
from kernel.access import require_resident
from kernel.auth import CurrentPrincipal
from kernel.db import SessionDep

router = APIRouter(prefix="/api/v1", tags=["portfolio"])


@router.get("/me/portfolio-parts", response_model=PortfolioParts)
async def my_parts(principal: CurrentPrincipal, session: SessionDep) -> PortfolioParts:
    """Every credits part of the signed-in resident's e-portfolio, in one answer."""
    learner = uuid.UUID(require_resident(principal))
    return await service.parts_of(session=session, learner_id=learner)


@router.get("/learners/{learner_id}/portfolio-parts", response_model=PortfolioParts)
async def learner_parts(learner: VisibleLearner, session: SessionDep) -> PortfolioParts:
    """Every credits part of a learner's e-portfolio (staff covering the learner, auditors)."""
    return await service.parts_of(session=session, learner_id=learner)

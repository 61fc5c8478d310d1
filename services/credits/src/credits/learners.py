"""Whose learner data a caller may read: the learner, or staff the accounts service says cover
the learner's residence. Credits keeps no residence data, so it asks, with the caller's token."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import httpx
from fastapi import Depends, Request

from kernel.access import READING_STAFF, staff_path
from kernel.auth import CurrentPrincipal
from kernel.problems import NotFound, ServiceUnavailable
from kernel.tokens import Principal


def _not_found(learner_id: uuid.UUID) -> NotFound:
    return NotFound(
        f"No learner {learner_id} that you may see.", detail_zh="找不到该学习者或无权查看。"
    )


async def require_visible_learner(
    request: Request, principal: Principal, learner_id: uuid.UUID
) -> dict[str, Any]:
    """Refuse (404) unless the caller is the learner or staff covering them.

    Returns what the accounts service said of the learner to staff (masked), or {} for the
    learner themself.
    """
    if principal.kind == "resident":
        if principal.subject != str(learner_id):
            raise _not_found(learner_id)
        return {}
    if staff_path(principal) is None or not principal.has_role(*READING_STAFF):
        raise _not_found(learner_id)
    accounts: httpx.AsyncClient = request.app.state.accounts
    try:
        response = await accounts.get(
            f"/api/v1/learning-accounts/{learner_id}",
            headers={"authorization": request.headers["authorization"]},
            timeout=5.0,
        )
    except httpx.HTTPError:
        raise ServiceUnavailable(
            "Whether you may see this learner cannot be checked right now; try again.",
            detail_zh="暂时无法核实查看权限，请稍后再试。",
        ) from None
    if response.status_code in (403, 404):
        raise _not_found(learner_id)
    if response.status_code != 200:
        raise ServiceUnavailable(
            "Whether you may see this learner cannot be checked right now; try again.",
            detail_zh="暂时无法核实查看权限，请稍后再试。",
        )
    found: dict[str, Any] = response.json()
    return found


async def visible_learner(
    learner_id: uuid.UUID, request: Request, principal: CurrentPrincipal
) -> uuid.UUID:
    """The ``learner_id`` of the path, once :func:`require_visible_learner` has let it through."""
    await require_visible_learner(request, principal, learner_id)
    return learner_id


# a learner-scoped route's learner: the learner themself, staff covering them, auditors
VisibleLearner = Annotated[uuid.UUID, Depends(visible_learner)]

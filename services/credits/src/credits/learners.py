"""Whose learner data a caller may read: the learner, or staff the accounts service says cover
the learner's residence. Credits keeps no residence data, so it asks, with the caller's token."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import Request

from kernel.access import READING_STAFF, staff_path
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


async def learner_profile(
    request: Request, principal: Principal, learner_id: uuid.UUID
) -> dict[str, Any]:
    """The learner's learning account as the accounts service shows it (name, masked ID number,
    account number), asked with the caller's own token: the resident's own account, or for
    staff the account they cover (else 404). Credits never reads accounts' tables."""
    if principal.kind != "resident":
        return await require_visible_learner(request, principal, learner_id)
    if principal.subject != str(learner_id):
        raise _not_found(learner_id)
    accounts: httpx.AsyncClient = request.app.state.accounts
    unavailable = ServiceUnavailable(
        "The learning account cannot be read right now; try again.",
        detail_zh="暂时无法读取学习账号信息，请稍后再试。",
    )
    try:
        response = await accounts.get(
            "/api/v1/me/account",
            headers={"authorization": request.headers["authorization"]},
            timeout=5.0,
        )
    except httpx.HTTPError:
        raise unavailable from None
    if response.status_code == 404:
        raise _not_found(learner_id)
    if response.status_code != 200:
        raise unavailable
    found: dict[str, Any] = response.json()
    return found

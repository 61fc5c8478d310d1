"""Learners as the accounts service knows them: account number -> id and status, and whose
learner data a caller may read.

The credits service keeps no personal data and no residence; it asks the accounts service, with
the caller's own token, which learner an account number names, whether the account is active,
and whether staff cover a learner's residence.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import httpx
from fastapi import Depends, Request

from kernel.access import READING_STAFF, staff_path
from kernel.auth import CurrentPrincipal
from kernel.problems import PROBLEMS, Conflict, DomainError, NotFound, ServiceUnavailable
from kernel.text import account_number
from kernel.tokens import Principal

ACTIVE = "active"
STATUS_ZH = {"frozen": "已冻结", "closed": "已注销"}


class UnknownLearner(DomainError):
    """No learning account has this number."""

    type = PROBLEMS + "unknown-learner"
    status = 422
    title = "Unknown learner"


class LearnerNotActive(Conflict):
    """The learning account is frozen or closed."""

    type = PROBLEMS + "learner-not-active"
    title = "Learning account not active"


async def lookup_learners(
    accounts: httpx.AsyncClient, authorization: str, numbers: list[str]
) -> dict[str, tuple[uuid.UUID, str]]:
    """Account number -> (learner id, status), asked of the accounts service with the caller's
    own token (partners and staff may resolve the learners they post for; no personal data
    comes back). Numbers not found are absent from the answer."""
    if not numbers:
        return {}
    try:
        response = await accounts.post(
            "/api/v1/learning-accounts/lookup",
            json={"account_numbers": numbers},
            headers={"authorization": authorization},
            timeout=10.0,
        )
        response.raise_for_status()
    except httpx.HTTPError:
        raise ServiceUnavailable(
            "Learners cannot be checked right now; nothing was stored. Retry.",
            detail_zh="暂时无法核验学习者，本次提交未保存，请重试。",
        ) from None
    return {
        e["account_number"]: (uuid.UUID(e["id"]), e["status"]) for e in response.json()["found"]
    }


async def resolve_learner(
    accounts: httpx.AsyncClient, authorization: str, number: str
) -> uuid.UUID:
    """The id of the active learning account numbered ``number``, or a problem saying why not."""
    number = account_number(number)
    found = (await lookup_learners(accounts, authorization, [number])).get(number)
    if found is None:
        raise UnknownLearner(
            f"No learning account numbered {number}.", detail_zh="找不到该学习账号。"
        )
    learner_id, status = found
    if status != ACTIVE:
        raise LearnerNotActive(
            f"The learning account {number} is {status}.",
            detail_zh=f"该学习账号{STATUS_ZH.get(status, '不可用')}。",
            account_status=status,
        )
    return learner_id


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
    found = await _covered_account(request, learner_id)
    if found is None:
        raise _not_found(learner_id)
    return found


async def covers_learner(
    request: Request,
    principal: Principal,
    learner_id: uuid.UUID,
    *,
    roles: tuple[str, ...] = READING_STAFF,
) -> bool:
    """Whether the caller is staff with one of ``roles`` covering the learner's residence as it
    is now: accounts is asked, with the caller's own token (a copy of the residence kept with a
    certification or conversion is the one of the day it was filed)."""
    if staff_path(principal) is None or not principal.has_role(*roles):
        return False
    return await _covered_account(request, learner_id) is not None


async def _covered_account(request: Request, learner_id: uuid.UUID) -> dict[str, Any] | None:
    """The learner's account as accounts shows it to the caller, or None when accounts says
    the caller does not cover the learner (403, 404)."""
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
        return None
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


async def visible_learner(
    learner_id: uuid.UUID, request: Request, principal: CurrentPrincipal
) -> uuid.UUID:
    """The ``learner_id`` of the path, once :func:`require_visible_learner` has let it through."""
    await require_visible_learner(request, principal, learner_id)
    return learner_id


# a learner-scoped route's learner: the learner themself, staff covering them, auditors
VisibleLearner = Annotated[uuid.UUID, Depends(visible_learner)]

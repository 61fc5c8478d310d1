"""The e-portfolio (终身学习电子档案): one learner's parts from both services, fetched at once.

A resident reads their own (``/api/v1/me/portfolio``); staff covering the learner and auditors
read a learner's (``/api/v1/learners/{id}/portfolio``), which first asks the accounts service
whether the caller may see the learner at all and fetches nothing else when not.

The profile comes from accounts; every other part from one request to credits
(``.../portfolio-parts``), which reads them all on one database connection: one round trip
instead of one per part. A part that cannot be had is ``null``, named in ``missing`` with the
reason, and ``complete`` is false: the answer never presents partial data as complete. That
includes a part absent from an answer (a service of another version during a rolling update).
Lists that grow for a lifetime come as their first page with ``next_cursor``; the app pages
on through the part's own route. Awards are the approved certifications of outcome type
``award`` (see ``credits.portfolio.service``).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
from fastapi import Request
from pydantic_core import from_json

from gateway.proxy import Upstream, UpstreamUnavailable
from kernel.problems import NotFound
from kernel.requestid import current_request_id

PART_TIMEOUT_SECONDS = 5.0
# the parts the credits service answers with, in the order the portfolio shows them
CREDITS_PARTS = (
    "enrolments",
    "attendance",
    "hours",
    "recent_records",
    "credit_balance",
    "credit_history",
    "certifications",
    "conversions",
    "awards",
)


def _headers(request: Request) -> dict[str, str]:
    """The caller's own token (each service decides what the caller may see) and request id."""
    return {
        "authorization": request.headers["authorization"],
        "x-request-id": current_request_id() or "",
    }


async def _fetch(
    service: Upstream, path: str, headers: dict[str, str]
) -> tuple[Any | None, str | None]:
    """The answer's JSON, or None and why it could not be had."""
    try:
        status, body = await service.get(path, headers, PART_TIMEOUT_SECONDS)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return None, f"unreachable ({type(exc).__name__})"
    if status != 200:
        return None, f"answered {status}"
    try:
        return from_json(body), None  # Rust, not the json module: answers of 64 KB
    except ValueError:
        return None, "answered something that is not JSON"


def _compose(
    profile: tuple[Any | None, str | None], credits: tuple[Any | None, str | None]
) -> dict[str, Any]:
    """The portfolio from the accounts and credits answers, each part there or named missing."""
    parts: dict[str, Any] = {"profile": profile[0]}
    missing: dict[str, str] = {}
    if profile[1] is not None:
        missing["profile"] = profile[1]
    answer, problem = credits
    for name in CREDITS_PARTS:
        if problem is not None:
            parts[name], missing[name] = None, problem
        elif not isinstance(answer, dict) or name not in answer:
            parts[name], missing[name] = None, "not in the credits service's answer"
        else:
            parts[name] = answer[name]
    return {"complete": not missing, "missing": missing, **parts}


async def resident_portfolio(request: Request, services: dict[str, Upstream]) -> dict[str, Any]:
    """The signed-in resident's own portfolio: both services asked at once, with their token."""
    headers = _headers(request)
    profile, credits = await asyncio.gather(
        _fetch(services["accounts"], "/api/v1/me/account", headers),
        _fetch(services["credits"], "/api/v1/me/portfolio-parts", headers),
    )
    return _compose(profile, credits)


def _no_such_learner(learner_id: str) -> NotFound:
    return NotFound(
        f"No learner {learner_id} that you may see.", detail_zh="找不到该学习者或无权查看。"
    )


async def learner_portfolio(
    request: Request, services: dict[str, Upstream], learner_id: str, *, retry_after: int
) -> dict[str, Any]:
    """A learner's portfolio for staff covering the learner and auditors (or the learner).

    The accounts service decides first, with the caller's token, whether the caller may see
    the learner: when it says no (403 or 404) the answer is a 404 and nothing else is asked.
    Its answer is the profile; then the credits parts are fetched, and the credits service
    checks the caller again.
    """
    try:
        learner = uuid.UUID(learner_id)
    except ValueError:
        raise _no_such_learner(learner_id) from None
    headers = _headers(request)
    unavailable = UpstreamUnavailable(
        "Whether you may see this learner cannot be checked right now; try again shortly.",
        detail_zh="暂时无法核实查看权限，请稍后再试。",
        headers={"Retry-After": str(retry_after)},
        upstream="accounts",
    )
    try:
        status, checked = await services["accounts"].get(
            f"/api/v1/learning-accounts/{learner}", headers, PART_TIMEOUT_SECONDS
        )
    except (aiohttp.ClientError, TimeoutError):
        raise unavailable from None
    if status in (403, 404):
        raise _no_such_learner(learner_id)
    if status != 200:
        raise unavailable
    credits = await _fetch(
        services["credits"], f"/api/v1/learners/{learner}/portfolio-parts", headers
    )
    return _compose((from_json(checked), None), credits)

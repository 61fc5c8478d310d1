"""The e-portfolio (终身学习电子档案): one learner's parts from both services, fetched at once.

A resident reads their own (``/api/v1/me/portfolio``); staff covering the learner and auditors
read a learner's (``/api/v1/learners/{id}/portfolio``), which first asks the accounts service
whether the caller may see the learner at all and fetches nothing else when not.

A part that cannot be had is ``null``, named in ``missing`` with the reason, and ``complete``
is false: the answer never presents partial data as complete. Lists that grow for a lifetime
(records, check-ins, ledger entries) come as their first page with ``next_cursor``; the app
pages on through the part's own route.

Awards (表彰): there is no awards register yet, so the awards part is the learner's approved
certifications of outcome type ``award`` (district, city, provincial and national honours,
reviewed and credited like any other outcome). It is taken from the certifications part, so
it is missing exactly when that part is.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import Request

from gateway.proxy import UpstreamUnavailable
from kernel.problems import NotFound
from kernel.requestid import current_request_id

FIRST_PAGE = 20  # items of a paged part in the portfolio; the app pages on from next_cursor
PART_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Part:
    """One part of the portfolio: where the resident's own is, and where a learner's is."""

    name: str
    service: str
    own: str  # the resident's own, under /api/v1/me
    learner: str | None  # a learner's, with {learner_id}; None: taken from the accounts check


PARTS: tuple[Part, ...] = (
    Part("profile", "accounts", "/api/v1/me/account", None),
    Part("enrolments", "credits", "/api/v1/me/enrolments", "/enrolments"),
    Part("attendance", "credits", f"/api/v1/me/attendance?limit={FIRST_PAGE}", "/attendance"),
    Part("hours", "credits", "/api/v1/me/hours", "/hours"),
    Part("recent_records", "credits", f"/api/v1/me/records?limit={FIRST_PAGE}", "/records"),
    Part("credit_balance", "credits", "/api/v1/me/credits", "/credits"),
    Part(
        "credit_history",
        "credits",
        f"/api/v1/me/credit-history?limit={FIRST_PAGE}",
        "/credit-history",
    ),
    Part("certifications", "credits", "/api/v1/me/certifications", "/certifications"),
    Part("conversions", "credits", "/api/v1/me/conversions", "/conversions"),
)
PAGED = {"attendance", "recent_records", "credit_history"}
AWARD = "award"


def _learner_path(part: Part, learner_id: uuid.UUID) -> str:
    assert part.learner is not None
    query = f"?limit={FIRST_PAGE}" if part.name in PAGED else ""
    return f"/api/v1/learners/{learner_id}{part.learner}{query}"


def _headers(request: Request) -> dict[str, str]:
    """The caller's own token (each service decides what the caller may see) and request id."""
    return {
        "authorization": request.headers["authorization"],
        "x-request-id": current_request_id() or "",
    }


async def _part(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> tuple[Any | None, str | None]:
    """The part's value, or None and why it could not be had."""
    try:
        response = await client.get(path, headers=headers, timeout=PART_TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        return None, f"unreachable ({type(exc).__name__})"
    if response.status_code != 200:
        return None, f"answered {response.status_code}"
    try:
        return response.json(), None
    except ValueError:
        return None, "answered something that is not JSON"


def _awards(certifications: Any) -> list[Any]:
    """Approved certifications of outcome type ``award`` (see the module docstring)."""
    return [
        c
        for c in certifications
        if c.get("outcome_type") == AWARD and c.get("status") == "approved"
    ]


async def _compose(
    clients: dict[str, httpx.AsyncClient],
    fetches: dict[str, tuple[str, str]],
    headers: dict[str, str],
    known: dict[str, Any],
) -> dict[str, Any]:
    """Fetch ``fetches`` (part -> (service, path)) at once and put the portfolio together."""
    names = list(fetches)
    results = await asyncio.gather(
        *(_part(clients[fetches[n][0]], fetches[n][1], headers) for n in names)
    )
    parts: dict[str, Any] = dict(known)
    missing: dict[str, str] = {}
    for name, (value, problem) in zip(names, results, strict=True):
        parts[name] = value
        if problem is not None:
            missing[name] = problem
    if "certifications" in missing:
        parts["awards"] = None
        missing["awards"] = "taken from certifications, which could not be had"
    else:
        parts["awards"] = _awards(parts["certifications"])
    ordered = {part.name: parts[part.name] for part in PARTS}
    return {"complete": not missing, "missing": missing, **ordered, "awards": parts["awards"]}


async def resident_portfolio(
    request: Request, clients: dict[str, httpx.AsyncClient]
) -> dict[str, Any]:
    """The signed-in resident's own portfolio: every part with their own token, at once."""
    fetches = {part.name: (part.service, part.own) for part in PARTS}
    return await _compose(clients, fetches, _headers(request), {})


def _no_such_learner(learner_id: str) -> NotFound:
    return NotFound(
        f"No learner {learner_id} that you may see.", detail_zh="找不到该学习者或无权查看。"
    )


async def learner_portfolio(
    request: Request, clients: dict[str, httpx.AsyncClient], learner_id: str, *, retry_after: int
) -> dict[str, Any]:
    """A learner's portfolio for staff covering the learner and auditors (or the learner).

    The accounts service decides first, with the caller's token, whether the caller may see
    the learner: when it says no (403 or 404) the answer is a 404 and nothing else is asked.
    Its answer is the profile; the credits parts are then fetched at once, and the credits
    service checks the caller again on each.
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
        checked = await clients["accounts"].get(
            f"/api/v1/learning-accounts/{learner}", headers=headers, timeout=PART_TIMEOUT_SECONDS
        )
    except httpx.HTTPError:
        raise unavailable from None
    if checked.status_code in (403, 404):
        raise _no_such_learner(learner_id)
    if checked.status_code != 200:
        raise unavailable
    fetches = {
        part.name: (part.service, _learner_path(part, learner))
        for part in PARTS
        if part.learner is not None
    }
    return await _compose(clients, fetches, headers, {"profile": checked.json()})

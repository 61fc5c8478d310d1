"""The e-portfolio (终身学习电子档案): a resident's parts from both services, fetched at once.

A part that cannot be had is named in ``missing`` and ``complete`` is false: the answer never
presents partial data as complete. Parts still to come with the ledger (credit balance and
history, certifications, conversions, awards) are listed in ``not_yet_offered``, not faked.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import Request

from kernel.requestid import current_request_id

# part name -> (service, path)
RESIDENT_PARTS: dict[str, tuple[str, str]] = {
    "profile": ("accounts", "/api/v1/me/account"),
    "enrolments": ("credits", "/api/v1/me/enrolments"),
    "hours": ("credits", "/api/v1/me/hours"),
    "recent_records": ("credits", "/api/v1/me/records?limit=20"),
}
NOT_YET_OFFERED = ("credit_balance", "credit_history", "certifications", "conversions", "awards")


async def _part(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> tuple[Any | None, str | None]:
    try:
        response = await client.get(path, headers=headers, timeout=5.0)
    except httpx.HTTPError as exc:
        return None, f"unreachable ({type(exc).__name__})"
    if response.status_code != 200:
        return None, f"answered {response.status_code}"
    return response.json(), None


async def resident_portfolio(
    request: Request, clients: dict[str, httpx.AsyncClient]
) -> dict[str, Any]:
    """Fetch every part with the caller's own token, concurrently."""
    headers = {
        "authorization": request.headers["authorization"],
        "x-request-id": current_request_id() or "",
    }
    names = list(RESIDENT_PARTS)
    results = await asyncio.gather(
        *(_part(clients[RESIDENT_PARTS[n][0]], RESIDENT_PARTS[n][1], headers) for n in names)
    )
    portfolio: dict[str, Any] = {}
    missing: dict[str, str] = {}
    for name, (value, problem) in zip(names, results, strict=True):
        if problem is None:
            portfolio[name] = value
        else:
            portfolio[name] = None
            missing[name] = problem
    return {
        "complete": not missing,
        "missing": missing,
        "not_yet_offered": list(NOT_YET_OFFERED),
        **portfolio,
    }

"""Health endpoints: ``/healthz`` (the process answers) and ``/readyz`` (it can do its job)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.migrations import current_revision, head_revision
from kernel.problems import PROBLEMS, problem_response

Check = dict[str, Any]
ReadinessCheck = Callable[[Request], Awaitable[dict[str, Check]]]


async def database_check(engine: AsyncEngine, service_root: Path, version_table: str) -> Check:
    """Report whether the database answers and its migrations are at head."""
    head = head_revision(service_root)
    try:
        current = await current_revision(engine, version_table)
    except (SQLAlchemyError, OSError) as exc:
        return {"status": "failing", "reason": f"database does not answer: {type(exc).__name__}"}
    if current != head:
        return {
            "status": "failing",
            "reason": "migrations not at head",
            "current": current,
            "head": head,
        }
    return {"status": "ready", "revision": current, "backend": engine.dialect.name}


def health_router(readiness: ReadinessCheck) -> APIRouter:
    """Build the two health routes around the service's own readiness check."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="The service can serve: its dependencies answer")
    async def readyz(request: Request) -> JSONResponse:
        checks = await readiness(request)
        if all(check.get("status") == "ready" for check in checks.values()):
            return JSONResponse({"status": "ready", "checks": checks})
        return problem_response(
            type_=PROBLEMS + "not-ready",
            title="Not ready",
            status=503,
            detail="A dependency of this service is not ready; see checks.",
            headers={"Retry-After": "5"},
            checks=checks,
        )

    return router


def database_readiness(service_root: Path, version_table: str) -> ReadinessCheck:
    """The readiness check of a service whose only dependency is its own database."""

    async def readiness(request: Request) -> dict[str, Check]:
        return {
            "database": await database_check(request.app.state.engine, service_root, version_table)
        }

    return readiness

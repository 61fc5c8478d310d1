"""The frame every service app is built in: middleware, problem handlers, health routes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, FastAPI

from kernel.health import ReadinessCheck, health_router
from kernel.logs import AccessLogMiddleware
from kernel.problemdocs import with_problems
from kernel.problems import UnexpectedErrorMiddleware, install_problem_handlers
from kernel.requestid import RequestIdMiddleware

BEARER_SCHEME = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from POST /auth/token (RS256, typ at+jwt).",
    }
}


def build_service_app(
    *,
    title: str,
    version: str,
    description: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[Any]],
    readiness: ReadinessCheck,
    routers: Iterable[APIRouter],
    openapi_url: str | None = "/openapi.json",
) -> FastAPI:
    """Return a FastAPI app with the kernel's middleware, errors and health routes."""
    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=lifespan,
        openapi_url=openapi_url,
    )
    install_problem_handlers(app)
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(RequestIdMiddleware)  # outermost: every log line carries the id
    app.include_router(health_router(readiness))
    for router in routers:
        app.include_router(router)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        # generated once (FastAPI keeps it in app.openapi_schema); errors as they are sent
        if app.openapi_schema is None:
            app.openapi_schema = with_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app

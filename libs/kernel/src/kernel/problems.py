"""RFC 9457 problem details: one base error, one set of handlers, stable type URIs.

Every error a service answers is ``application/problem+json`` with a ``type`` URI published
once and never renamed. Messages a resident may see carry Chinese and English.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kernel.requestid import current_request_id

PROBLEMS = "https://muye.example.org/problems/"
PROBLEM_JSON = "application/problem+json"

log = logging.getLogger("kernel.problems")


class DomainError(Exception):
    """Base of every error a service raises on purpose.

    Subclasses set ``type`` (a stable URI under :data:`PROBLEMS`), ``status`` and ``title``.
    ``detail`` is the message a person can act on; ``detail_zh`` its Chinese form where a
    resident may read it.
    """

    type: ClassVar[str] = PROBLEMS + "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Request failed"
    headers: ClassVar[dict[str, str]] = {}

    def __init__(
        self,
        detail: str,
        *,
        detail_zh: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.detail_zh = detail_zh
        self.response_headers = {**type(self).headers, **(headers or {})}
        self.extensions = extensions


class NotFound(DomainError):
    """The addressed resource does not exist or is not visible to the caller."""

    type = PROBLEMS + "not-found"
    status = 404
    title = "Not found"


class Unauthorized(DomainError):
    """No valid bearer token."""

    type = PROBLEMS + "unauthorized"
    status = 401
    title = "Authentication required"
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(DomainError):
    """A valid caller without the right to this operation."""

    type = PROBLEMS + "forbidden"
    status = 403
    title = "Forbidden"


class Conflict(DomainError):
    """The request conflicts with the current state."""

    type = PROBLEMS + "conflict"
    status = 409
    title = "Conflict"


class ServiceUnavailable(DomainError):
    """A dependency (database, upstream service) cannot be reached now."""

    type = PROBLEMS + "service-unavailable"
    status = 503
    title = "Service unavailable"
    headers = {"Retry-After": "5"}


def problem_response(
    *,
    type_: str,
    title: str,
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """Build a problem+json response carrying the current request id."""
    body: dict[str, Any] = {
        "type": type_,
        "title": title,
        "status": status,
        "detail": detail,
    }
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    body.update({k: v for k, v in extensions.items() if v is not None})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return problem_response(
        type_=exc.type,
        title=exc.title,
        status=exc.status,
        detail=exc.detail,
        headers=exc.response_headers or None,
        detail_zh=exc.detail_zh,
        **exc.extensions,
    )


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "location": [str(part) for part in err.get("loc", ())],
            "message": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]
    return problem_response(
        type_=PROBLEMS + "validation-error",
        title="Invalid request",
        status=422,
        detail="The request does not match the schema; see errors.",
        detail_zh="请求内容不符合要求，请查看 errors 中的说明。",
        errors=errors,
    )


_HTTP_TYPES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    413: "payload-too-large",
    429: "rate-limited",
}


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    slug = _HTTP_TYPES.get(exc.status_code, "http-error")
    detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
    return problem_response(
        type_=PROBLEMS + slug,
        title=detail if slug == "http-error" else slug.replace("-", " ").capitalize(),
        status=exc.status_code,
        detail=detail,
        headers=dict(exc.headers) if exc.headers else None,
    )


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        # the server dropped the connection (restarted, failed over): SQLAlchemy has discarded
        # the pool, the transaction was never committed, and a retry gets a fresh connection
        log.warning("database connection lost", exc_info=exc)
        return problem_response(
            type_=PROBLEMS + "database-unavailable",
            title="Service unavailable",
            status=503,
            detail="The connection to the database was lost; nothing was stored. Retry.",
            detail_zh="数据库连接中断，本次操作未保存，请重试。",
            headers={"Retry-After": "1"},
        )
    log.error("unexpected error", exc_info=exc)
    return problem_response(
        type_=PROBLEMS + "internal-error",
        title="Internal error",
        status=500,
        detail="Something went wrong on our side; quote the request id when reporting it.",
        detail_zh="服务器内部错误，请联系管理员并提供 request_id。",
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error the app can raise as RFC 9457 problem+json."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


class UnexpectedErrorMiddleware:
    """Answer any uncaught exception as a 500 problem carrying the request id.

    Starlette hands ``Exception`` handlers to its outermost middleware, outside the request id;
    sitting just inside :class:`~kernel.requestid.RequestIdMiddleware`, this one keeps the id.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started:
                raise
            response = await _unexpected(Request(scope), exc)
            await response(scope, receive, send)

"""The gateway app factory: the one public entry to the system."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic_core import to_json

from gateway.config import Settings
from gateway.metrics import GatewayMetrics
from gateway.openapi import merge as merge_openapi
from gateway.portfolio import learner_portfolio, resident_portfolio
from gateway.portfoliocache import LocalGenerations, PortfolioCache, RedisGenerations
from gateway.proxy import Upstream, UpstreamUnavailable, forward, upstream_path, upstream_session
from gateway.ratelimit import Hit, Limiter
from gateway.routes import AUTHENTICATED, COMPOSED, PUBLIC, Route, match, methods_on
from kernel import roles
from kernel.app import build_service_app
from kernel.auth import current_principal
from kernel.health import Check
from kernel.logs import configure_logging
from kernel.pagination import MAX_PAGE_SIZE
from kernel.problems import PROBLEMS, DomainError, Forbidden, NotFound
from kernel.tokens import JwksKeySource, Principal, TokenVerifier

# HEAD is taken only to be answered 405 by the gateway itself, with the Allow header
FORWARDED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
PORTFOLIO = "/api/v1/me/portfolio"  # the route whose answers gateway.portfoliocache keeps


def _json(document: Any) -> Response:
    """A composed answer serialised by pydantic-core (Rust; the json module took a millisecond
    or more of the gateway's CPU for a 64 KB portfolio)."""
    return Response(to_json(document), media_type="application/json")


class PageTooLarge(DomainError):
    """A page size over the limit."""

    type = PROBLEMS + "page-size-too-large"
    status = 422
    title = "Page size too large"


def _is_page_size(limit: str) -> bool:
    """Whether ``limit`` is a whole number of at most ``MAX_PAGE_SIZE`` in ASCII digits.

    ``str.isdigit`` alone takes "²", which ``int`` refuses (a 500), and "٣", which ``int``
    reads as 3 where the services may not; and ``int`` refuses more than 4,300 digits.
    """
    digits = limit.lstrip("0") or "0"
    return (
        limit.isascii()
        and limit.isdigit()
        and len(digits) <= len(str(MAX_PAGE_SIZE))
        and int(digits) <= MAX_PAGE_SIZE
    )


class MethodNotAllowed(DomainError):
    """The path exists but not with this method."""

    type = PROBLEMS + "method-not-allowed"
    status = 405
    title = "Method not allowed"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the gateway app; settings come from the environment unless given."""
    settings = settings or Settings()
    configure_logging("gateway", settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout = httpx.Timeout(
            settings.upstream_timeout_seconds, connect=settings.upstream_connect_timeout_seconds
        )
        # idle connections are let go before the services' uvicorn closes them (5 s), so a
        # request is not sent down a connection the other end is closing. The pool is small on
        # purpose: httpcore polls every pooled connection's socket on each request and answer,
        # which at 50 connections was a third of the gateway's CPU (py-spy); a service on one
        # worker serves no more requests at once than its database pool anyway.
        limits = httpx.Limits(
            max_connections=settings.upstream_connections,
            max_keepalive_connections=settings.upstream_connections,
            keepalive_expiry=3.0,
        )
        clients = {
            name: httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits)
            for name, url in settings.upstreams.items()
        }
        upstreams = {
            name: Upstream(
                name,
                url.rstrip("/"),
                upstream_session(
                    connections=settings.upstream_connections,
                    timeout=settings.upstream_timeout_seconds,
                    connect_timeout=settings.upstream_connect_timeout_seconds,
                ),
            )
            for name, url in settings.upstreams.items()
        }
        app.state.settings = settings
        app.state.clients = clients
        app.state.upstreams = upstreams
        app.state.limiter = Limiter(
            redis_url=settings.redis_url,
            per_ip=settings.rate_limit_per_ip,
            per_client=settings.rate_limit_per_client,
            sign_in=settings.rate_limit_sign_in,
            key_prefix=settings.rate_limit_key_prefix,
        )
        app.state.portfolio_cache = PortfolioCache(
            (
                RedisGenerations(settings.redis_url, settings.rate_limit_key_prefix)
                if settings.redis_url
                else LocalGenerations()
            ),
            ttl_seconds=settings.portfolio_cache_seconds,
            max_entries=settings.portfolio_cache_entries,
            count=lambda outcome: metrics.portfolio_cache.labels(outcome).inc(),
        )
        app.state.token_verifier = TokenVerifier(
            JwksKeySource(
                clients["accounts"], settings.jwks_url, ttl_seconds=settings.jwks_ttl_seconds
            ),
            issuer=settings.token_issuer,
            audience=settings.token_audience,
            leeway_seconds=settings.token_leeway_seconds,
        )
        # what start-up made lives as long as the process: out of the cyclic collector's sight
        # (as in credits); its full passes over it stalled every request in flight
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await asyncio.gather(
                app.state.portfolio_cache.close(),
                app.state.limiter.close(),
                *(client.aclose() for client in clients.values()),
                *(upstream.session.close() for upstream in upstreams.values()),
            )

    async def upstream_ready(name: str, client: httpx.AsyncClient) -> tuple[str, Check]:
        try:
            response = await client.get("/readyz", timeout=3.0)
        except httpx.HTTPError as exc:
            return name, {"status": "failing", "reason": f"unreachable: {type(exc).__name__}"}
        body: Any = response.json() if response.content else {}
        if response.status_code == 200:
            return name, {"status": "ready", "checks": body.get("checks", {})}
        return name, {
            "status": "failing",
            "http_status": response.status_code,
            "checks": body.get("checks", {}),
        }

    async def readiness(request: Request) -> dict[str, Check]:
        clients: dict[str, httpx.AsyncClient] = request.app.state.clients
        results = await asyncio.gather(*(upstream_ready(n, c) for n, c in clients.items()))
        return {"gateway": {"status": "ready"}, **dict(results)}

    app = build_service_app(
        title="Muye learning-credit bank",
        version="0.1.0",
        description="The public API of the Muye learning-credit bank (学分银行).",
        lifespan=lifespan,
        readiness=readiness,
        routers=[],
        openapi_url=None,  # the public document is the services' routes, merged below
    )

    @app.get("/openapi.json", include_in_schema=False)
    async def public_openapi(request: Request) -> JSONResponse:
        cached = getattr(request.app.state, "openapi_document", None)
        if cached is None:
            clients: dict[str, httpx.AsyncClient] = request.app.state.clients
            try:
                responses = await asyncio.gather(
                    *(c.get("/openapi.json") for c in clients.values())
                )
            except httpx.HTTPError:
                raise UpstreamUnavailable(
                    "A service is down, so the API document cannot be assembled; try again.",
                    headers={"Retry-After": str(settings.retry_after_seconds)},
                ) from None
            docs = {name: r.json() for name, r in zip(clients, responses, strict=True)}
            cached = merge_openapi(docs, version=app.version)
            request.app.state.openapi_document = cached
        return JSONResponse(cached)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title)

    metrics = GatewayMetrics()

    @app.get("/metrics", include_in_schema=False)
    async def prometheus(request: Request) -> Response:
        if request.client is None or request.client.host not in settings.metrics_allow_from:
            raise Forbidden("Metrics are served to the monitoring network only.")
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def compose(
        request: Request, route: Route, principal: Principal, generation: str | None
    ) -> Response:
        """Answer a route the gateway composes itself (the access checks are done);
        ``generation`` is the resident's portfolio generation when it was read with the limits."""
        upstreams: dict[str, Upstream] = request.app.state.upstreams
        if route.template == PORTFOLIO:
            cache: PortfolioCache = request.app.state.portfolio_cache
            body, age = await cache.read(
                principal.subject,
                lambda: resident_portfolio(request, upstreams),
                generation=generation,
            )
            headers = {"Age": str(age)} if age is not None else None
            return Response(body, media_type="application/json", headers=headers)
        if route.template == "/api/v1/learners/{learner_id}/portfolio":
            learner = route.parameters(request.url.path)["learner_id"]
            return _json(
                await learner_portfolio(
                    request, upstreams, learner, retry_after=settings.retry_after_seconds
                )
            )
        raise AssertionError(f"no composition for {route.template}")

    async def handle(
        request: Request, path: str, route: Route | None, path_known: bool
    ) -> Response:
        """Answer a request for ``path``, the decoded path it was routed on."""
        # refused before anything else, the route too: the path's meaning is in doubt
        target = upstream_path(request, path)
        if route is None:
            if path_known:
                # HEAD too: the services answer it 405, so it is not passed on as GET
                allowed = ", ".join(methods_on(path))
                raise MethodNotAllowed(
                    f"{request.method} is not allowed on {path}; use {allowed}.",
                    headers={"Allow": allowed},
                )
            raise NotFound(f"There is no route {path}.", detail_zh="请求的地址不存在。")
        limiter: Limiter = request.app.state.limiter
        writer: str | None = None  # a resident writing: their kept portfolio must go
        principal: Principal | None = None
        refused: DomainError | None = None  # a bad token, answered once its address is counted
        address = request.client.host if request.client else "unknown"
        hits = [Hit(limiter.per_ip, "address", address)]
        if route.template == "/auth/token":
            hits.append(Hit(limiter.sign_in, "sign-in address", address))
        if route.access != PUBLIC:
            try:
                principal = await current_principal(request)
            except DomainError as exc:
                refused = exc
            else:
                hits.append(Hit(limiter.per_client, "client", principal.subject))
        # every limit, and the resident's portfolio generation when it lives in Redis, in one
        # round trip to Redis (gateway.ratelimit)
        generation_key = None
        if route.template == PORTFOLIO and principal is not None:
            cache: PortfolioCache = request.app.state.portfolio_cache
            generation_key = cache.shared_key(principal.subject)  # None unless kept in Redis
        read = await limiter.hit(hits, read=(generation_key,) if generation_key else ())
        generation = RedisGenerations.text(read[0]) if generation_key and read else None
        if refused is not None:
            raise refused
        limit = request.query_params.get("limit")
        if limit is not None and not _is_page_size(limit):
            raise PageTooLarge(
                f"limit must be a whole number of at most {MAX_PAGE_SIZE}.",
                detail_zh=f"每页最多 {MAX_PAGE_SIZE} 条。",
            )
        if principal is not None:
            if route.access != AUTHENTICATED and not principal.has_role(*route.access):
                raise Forbidden(
                    "Your role does not allow this operation.", detail_zh="您的角色无权执行此操作。"
                )
            if request.method not in ("GET", "HEAD") and principal.has_role(roles.RESIDENT):
                writer = principal.subject
        if route.upstream == COMPOSED:
            assert principal is not None  # composed routes are never public
            return await compose(request, route, principal, generation)
        try:
            return await forward(
                request,
                request.app.state.upstreams[route.upstream],
                path=target,
                retry_after=settings.retry_after_seconds,
                max_body=route.max_body_bytes or settings.max_body_bytes,
            )
        except UpstreamUnavailable as exc:
            metrics.upstream_errors.labels(route.upstream, exc.extensions.get("kind", "")).inc()
            raise
        finally:
            if writer is not None:  # the resident's next portfolio shows this write
                await request.app.state.portfolio_cache.forget(writer)

    @app.api_route("/{path:path}", methods=FORWARDED_METHODS, include_in_schema=False)
    async def gateway(request: Request, path: str) -> Response:
        started = time.perf_counter()
        route, path_known = match(request.method, "/" + path)
        label = route.template if route else "unmatched"
        status = 500
        try:
            response = await handle(request, "/" + path, route, path_known)
            status = response.status_code
            return response
        except DomainError as exc:
            status = exc.status
            raise
        finally:
            metrics.requests.labels(label, request.method, str(status)).inc()
            metrics.latency.labels(label, request.method).observe(time.perf_counter() - started)

    return app

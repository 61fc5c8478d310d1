"""Forwarding over real loopback sockets: answers pass through unchanged, and what a caller gets
when the service behind the gateway cannot be reached, hangs, or drops the connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from starlette.requests import Request

from gateway.proxy import Upstream, UpstreamUnavailable, forward, upstream_session
from testkit.postgres import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _request(body: bytes, method: str = "POST", query: bytes = b"") -> Request:
    sent = False

    async def receive() -> dict[str, object]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": method,
        "path": "/api/v1/learning-records:batch",
        "query_string": query,
        "headers": [(b"content-length", str(len(body)).encode()), (b"host", b"gateway")],
        "client": ("127.0.0.1", 5000),
    }
    return Request(scope, receive)


@asynccontextmanager
async def _raw_server(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


@asynccontextmanager
async def _web_server(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _forward(base: str, request: Request, *, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    session = upstream_session(connections=4, timeout=timeout, connect_timeout=1.0)
    try:
        upstream = Upstream("credits", base, session)
        path = request.scope["path"]
        return await forward(request, upstream, path=path, retry_after=2, max_body=100)
    finally:
        await session.close()


async def _read_request_then(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: bytes
) -> None:
    await reader.readuntil(b"\r\n\r\n")
    if answer:
        writer.write(answer)
        await writer.drain()
    writer.close()


@pytest.mark.parametrize(
    "answer",
    [b"", b"HTTP/1.1 200 OK\r\nContent-Le", b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort"],
    ids=["closed-before-answering", "closed-in-the-headers", "closed-in-the-body"],
)
async def test_a_dropped_connection_is_a_503_with_retry_after_not_a_500(answer: bytes) -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request_then(reader, writer, answer)

    async with _raw_server(drop) as base:
        with pytest.raises(UpstreamUnavailable) as refused:
            await _forward(base, _request(b"{}"))
    assert refused.value.status == 503
    assert refused.value.response_headers["Retry-After"] == "2"
    assert refused.value.extensions["kind"] == "dropped"


async def test_a_service_that_does_not_answer_in_time_is_a_timeout() -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.read()  # until the gateway gives up and closes

    async with _raw_server(hang) as base:
        with pytest.raises(UpstreamUnavailable) as refused:
            await _forward(base, _request(b"{}"), timeout=0.3)
    assert refused.value.extensions["kind"] == "timeout"


async def test_a_service_not_listening_is_unreachable_after_one_retry_of_a_read() -> None:
    base = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(UpstreamUnavailable) as refused:
        await _forward(base, _request(b"", method="GET"))
    assert refused.value.extensions["kind"] == "connect"
    assert "cannot be reached" in refused.value.detail


@pytest.mark.parametrize("size", [10, 2_000_000])
async def test_answers_pass_through_unchanged_whole_or_streamed(size: int) -> None:
    payload = b"x" * size
    seen: dict[str, object] = {}

    async def answer(request: web.Request) -> web.StreamResponse:
        seen.update(
            body=await request.read(),
            target=request.raw_path,
            forwarded=request.headers["x-forwarded-for"],
            host=request.headers["host"],
        )
        response = web.StreamResponse(status=207)
        response.content_length = size
        response.headers["x-upstream"] = "credits"
        response.headers["content-disposition"] = "attachment; filename*=UTF-8''%E5%AD%A6.csv"
        response.headers.add("set-cookie", "a=1")
        response.headers.add("set-cookie", "b=2")
        await response.prepare(request)
        await response.write(payload[: size // 2])  # in pieces, as a real service sends it
        await response.write(payload[size // 2 :])
        return response

    app = web.Application()
    app.router.add_post("/api/v1/learning-records:batch", answer)
    async with _web_server(app) as base:
        session = upstream_session(connections=4, timeout=5, connect_timeout=1)
        try:
            response = await forward(
                _request(b'{"records": []}', query=b"dry_run=true&x=%E5%AD%A6"),
                Upstream("credits", base, session),
                path="/api/v1/learning-records:batch",
                retry_after=2,
                max_body=100,
            )
            sent: list[bytes] = []

            async def send(message: dict[str, object]) -> None:
                if message["type"] == "http.response.body":
                    sent.append(message.get("body", b""))  # type: ignore[arg-type]

            async def receive() -> dict[str, object]:
                return {"type": "http.disconnect"}

            await response({"type": "http", "asgi": {"spec_version": "2.4"}}, receive, send)
        finally:
            await session.close()
    assert seen == {
        "body": b'{"records": []}',
        "target": "/api/v1/learning-records:batch?dry_run=true&x=%E5%AD%A6",  # not re-encoded
        "forwarded": "127.0.0.1",
        "host": base.removeprefix("http://"),
    }
    assert response.status_code == 207 and response.headers["x-upstream"] == "credits"
    assert response.headers.getlist("set-cookie") == ["a=1", "b=2"]
    assert response.headers["content-disposition"].endswith("%E5%AD%A6.csv")
    assert b"".join(sent) == payload

"""Forwarding to the services: pooled clients, timeouts, retries only where safe."""

from __future__ import annotations

import httpx
from fastapi import Request
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from kernel.problems import PROBLEMS, DomainError, ServiceUnavailable
from kernel.requestid import current_request_id

# RFC 9110 7.6.1 hop-by-hop fields, plus what httpx and uvicorn set themselves
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "x-request-id",
    }
)
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
BUFFERED_ANSWER_BYTES = 1_000_000  # answers up to this size are passed on whole, not streamed


class UpstreamUnavailable(ServiceUnavailable):
    """A service behind the gateway cannot be reached or did not answer in time."""

    type = PROBLEMS + "upstream-unavailable"
    title = "Service unavailable"


def _forward_headers(request: Request) -> list[tuple[str, str]]:
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
    headers.append(("x-request-id", current_request_id() or ""))
    client = request.client.host if request.client else ""
    headers.append(("x-forwarded-for", client))
    return headers


class PayloadTooLarge(DomainError):
    """The request body is larger than the gateway accepts."""

    type = PROBLEMS + "payload-too-large"
    status = 413
    title = "Payload too large"


async def read_body_limited(request: Request, limit: int) -> bytes:
    """Read the body, refusing it as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    too_large = PayloadTooLarge(
        f"The request body is larger than {limit} bytes; send smaller batches.",
        detail_zh="请求内容过大，请分批提交。",
        limit_bytes=limit,
    )
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def forward(
    request: Request,
    client: httpx.AsyncClient,
    upstream: str,
    *,
    retry_after: int,
    max_body: int,
) -> Response:
    """Send the request on to ``client``'s service and pass its answer back.

    The body is passed through as bytes, never parsed here; so is the answer (whole when it
    declares a size up to ``BUFFERED_ANSWER_BYTES``, streamed otherwise). Idempotent requests
    are retried once when the connection could not be made; nothing is retried after it was sent.
    """
    body = await read_body_limited(request, max_body)
    outgoing = client.build_request(
        request.method,
        request.url.path,
        params=request.url.query.encode("latin-1") if request.url.query else None,
        headers=_forward_headers(request),
        content=body,
    )
    attempts = 2 if request.method in IDEMPOTENT else 1
    for attempt in range(attempts):
        try:
            response = await client.send(outgoing, stream=True)
            break
        except httpx.ConnectError:
            if attempt + 1 == attempts:
                raise _unavailable(upstream, "cannot be reached", retry_after, "connect") from None
        except httpx.TimeoutException:
            raise _unavailable(upstream, "did not answer in time", retry_after, "timeout") from None
        except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
            # the connection dropped under the request (the service restarting, or closing a
            # kept-alive connection as it was reused): the caller may retry, as after a timeout
            raise _unavailable(upstream, "dropped the connection", retry_after, "dropped") from None
    headers = {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP}
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) <= BUFFERED_ANSWER_BYTES:
        # a small answer of known size is read and passed on whole: streaming it costs a task
        # group per response (measured: about a quarter of the gateway's CPU on small posts)
        try:
            content = b"".join([chunk async for chunk in response.aiter_raw()])  # as sent
        except httpx.TransportError:
            raise _unavailable(upstream, "dropped the connection", retry_after, "dropped") from None
        finally:
            await response.aclose()
        return Response(content, status_code=response.status_code, headers=headers)
    return StreamingResponse(
        response.aiter_raw(),
        status_code=response.status_code,
        headers=headers,
        background=BackgroundTask(response.aclose),
    )


def _unavailable(upstream: str, what: str, retry_after: int, kind: str) -> UpstreamUnavailable:
    return UpstreamUnavailable(
        f"The {upstream} service {what}; try again in a few seconds.",
        detail_zh="服务暂时不可用，请稍后再试。",
        headers={"Retry-After": str(retry_after)},
        upstream=upstream,
        kind=kind,
    )

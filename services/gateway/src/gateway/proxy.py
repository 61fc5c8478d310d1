"""Forwarding to the services: pooled clients, timeouts, retries only where safe.

Forwarding uses aiohttp, not httpx: on single-record posts httpx's connection pool cost more
CPU than everything else the gateway does (py-spy; see docs/decisions.md). httpx stays for
the few calls the gateway makes on its own account (keys, readiness, the API document).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

import aiohttp
from fastapi import Request
from multidict import CIMultiDict
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse
from yarl import URL

from kernel import servicecalls
from kernel.problems import PROBLEMS, DomainError, ServiceUnavailable
from kernel.requestid import current_request_id

# RFC 9110 7.6.1 hop-by-hop fields, plus what the HTTP clients and uvicorn set themselves
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
# the gateway's own server writes these on every answer: the service's would be a second copy
ANSWER_DROPPED = HOP_BY_HOP | {"date", "server"}
# only a service signs a call to another (kernel.servicecalls): a caller's signature is dropped
# rather than passed on, so no service ever sees one that did not come from inside
NOT_FORWARDED = HOP_BY_HOP | {servicecalls.HEADER}
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
BUFFERED_ANSWER_BYTES = 1_000_000  # answers up to this size are passed on whole, not streamed


class UpstreamUnavailable(ServiceUnavailable):
    """A service behind the gateway cannot be reached or did not answer in time."""

    type = PROBLEMS + "upstream-unavailable"
    title = "Service unavailable"


def _forward_headers(request: Request) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict(
        (k, v) for k, v in request.headers.items() if k.lower() not in NOT_FORWARDED
    )
    headers["x-request-id"] = current_request_id() or ""
    headers["x-forwarded-for"] = request.client.host if request.client else ""
    return headers


def upstream_session(
    *, connections: int, timeout: float, connect_timeout: float
) -> aiohttp.ClientSession:
    """The pooled session forwarding to one service.

    Bodies pass through as sent (no decompression); idle connections are let go before the
    services' uvicorn closes them (5 s), so a request is not sent down a closing connection.
    """
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, keepalive_timeout=3.0),
        timeout=aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=timeout),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
    )


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


class InvalidPath(DomainError):
    """A path the gateway refuses to route, as a service or a proxy might read it otherwise."""

    type = PROBLEMS + "invalid-path"
    status = 400
    title = "Invalid path"


# what RFC 3986 lets a path carry as it is (pchar and "/"), and "%" starting an escape
_REQUEST_PATH = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")
_PATH_SAFE = "/:@!$&'()*+,;="  # for quote(), which keeps letters, digits and "-._~" anyway
# C0, DEL and C1: no key or number in a route holds one; in a log or a header they cut lines
# (a line feed never gets here: Starlette's router finds no route for it and answers 404)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def upstream_path(request: Request, path: str) -> str:
    """The path to send on for ``path``, the decoded path the gateway routed on.

    It is the path as the caller encoded it, so that the service decodes it once, to the very
    path the gateway matched. (The decoded path sent on as if still encoded was decoded twice:
    the public ``/api/v1/units/1%252Fregistrations`` reached the service as the staff route
    ``/api/v1/units/1/registrations``.) When the server gave no raw path, or one that is not
    fit for a request line, ``path`` is encoded afresh, which decodes to it just the same.

    Refused with :class:`InvalidPath`, whatever the route: a control character, and an encoded
    slash. The route table matches decoded paths, where ``%2F`` is a separator, but the caller
    meant it as data inside one segment, and so would anything that splits the path before
    decoding it. No value in a route (keys, ids, numbers) holds a slash, so the simplest sound
    rule is to refuse an encoded slash anywhere rather than guess which reading was meant.
    """
    if _CONTROL.search(path):
        raise InvalidPath(
            "The path holds a control character (such as %00); no route takes one.",
            detail_zh="请求地址含有控制字符，请检查后重试。",
        )
    raw: bytes | None = request.scope.get("raw_path")
    if raw is None:
        return quote(path, safe=_PATH_SAFE)
    sent = raw.decode("latin-1")
    root = request.scope.get("root_path", "")
    if root and sent.startswith(root):  # uvicorn puts its root path in front of the raw path
        sent = sent[len(root) :]
    if "%2f" in sent.lower():
        raise InvalidPath(
            "The path holds an encoded slash (%2F); send each part of the path as its own "
            "segment, or check the value for a stray slash.",
            detail_zh="请求地址含有编码的斜杠（%2F），请检查后重试。",
        )
    if _REQUEST_PATH.fullmatch(sent) and unquote(sent) == path:
        return sent
    # "%" is encoded too: in ``path`` it stands for itself
    return quote(path, safe=_PATH_SAFE)


@dataclass(frozen=True)
class Upstream:
    """A service behind the gateway: its name, base URL and the pooled session to it."""

    name: str
    url: str
    session: aiohttp.ClientSession

    async def get(self, path: str, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
        """A whole answer (status, body) to a GET of the gateway's own; errors are aiohttp's."""
        async with self.session.get(
            self.url + path,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
        ) as response:
            return response.status, await response.read()


async def forward(
    request: Request,
    service: Upstream,
    *,
    path: str,
    retry_after: int,
    max_body: int,
) -> Response:
    """Send the request on to ``service`` at ``path`` (from :func:`upstream_path`) and pass
    its answer back.

    The body is passed through as bytes, never parsed here; so is the answer (whole when it
    declares a size up to ``BUFFERED_ANSWER_BYTES``, streamed otherwise). Idempotent requests
    are retried once when the connection could not be made; nothing is retried after it was sent.
    """
    body = await read_body_limited(request, max_body)
    query = request.url.query
    target = URL(service.url + path + (f"?{query}" if query else ""), encoded=True)
    upstream, session = service.name, service.session
    headers = _forward_headers(request)
    attempts = 2 if request.method in IDEMPOTENT else 1
    for attempt in range(attempts):
        try:
            response = await session.request(
                request.method, target, headers=headers, data=body, allow_redirects=False
            )
            break
        except aiohttp.ClientConnectorError:
            if attempt + 1 == attempts:
                raise _unavailable(upstream, "cannot be reached", retry_after, "connect") from None
        except TimeoutError:
            raise _unavailable(upstream, "did not answer in time", retry_after, "timeout") from None
        except aiohttp.ClientError:
            # the connection dropped under the request (the service restarting, or closing a
            # kept-alive connection as it was reused): the caller may retry, as after a timeout
            raise _unavailable(upstream, "dropped the connection", retry_after, "dropped") from None
    # as sent, bytes for bytes (a UTF-8 file name in Content-Disposition stays intact), and
    # repeated fields (several Set-Cookie) kept, which a dict would merge
    answer_headers = [
        (k.lower(), v) for k, v in response.raw_headers if k.lower().decode() not in ANSWER_DROPPED
    ]
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) <= BUFFERED_ANSWER_BYTES:
        # a small answer of known size is read and passed on whole (streaming costs a task
        # group per response: about a quarter of the gateway's CPU on small posts)
        try:
            content = await response.read()  # as sent: the session does not decompress
        except (aiohttp.ClientError, TimeoutError):
            raise _unavailable(upstream, "dropped the connection", retry_after, "dropped") from None
        finally:
            response.release()
        passed = Response(content, status_code=response.status)
    else:
        passed = StreamingResponse(
            response.content.iter_any(),
            status_code=response.status,
            background=BackgroundTask(response.release),
        )
    passed.raw_headers = [
        (k, v) for k, v in passed.raw_headers if k == b"content-length"
    ] + answer_headers
    return passed


def _unavailable(upstream: str, what: str, retry_after: int, kind: str) -> UpstreamUnavailable:
    return UpstreamUnavailable(
        f"The {upstream} service {what}; try again in a few seconds.",
        detail_zh="服务暂时不可用，请稍后再试。",
        headers={"Retry-After": str(retry_after)},
        upstream=upstream,
        kind=kind,
    )

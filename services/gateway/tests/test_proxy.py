"""Forwarding: what a caller gets when the service behind the gateway fails mid-request."""

from __future__ import annotations

import httpx
import pytest
from starlette.requests import Request

from gateway.proxy import UpstreamUnavailable, forward


def _request(body: bytes) -> Request:
    sent = False

    async def receive() -> dict[str, object]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/learning-records:batch",
        "query_string": b"",
        "headers": [(b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 5000),
    }
    return Request(scope, receive)


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadError("reset"), httpx.RemoteProtocolError("closed"), httpx.WriteError("x")],
)
async def test_a_dropped_connection_is_a_503_with_retry_after_not_a_500(
    failure: httpx.TransportError,
) -> None:
    def drop(_request: httpx.Request) -> httpx.Response:
        raise failure

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(drop), base_url="http://credits"
    ) as client:
        with pytest.raises(UpstreamUnavailable) as refused:
            await forward(_request(b"{}"), client, "credits", retry_after=2, max_body=100)
    assert refused.value.status == 503
    assert refused.value.response_headers["Retry-After"] == "2"
    assert refused.value.extensions["kind"] == "dropped"

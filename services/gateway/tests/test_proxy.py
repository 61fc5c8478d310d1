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


@pytest.mark.parametrize("size", [10, 2_000_000])
async def test_answers_pass_through_unchanged_whole_or_streamed(size: int) -> None:
    payload = b"x" * size

    class Wire(httpx.AsyncByteStream):  # as a real transport delivers it: in pieces
        async def __aiter__(self):  # type: ignore[no-untyped-def]
            yield payload[: size // 2]
            yield payload[size // 2 :]

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.content == b'{"records": []}'
        headers = {"x-upstream": "credits", "content-length": str(size)}
        return httpx.Response(207, stream=Wire(), headers=headers)

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(answer), base_url="http://credits"
    ) as client:
        response = await forward(
            _request(b'{"records": []}'), client, "credits", retry_after=2, max_body=100
        )
        sent: list[bytes] = []

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.body":
                sent.append(message.get("body", b""))  # type: ignore[arg-type]

        async def receive() -> dict[str, object]:
            return {"type": "http.disconnect"}

        await response({"type": "http", "asgi": {"spec_version": "2.4"}}, receive, send)
    assert response.status_code == 207 and response.headers["x-upstream"] == "credits"
    assert b"".join(sent) == payload

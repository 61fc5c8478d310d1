"""What the gateway sends on and what it refuses first, against a stand-in service on a loopback
socket that records every request as it arrived: the path as encoded, the method, the headers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web
from starlette.requests import Request

from gateway.config import Settings
from gateway.main import create_app
from gateway.proxy import upstream_path
from kernel import servicecalls
from kernel.problems import PROBLEM_JSON
from testkit.apps import running
from testkit.postgres import free_port


@dataclass
class Seen:
    """A request as the stand-in service received it."""

    method: str
    raw_path: str  # as on the request line, still encoded
    path: str  # as the service decodes it
    headers: dict[str, str] = field(default_factory=dict)


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[httpx.AsyncClient, list[Seen]]]:
    seen: list[Seen] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(
            Seen(
                request.method,
                request.raw_path.partition("?")[0],
                request.path,
                {k.lower(): v for k, v in request.headers.items()},
            )
        )
        return web.json_response({"items": []})

    service = web.Application()
    service.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(service)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    try:
        settings = Settings(log_level="WARNING", accounts_url=base, credits_url=base)
        async with running(create_app(settings)) as app:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                yield client, seen
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("sent", "decoded"),
    [
        # a public route's {key}; decoded twice it was a staff route's path
        ("/api/v1/units/410711%252Fregistrations", "/api/v1/units/410711%2Fregistrations"),
        ("/verify/AB%2012", "/verify/AB 12"),
        ("/api/v1/units/%E4%B8%AD", "/api/v1/units/中"),
        ("/verify/100%25", "/verify/100%"),
    ],
    ids=["double-encoded-slash", "encoded-space", "encoded-utf8", "encoded-percent"],
)
async def test_the_path_reaches_the_service_as_the_caller_encoded_it(
    gateway: tuple[httpx.AsyncClient, list[Seen]], sent: str, decoded: str
) -> None:
    client, seen = gateway
    response = await client.get(sent)
    assert response.status_code == 200, response.text
    assert [(s.raw_path, s.path) for s in seen] == [(sent, decoded)]


@pytest.mark.parametrize(
    "sent",
    [
        "/api/v1/units/410711%2Fregistrations",  # a slash inside {key}, or a staff route?
        "/api/v1/units/410711%2fregistrations",
        "/verify/%2F..%2F..%2Fadmin",
        "/verify/AB%0012",
        "/verify/AB%0DX-Injected:%201",
        "/verify/AB%C2%8512",  # NEL, a line break to some readers
    ],
)
async def test_an_encoded_slash_or_a_control_character_is_refused_as_a_problem(
    gateway: tuple[httpx.AsyncClient, list[Seen]], sent: str
) -> None:
    client, seen = gateway
    response = await client.get(sent)
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["type"].endswith("/invalid-path") and problem["status"] == 400
    assert problem["detail_zh"]
    assert seen == []


async def test_a_line_feed_is_no_route_at_all_answered_as_a_problem(
    gateway: tuple[httpx.AsyncClient, list[Seen]],
) -> None:
    client, seen = gateway
    # Starlette's router takes it first: the catch-all's ".*" stops at a line feed
    response = await client.get("/verify/AB%0AX-Injected:%201")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"].endswith("/not-found")
    assert seen == []


def _scope_request(raw_path: bytes | None, path: str, root_path: str = "") -> Request:
    scope: dict[str, object] = {
        "type": "http",
        "method": "GET",
        "path": root_path + path,
        "root_path": root_path,
    }
    if raw_path is not None:
        scope["raw_path"] = raw_path
    return Request(scope)


def test_the_servers_root_path_is_not_sent_on() -> None:
    request = _scope_request(b"/gw/verify/AB%2012", "/verify/AB 12", root_path="/gw")
    assert upstream_path(request, "/verify/AB 12") == "/verify/AB%2012"


@pytest.mark.parametrize(
    "raw_path",
    [None, "/verify/AB 中".encode(), b"/verify/something-else"],
    ids=["no-raw-path", "unencoded-bytes", "another-path"],
)
def test_without_a_usable_raw_path_the_routed_path_is_encoded_afresh(
    raw_path: bytes | None,
) -> None:
    request = _scope_request(raw_path, "/verify/AB 中%")
    assert upstream_path(request, "/verify/AB 中%") == "/verify/AB%20%E4%B8%AD%25"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("HEAD", "/api/v1/units", "GET"),
        ("HEAD", "/verify/AB12", "GET"),
        ("DELETE", "/api/v1/learning-accounts/a1", "GET, PATCH"),
    ],
)
async def test_a_method_a_path_does_not_take_is_a_405_problem_naming_those_it_does(
    gateway: tuple[httpx.AsyncClient, list[Seen]], method: str, path: str, allowed: str
) -> None:
    client, seen = gateway
    response = await client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.headers["content-type"] == PROBLEM_JSON
    if method != "HEAD":  # an answer to HEAD has no body
        assert response.json()["type"].endswith("/method-not-allowed")
    assert seen == []


@pytest.mark.parametrize(
    "limit",
    ["²", "٣", "1" * 5000, "101", "-1", "ten"],
    ids=["superscript-two", "arabic-indic-three", "5000-digits", "over", "negative", "word"],
)
async def test_a_limit_that_is_not_a_page_size_in_ascii_digits_is_a_422_problem(
    gateway: tuple[httpx.AsyncClient, list[Seen]], limit: str
) -> None:
    client, seen = gateway
    response = await client.get("/api/v1/units", params={"limit": limit})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"].endswith("/page-size-too-large")
    assert seen == []


@pytest.mark.parametrize("limit", ["100", "007", "0"])
async def test_a_page_size_in_range_is_sent_on(
    gateway: tuple[httpx.AsyncClient, list[Seen]], limit: str
) -> None:
    client, seen = gateway
    response = await client.get("/api/v1/units", params={"limit": limit})
    assert response.status_code == 200, response.text
    assert len(seen) == 1


async def test_a_callers_service_signature_is_not_sent_on(
    gateway: tuple[httpx.AsyncClient, list[Seen]],
) -> None:
    client, seen = gateway
    response = await client.get(
        "/api/v1/units",
        headers={"X-Muye-Service-Signature": "t=1700000000,v1=00ff", "X-Trace": "kept"},
    )
    assert response.status_code == 200, response.text
    [request] = seen
    assert servicecalls.HEADER not in request.headers
    assert request.headers["x-trace"] == "kept"

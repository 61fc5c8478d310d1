"""The portfolio the gateway composes, against stand-in services on loopback sockets (the
end-to-end tests in tests/ use the real ones): who is asked what, and what a missing part does."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web
from fastapi import FastAPI

from gateway.config import Settings
from gateway.main import create_app
from kernel.tokens import StaticKeySource, TokenSigner, TokenVerifier, keys_from_jwks
from testkit.apps import running
from testkit.http import bearer
from testkit.postgres import free_port
from testkit.tokens import private_jwk, public_jwk

KEY = private_jwk("gateway-test")
LEARNER = uuid.UUID("2b7f0d0e-8a43-4c6f-9a53-0d6a1b7c9e11")
CREDITS_PARTS = {
    "enrolments": [],
    "attendance": {"items": [], "next_cursor": None},
    "hours": {"total_minutes": 90},
    "recent_records": {"items": [], "next_cursor": None},
    "credit_balance": {"total_hundredths": 250},
    "credit_history": {"items": [], "next_cursor": "abc"},
    "certifications": [{"id": "a1", "outcome_type": "award"}],
    "conversions": [],
    "awards": [{"id": "a1", "outcome_type": "award"}],
}


@dataclass
class Services:
    """Stand-ins for accounts and credits on loopback sockets: canned answers, every request
    seen. The gateway talks to them over real HTTP; tests/ runs it against the real services."""

    accounts_status: int = 200
    credits_status: int | None = 200  # None: the connection is dropped unanswered
    credits_answer: dict[str, object] = field(default_factory=lambda: dict(CREDITS_PARTS))
    credits_delay: float = 0.0  # seconds the credits stand-in takes over the parts
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # service, path?query, token

    def app(self, service: str) -> web.Application:
        async def answer(request: web.Request) -> web.StreamResponse:
            self.seen.append((service, request.raw_path, request.headers.get("authorization", "")))
            path = request.path
            if service == "accounts":
                if path == "/api/v1/me/account" or path.startswith("/api/v1/learning-accounts/"):
                    body = {"id": str(LEARNER), "id_number_masked": "4107**********1234"}
                    status = 200 if path == "/api/v1/me/account" else self.accounts_status
                    return web.json_response(body if status == 200 else {}, status=status)
                return web.json_response({}, status=404)
            if not path.endswith("/portfolio-parts"):
                return web.json_response({}, status=404)
            if self.credits_status is None:
                assert request.transport is not None
                request.transport.close()  # as a crashed service: no answer at all
                return web.Response()
            if self.credits_status != 200:
                return web.json_response({"type": "x"}, status=self.credits_status)
            answer = dict(self.credits_answer)  # as it is when the request came
            await asyncio.sleep(self.credits_delay)
            return web.json_response(answer)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", answer)
        return app


@asynccontextmanager
async def _serving(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[httpx.AsyncClient, Services, FastAPI]]:
    async with _gateway() as running_gateway:
        yield running_gateway


@asynccontextmanager
async def _gateway(**settings_: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Services, FastAPI]]:
    services = Services()
    async with (
        _serving(services.app("accounts")) as accounts,
        _serving(services.app("credits")) as credits,
    ):
        settings = Settings(
            log_level="WARNING", accounts_url=accounts, credits_url=credits, **settings_
        )
        async with running(create_app(settings)) as app:
            app.state.token_verifier = TokenVerifier(
                StaticKeySource(keys_from_jwks({"keys": [public_jwk(KEY)]})),
                issuer=settings.token_issuer,
                audience=settings.token_audience,
            )
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                yield client, services, app


def _token(kind: str, role: str, subject: str | None = None) -> str:
    settings = Settings()
    signer = TokenSigner(KEY, issuer=settings.token_issuer, audience=settings.token_audience)
    return signer.sign(
        subject=subject or str(uuid.uuid4()),
        kind=kind,
        lifetime_seconds=600,
        roles=[role],
        unit="410711",
        extra={"unit_path": "/410711/"},
    )


async def test_the_residents_portfolio_asks_both_services_at_once_with_their_token(
    gateway,
) -> None:  # type: ignore[no-untyped-def]
    client, services, _ = gateway
    token = _token("resident", "resident", str(LEARNER))
    response = await client.get("/api/v1/me/portfolio", headers=bearer(token))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["complete"] is True and body["missing"] == {}
    assert "not_yet_offered" not in body
    assert list(body) == ["complete", "missing", "profile", *CREDITS_PARTS]
    assert body["profile"]["id"] == str(LEARNER)
    assert {k: body[k] for k in CREDITS_PARTS} == CREDITS_PARTS
    assert sorted((s, p) for s, p, _ in services.seen) == [
        ("accounts", "/api/v1/me/account"),
        ("credits", "/api/v1/me/portfolio-parts"),
    ]
    assert {t for _, _, t in services.seen} == {f"Bearer {token}"}


@pytest.mark.parametrize(
    ("status", "reason"),
    [(503, "answered 503"), (None, "unreachable (ServerDisconnectedError)")],
)
async def test_credits_parts_that_cannot_be_had_are_each_named_and_null(
    gateway, status, reason
) -> None:  # type: ignore[no-untyped-def]
    client, services, _ = gateway
    services.credits_status = status
    token = _token("resident", "resident", str(LEARNER))
    body = (await client.get("/api/v1/me/portfolio", headers=bearer(token))).json()
    assert body["complete"] is False
    assert body["missing"] == dict.fromkeys(CREDITS_PARTS, reason)
    assert all(body[name] is None for name in CREDITS_PARTS)
    assert body["profile"]["id"] == str(LEARNER)  # the rest is there


async def test_a_part_absent_from_the_credits_answer_is_missing_not_empty(gateway) -> None:  # type: ignore[no-untyped-def]
    client, services, _ = gateway
    del services.credits_answer["awards"]  # say, a credits service of an older version
    token = _token("resident", "resident", str(LEARNER))
    body = (await client.get("/api/v1/me/portfolio", headers=bearer(token))).json()
    assert body["complete"] is False
    assert body["missing"] == {"awards": "not in the credits service's answer"}
    assert body["awards"] is None and body["certifications"] == CREDITS_PARTS["certifications"]


async def test_staff_get_a_learners_parts_after_the_accounts_check(gateway) -> None:  # type: ignore[no-untyped-def]
    client, services, _ = gateway
    token = _token("staff", "auditor")
    response = await client.get(f"/api/v1/learners/{LEARNER}/portfolio", headers=bearer(token))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["complete"] is True and body["profile"]["id"] == str(LEARNER)
    assert body["credit_balance"] == CREDITS_PARTS["credit_balance"]
    # accounts first (the profile is its answer), then the credits parts under /learners
    assert [(s, p) for s, p, _ in services.seen] == [
        ("accounts", f"/api/v1/learning-accounts/{LEARNER}"),
        ("credits", f"/api/v1/learners/{LEARNER}/portfolio-parts"),
    ]


@pytest.mark.parametrize("accounts_status", [403, 404])
async def test_a_learner_the_caller_may_not_see_is_a_404_and_nothing_else_is_asked(
    gateway, accounts_status: int
) -> None:  # type: ignore[no-untyped-def]
    client, services, _ = gateway
    services.accounts_status = accounts_status
    token = _token("staff", "school_staff")
    response = await client.get(f"/api/v1/learners/{LEARNER}/portfolio", headers=bearer(token))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail_zh"] == "找不到该学习者或无权查看。"
    assert "profile" not in response.json()
    assert [s for s, _, _ in services.seen] == ["accounts"]


async def test_a_learner_id_that_is_no_uuid_is_a_404_without_asking_anyone(gateway) -> None:  # type: ignore[no-untyped-def]
    client, services, _ = gateway
    token = _token("staff", "school_staff")
    response = await client.get("/api/v1/learners/not-a-uuid/portfolio", headers=bearer(token))
    assert response.status_code == 404
    assert services.seen == []


async def test_when_accounts_cannot_say_the_learners_portfolio_is_a_503(gateway) -> None:  # type: ignore[no-untyped-def]
    client, services, _ = gateway
    services.accounts_status = 500
    token = _token("staff", "school_staff")
    response = await client.get(f"/api/v1/learners/{LEARNER}/portfolio", headers=bearer(token))
    assert response.status_code == 503
    assert response.json()["type"].endswith("/upstream-unavailable")
    assert response.headers["retry-after"] == "5"
    assert [s for s, _, _ in services.seen] == ["accounts"]


@pytest.mark.parametrize(
    ("path", "kind", "role"),
    [
        ("/api/v1/me/portfolio", "staff", "district_admin"),
        ("/api/v1/me/portfolio", "partner", "partner"),
        (f"/api/v1/learners/{LEARNER}/portfolio", "partner", "partner"),
    ],
)
async def test_roles_the_route_table_does_not_name_are_refused_before_any_fetch(
    gateway, path: str, kind: str, role: str
) -> None:  # type: ignore[no-untyped-def]
    client, services, _ = gateway
    response = await client.get(path, headers=bearer(_token(kind, role)))
    assert response.status_code == 403
    assert services.seen == []


# --- the resident's portfolio kept ready (gateway.portfoliocache) ---------------------------


def _parts_asked(services: Services) -> int:
    return sum(1 for s, p, _ in services.seen if s == "credits" and p.endswith("portfolio-parts"))


async def test_a_residents_second_read_is_the_kept_answer_with_its_age() -> None:
    async with _gateway(portfolio_cache_seconds=30) as (client, services, app):
        token = bearer(_token("resident", "resident", str(LEARNER)))
        first = await client.get("/api/v1/me/portfolio", headers=token)
        services.credits_answer["hours"] = {"total_minutes": 999}  # not asked again
        second = await client.get("/api/v1/me/portfolio", headers=token)
        assert first.status_code == second.status_code == 200
        assert "age" not in first.headers and second.headers["age"] == "0"
        assert second.content == first.content and second.json()["hours"]["total_minutes"] == 90
        assert _parts_asked(services) == 1
        metrics = (await client.get("/metrics")).text
        assert 'gateway_portfolio_cache_total{outcome="hit"} 1.0' in metrics
        assert 'gateway_portfolio_cache_total{outcome="miss"} 1.0' in metrics


async def test_each_resident_has_their_own_kept_answer() -> None:
    async with _gateway(portfolio_cache_seconds=30) as (client, services, _):
        for subject in (str(LEARNER), str(uuid.uuid4())):
            response = await client.get(
                "/api/v1/me/portfolio", headers=bearer(_token("resident", "resident", subject))
            )
            assert response.status_code == 200 and "age" not in response.headers
        assert _parts_asked(services) == 2


async def test_the_residents_own_write_is_in_their_next_read() -> None:
    async with _gateway(portfolio_cache_seconds=30) as (client, services, _):
        token = bearer(_token("resident", "resident", str(LEARNER)))
        await client.get("/api/v1/me/portfolio", headers=token)
        services.credits_answer["enrolments"] = [{"activity_id": "new"}]
        # the write goes to credits (the stand-in answers 404; the write counts all the same)
        await client.post("/api/v1/conversions", headers=token, json={})
        after = await client.get("/api/v1/me/portfolio", headers=token)
        assert after.json()["enrolments"] == [{"activity_id": "new"}]
        assert "age" not in after.headers and _parts_asked(services) == 2


async def test_a_write_by_someone_else_shows_once_the_kept_answer_expires() -> None:
    async with _gateway(portfolio_cache_seconds=0.3) as (client, services, _):
        token = bearer(_token("resident", "resident", str(LEARNER)))
        await client.get("/api/v1/me/portfolio", headers=token)
        services.credits_answer["hours"] = {"total_minutes": 120}  # staff entered attendance
        staff = bearer(_token("staff", "school_staff"))
        await client.post("/api/v1/conversions", headers=staff, json={})  # not the resident's
        assert (await client.get("/api/v1/me/portfolio", headers=token)).json()["hours"] == {
            "total_minutes": 90
        }
        await asyncio.sleep(0.35)
        expired = await client.get("/api/v1/me/portfolio", headers=token)
        assert expired.json()["hours"] == {"total_minutes": 120} and "age" not in expired.headers


async def test_a_composition_that_overlaps_the_residents_write_is_not_kept() -> None:
    async with _gateway(portfolio_cache_seconds=30) as (client, services, _):
        token = bearer(_token("resident", "resident", str(LEARNER)))
        services.credits_delay = 0.3
        reading = asyncio.create_task(client.get("/api/v1/me/portfolio", headers=token))
        await asyncio.sleep(0.1)  # the parts are being read (as they were before the write)
        services.credits_answer["conversions"] = [{"id": "c1"}]
        await client.post("/api/v1/conversions", headers=token, json={})
        during = await client.get(
            "/api/v1/me/portfolio", headers=token
        )  # joins nothing begun before
        assert (await reading).json()["conversions"] == []  # composed before the write
        assert during.json()["conversions"] == [{"id": "c1"}] and "age" not in during.headers
        services.credits_delay = 0.0
        after = await client.get("/api/v1/me/portfolio", headers=token)
        assert after.json()["conversions"] == [{"id": "c1"}] and after.headers["age"] == "0"
        assert _parts_asked(services) == 2


async def test_concurrent_reads_of_one_resident_share_one_composition() -> None:
    async with _gateway(portfolio_cache_seconds=30) as (client, services, _):
        token = bearer(_token("resident", "resident", str(LEARNER)))
        services.credits_delay = 0.2
        answers = await asyncio.gather(
            *(client.get("/api/v1/me/portfolio", headers=token) for _ in range(10))
        )
        assert {a.status_code for a in answers} == {200}
        assert len({a.content for a in answers}) == 1
        assert _parts_asked(services) == 1


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"credits_status": 503}, "a part is missing"),
        (
            {"credits_answer": {**CREDITS_PARTS, "credit_balance": {"settlement_pending": True}}},
            "pending",
        ),
    ],
)
async def test_an_incomplete_or_pending_portfolio_is_never_kept(change, why) -> None:  # type: ignore[no-untyped-def]
    async with _gateway(portfolio_cache_seconds=30) as (client, services, _):
        for name, value in change.items():
            setattr(services, name, value)
        token = bearer(_token("resident", "resident", str(LEARNER)))
        for _ in range(2):
            response = await client.get("/api/v1/me/portfolio", headers=token)
            assert response.status_code == 200 and "age" not in response.headers, why
        assert _parts_asked(services) == 2, why


async def test_a_read_late_in_the_answers_life_composes_the_next_one_in_the_background() -> None:
    async with _gateway(portfolio_cache_seconds=1.0) as (client, services, _):
        token = bearer(_token("resident", "resident", str(LEARNER)))
        await client.get("/api/v1/me/portfolio", headers=token)
        services.credits_answer["hours"] = {"total_minutes": 150}
        await asyncio.sleep(0.85)
        late = await client.get("/api/v1/me/portfolio", headers=token)
        assert late.json()["hours"] == {"total_minutes": 90} and late.headers["age"] == "0"
        for _ in range(50):  # the background composition lands
            if _parts_asked(services) == 2:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        fresh = await client.get("/api/v1/me/portfolio", headers=token)
        assert fresh.json()["hours"] == {"total_minutes": 150} and "age" in fresh.headers
        assert _parts_asked(services) == 2


async def test_staff_views_and_a_switched_off_cache_compose_every_time() -> None:
    async with _gateway(portfolio_cache_seconds=30) as (client, services, _):
        staff = bearer(_token("staff", "auditor"))
        for _ in range(2):
            seen = await client.get(f"/api/v1/learners/{LEARNER}/portfolio", headers=staff)
            assert seen.status_code == 200 and "age" not in seen.headers
        assert _parts_asked(services) == 2
    async with _gateway(portfolio_cache_seconds=0) as (client, services, _):
        token = bearer(_token("resident", "resident", str(LEARNER)))
        for _ in range(2):
            own = await client.get("/api/v1/me/portfolio", headers=token)
            assert own.status_code == 200 and "age" not in own.headers
        assert _parts_asked(services) == 2


async def test_an_older_composition_finishing_late_does_not_push_out_a_newer_answer() -> None:
    async with _gateway(portfolio_cache_seconds=30) as (client, services, _):
        token = bearer(_token("resident", "resident", str(LEARNER)))
        services.credits_delay = 0.4
        slow = asyncio.create_task(client.get("/api/v1/me/portfolio", headers=token))
        await asyncio.sleep(0.1)
        services.credits_delay = 0.0
        services.credits_answer["conversions"] = [{"id": "c1"}]
        await client.post("/api/v1/conversions", headers=token, json={})
        fresh = await client.get("/api/v1/me/portfolio", headers=token)  # kept, newer
        assert fresh.json()["conversions"] == [{"id": "c1"}]
        assert (await slow).json()["conversions"] == []  # finishes last, under the old one
        again = await client.get("/api/v1/me/portfolio", headers=token)
        assert again.json()["conversions"] == [{"id": "c1"}] and again.headers["age"] == "0"
        assert _parts_asked(services) == 2

"""The portfolio the gateway composes, against services faked at the httpx level only (the
end-to-end tests in tests/ use the real ones): who is asked what, and what a missing part does."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI

from gateway.config import Settings
from gateway.main import create_app
from kernel.tokens import StaticKeySource, TokenSigner, TokenVerifier, keys_from_jwks
from testkit.apps import running
from testkit.http import bearer
from testkit.tokens import private_jwk, public_jwk

KEY = private_jwk("gateway-test")
LEARNER = uuid.UUID("2b7f0d0e-8a43-4c6f-9a53-0d6a1b7c9e11")
AWARD = {"id": "a1", "outcome_type": "award", "status": "approved", "title": "百姓学习之星"}
CERTIFICATIONS = [
    AWARD,
    {"id": "a2", "outcome_type": "award", "status": "submitted", "title": "市级表彰"},
    {"id": "v1", "outcome_type": "vocational_qualification", "status": "approved", "title": "x"},
]


@dataclass
class Services:
    """Fake accounts and credits: canned answers by path, and every request seen."""

    accounts_status: int = 200
    broken: dict[str, int | None] = field(default_factory=dict)  # path end -> status, None: down
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # service, path?query, token

    def handler(self, service: str) -> Callable[[httpx.Request], httpx.Response]:
        def answer(request: httpx.Request) -> httpx.Response:
            target = request.url.raw_path.decode()
            self.seen.append((service, target, request.headers.get("authorization", "")))
            path = request.url.path
            if service == "accounts":
                if path == "/api/v1/me/account" or path.startswith("/api/v1/learning-accounts/"):
                    body = {"id": str(LEARNER), "id_number_masked": "4107**********1234"}
                    status = 200 if path == "/api/v1/me/account" else self.accounts_status
                    return httpx.Response(status, json=body if status == 200 else {})
                return httpx.Response(404, json={})
            for end, status in self.broken.items():
                if path.endswith(end):
                    if status is None:
                        raise httpx.ConnectError("refused", request=request)
                    return httpx.Response(status, json={"type": "x"})
            if path.endswith("/certifications"):
                return httpx.Response(200, json=CERTIFICATIONS)
            if path.endswith(("/enrolments", "/conversions")):
                return httpx.Response(200, json=[])
            if path.endswith(("/attendance", "/records", "/credit-history")):
                return httpx.Response(200, json={"items": [], "next_cursor": None})
            return httpx.Response(200, json={"part": path.rsplit("/", 1)[-1]})

        return answer


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[httpx.AsyncClient, Services, FastAPI]]:
    settings = Settings(log_level="WARNING")
    services = Services()
    async with running(create_app(settings)) as app:
        app.state.token_verifier = TokenVerifier(
            StaticKeySource(keys_from_jwks({"keys": [public_jwk(KEY)]})),
            issuer=settings.token_issuer,
            audience=settings.token_audience,
        )
        real = app.state.clients
        app.state.clients = {
            name: httpx.AsyncClient(
                transport=httpx.MockTransport(services.handler(name)), base_url=f"http://{name}"
            )
            for name in ("accounts", "credits")
        }
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield client, services, app
        for fake in app.state.clients.values():
            await fake.aclose()
        app.state.clients = real


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


async def test_the_residents_parts_are_fetched_at_once_with_their_own_token(gateway) -> None:  # type: ignore[no-untyped-def]
    client, services, _ = gateway
    token = _token("resident", "resident", str(LEARNER))
    response = await client.get("/api/v1/me/portfolio", headers=bearer(token))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["complete"] is True and body["missing"] == {}
    assert "not_yet_offered" not in body
    assert list(body) == [
        "complete",
        "missing",
        "profile",
        "enrolments",
        "attendance",
        "hours",
        "recent_records",
        "credit_balance",
        "credit_history",
        "certifications",
        "conversions",
        "awards",
    ]
    assert body["awards"] == [AWARD]  # approved awards only
    assert body["credit_balance"] == {"part": "credits"}
    assert {(s, p) for s, p, _ in services.seen} == {
        ("accounts", "/api/v1/me/account"),
        ("credits", "/api/v1/me/enrolments"),
        ("credits", "/api/v1/me/attendance?limit=20"),
        ("credits", "/api/v1/me/hours"),
        ("credits", "/api/v1/me/records?limit=20"),
        ("credits", "/api/v1/me/credits"),
        ("credits", "/api/v1/me/credit-history?limit=20"),
        ("credits", "/api/v1/me/certifications"),
        ("credits", "/api/v1/me/conversions"),
    }
    assert {t for _, _, t in services.seen} == {f"Bearer {token}"}


@pytest.mark.parametrize(
    ("broken", "reason"),
    [(503, "answered 503"), (None, "unreachable (ConnectError)")],
)
async def test_a_part_that_cannot_be_had_is_named_and_null(gateway, broken, reason) -> None:  # type: ignore[no-untyped-def]
    client, services, _ = gateway
    services.broken = {"/hours": broken, "/certifications": broken}
    token = _token("resident", "resident", str(LEARNER))
    body = (await client.get("/api/v1/me/portfolio", headers=bearer(token))).json()
    assert body["complete"] is False
    assert body["missing"] == {
        "hours": reason,
        "certifications": reason,
        "awards": "taken from certifications, which could not be had",
    }
    assert body["hours"] is None and body["certifications"] is None and body["awards"] is None
    assert body["credit_balance"] == {"part": "credits"}  # the rest is there


async def test_staff_get_a_learners_parts_from_the_learner_scoped_routes(gateway) -> None:  # type: ignore[no-untyped-def]
    client, services, _ = gateway
    token = _token("staff", "auditor")
    response = await client.get(f"/api/v1/learners/{LEARNER}/portfolio", headers=bearer(token))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["complete"] is True and body["profile"]["id"] == str(LEARNER)
    assert body["awards"] == [AWARD]
    # accounts first (the profile is its answer), then every credits part under /learners
    assert services.seen[0][:2] == ("accounts", f"/api/v1/learning-accounts/{LEARNER}")
    credits = {p for s, p, _ in services.seen[1:]}
    assert all(s == "credits" for s, _, _ in services.seen[1:])
    base = f"/api/v1/learners/{LEARNER}"
    assert credits == {
        f"{base}/enrolments",
        f"{base}/attendance?limit=20",
        f"{base}/hours",
        f"{base}/records?limit=20",
        f"{base}/credits",
        f"{base}/credit-history?limit=20",
        f"{base}/certifications",
        f"{base}/conversions",
    }


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

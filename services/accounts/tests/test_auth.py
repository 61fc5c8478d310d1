"""Sign-in, the published keys and the caller's profile."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from accounts.cli import DEMO_STAFF
from kernel.tokens import StaticKeySource, TokenVerifier, keys_from_jwks


async def test_staff_token_verifies_against_published_jwks(
    client: httpx.AsyncClient, staff_token: str, accounts_app: FastAPI
) -> None:
    jwks = (await client.get("/.well-known/jwks.json")).json()
    assert all("d" not in key for key in jwks["keys"])  # no private material published
    settings = accounts_app.state.settings
    verifier = TokenVerifier(
        StaticKeySource(keys_from_jwks(jwks)),
        issuer=settings.token_issuer,
        audience=settings.token_audience,
    )
    principal = await verifier.verify(staff_token)
    assert principal.kind == "staff"
    assert principal.roles == ("district_admin",)
    assert principal.unit == "410711"
    lifetime = principal.expires_at - int(principal.claims["iat"])
    assert lifetime == settings.access_token_minutes * 60


async def test_wrong_password_is_invalid_grant(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": DEMO_STAFF["username"], "password": "nope"},
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_grant"
    assert body["type"].endswith("/invalid-grant")
    assert "access_token" not in body


async def test_unknown_user_gets_the_same_answer_as_a_wrong_password(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/auth/token", data={"grant_type": "password", "username": "ghost", "password": "x"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_unsupported_grant_type(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/token", data={"grant_type": "implicit"})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_me_needs_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"


async def test_me_with_token_names_the_staff_and_unit(
    client: httpx.AsyncClient, staff_token: str
) -> None:
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {staff_token}"})
    assert response.status_code == 200
    me = response.json()
    assert me["kind"] == "staff"
    assert me["unit_key"] == "410711"
    assert me["unit_name"] == "牧野区社区学院"


async def test_tampered_token_is_refused(client: httpx.AsyncClient, staff_token: str) -> None:
    head, payload, signature = staff_token.split(".")
    forged = f"{head}.{payload[:-2]}AA.{signature}"
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert response.json()["type"].endswith("/invalid-token")

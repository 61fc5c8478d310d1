"""Small HTTP helpers for tests: bearer headers and password sign-in."""

from __future__ import annotations

import httpx


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


def password_token(client: httpx.Client, username: str, password: str) -> str:
    """Sign in with the password grant and return the access token."""
    response = client.post(
        "/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])

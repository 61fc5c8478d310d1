"""Shapes of the token endpoint and the caller's own profile."""

from __future__ import annotations

from pydantic import BaseModel


class TokenResponse(BaseModel):
    """RFC 6749 section 5.1 access token response."""

    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    scope: str
    refresh_token: str | None = None


class Me(BaseModel):
    """Who the caller is, as the accounts service knows them."""

    subject: str
    kind: str
    roles: list[str]
    scopes: list[str]
    display_name: str | None = None
    unit_key: str | None = None
    unit_name: str | None = None

"""Request-side authentication: the bearer token checked once, the principal handed to routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from kernel.problems import Forbidden
from kernel.tokens import InvalidToken, Principal, TokenVerifier


async def current_principal(request: Request) -> Principal:
    """Verify the request's bearer token with the app's verifier and return its principal."""
    header = request.headers.get("authorization")
    if not header:
        raise InvalidToken(
            "This operation needs a bearer token in the Authorization header.",
            detail_zh="此操作需要登录，请在 Authorization 头中提供访问令牌。",
            reason="no token",
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken(
            "The Authorization header must read 'Bearer <token>'.",
            detail_zh="Authorization 头格式应为 'Bearer <令牌>'。",
            reason="not a bearer token",
        )
    verifier: TokenVerifier = request.app.state.token_verifier
    return await verifier.verify(token.strip())


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """Build a dependency that admits only principals holding one of ``roles``."""

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if not principal.has_role(*roles):
            raise Forbidden(
                "Your role does not allow this operation.",
                detail_zh="您的角色无权执行此操作。",
            )
        return principal

    return dependency

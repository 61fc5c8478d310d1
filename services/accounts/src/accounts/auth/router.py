"""Sign-in (OAuth 2.0 token endpoint and revocation), the published keys, the caller's profile."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response

from accounts.auth import service
from accounts.auth.schemas import Me, TokenResponse
from accounts.network.models import Unit
from accounts.staff.models import StaffUser
from kernel.auth import CurrentPrincipal
from kernel.db import SessionDep
from kernel.problems import Unauthorized

router = APIRouter(tags=["auth"])

GRANTS = ("password", "refresh_token", "client_credentials")


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, secret = base64.b64decode(value).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise service.InvalidClient(
            "Malformed HTTP Basic credentials.", error="invalid_client"
        ) from None
    # RFC 6749 2.3.1: both parts are form-urlencoded before Basic encoding
    return unquote(user), unquote(secret)


def _request_error(detail: str, detail_zh: str) -> service.OAuthError:
    return service.OAuthError(detail, detail_zh=detail_zh, error="invalid_request")


@router.post("/auth/token", response_model=TokenResponse)
async def token(
    request: Request,
    session: SessionDep,
    grant_type: Annotated[str, Form(max_length=40)],
    username: Annotated[str | None, Form(max_length=80)] = None,
    password: Annotated[str | None, Form(max_length=200)] = None,
    refresh_token: Annotated[str | None, Form(max_length=200)] = None,
    client_id: Annotated[str | None, Form(max_length=60)] = None,
    client_secret: Annotated[str | None, Form(max_length=200)] = None,
    scope: Annotated[str | None, Form(max_length=200)] = None,
) -> JSONResponse:
    """Issue tokens (form-encoded, RFC 6749).

    ``password``: residents (learning account number or phone) and staff (username);
    ``refresh_token``: rotation, a reused token revokes its family; ``client_credentials``:
    partner platforms, with form fields or HTTP Basic.
    """
    settings = request.app.state.settings
    lifetime = settings.access_token_minutes * 60
    refresh: str | None = None
    if grant_type == "password":
        if not username or not password:
            raise _request_error(
                "The password grant needs username and password.", "请输入账号和密码。"
            )
        identity = await service.password_sign_in(
            session=session,
            cipher=request.app.state.pii,
            settings=settings,
            username=username,
            password=password,
        )
        refresh = service.new_refresh_token(session, identity, settings.refresh_token_days)
    elif grant_type == "refresh_token":
        if not refresh_token:
            raise _request_error("The refresh_token grant needs refresh_token.", "缺少刷新令牌。")
        identity, refresh = await service.rotate_refresh_token(
            session=session, settings=settings, token=refresh_token
        )
    elif grant_type == "client_credentials":
        basic = _basic_credentials(request)
        cid, secret = basic if basic else (client_id, client_secret)
        if not cid or not secret:
            raise service.InvalidClient(
                "Client credentials are missing (HTTP Basic or client_id and client_secret).",
                error="invalid_client",
            )
        identity = await service.client_credentials(
            session=session,
            client_id=cid,
            client_secret=secret,
            requested=scope.split() if scope else None,
        )
    else:
        raise service.OAuthError(
            f"grant_type {grant_type!r} is not supported; use one of {', '.join(GRANTS)}.",
            error="unsupported_grant_type",
        )
    await session.commit()
    access = service.sign_access_token(request.app.state.signer, identity, lifetime)
    body = TokenResponse(
        access_token=access,
        expires_in=lifetime,
        scope=" ".join(identity.scopes),
        refresh_token=refresh,
    )
    # RFC 6749 5.1: token responses must not be cached
    return JSONResponse(
        body.model_dump(exclude_none=True),
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@router.post("/auth/revoke", status_code=200)
async def revoke(session: SessionDep, token: Annotated[str, Form(max_length=200)]) -> Response:
    """RFC 7009: revoke a refresh token (and its rotation family). Always 200."""
    await service.revoke_refresh_token(session=session, token=token)
    await session.commit()
    return Response(status_code=200)


@router.get("/.well-known/jwks.json")
async def jwks(request: Request) -> JSONResponse:
    """The keys that verify our tokens: signing, next before it signs, retired in overlap."""
    return JSONResponse(
        request.app.state.keyring.refreshed().public_jwks(),
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get("/api/v1/me", response_model=Me)
async def me(principal: CurrentPrincipal, session: SessionDep) -> Me:
    """The signed-in caller's own profile."""
    result = Me(
        subject=principal.subject,
        kind=principal.kind,
        roles=list(principal.roles),
        scopes=list(principal.scopes),
        unit_key=principal.unit,
    )
    if principal.kind == "staff":
        try:
            staff_id = uuid.UUID(principal.subject)
        except ValueError:
            raise Unauthorized("The token names no staff user.", reason="unknown subject") from None
        staff = await session.get(StaffUser, staff_id)
        if staff is not None:
            unit = await session.get(Unit, staff.unit_id)
            result.display_name = staff.display_name
            result.unit_name = unit.name if unit else None
    return result

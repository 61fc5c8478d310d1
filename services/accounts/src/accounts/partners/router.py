"""Routes of partner clients (district administrators and college staff)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from accounts.partners import service
from kernel.access import require_staff
from kernel.auth import CurrentPrincipal
from kernel.db import SessionDep
from kernel.roles import PARTNER_MANAGERS

router = APIRouter(prefix="/api/v1", tags=["partner clients"])


class PartnerCreate(BaseModel):
    """A partner platform to register."""

    model_config = ConfigDict(extra="forbid")
    client_id: str = Field(min_length=3, max_length=60)
    name: str = Field(min_length=1, max_length=120)
    unit: str = Field(min_length=1, max_length=40, description="key of the owning unit")
    scopes: list[Literal["records:write", "records:read"]] = Field(min_length=1)


class PartnerSecret(BaseModel):
    """The client and its secret: shown this once, never again."""

    client_id: str
    client_secret: str
    scopes: list[str]


@router.post("/partner-clients", response_model=PartnerSecret, status_code=201)
async def register(
    body: PartnerCreate, principal: CurrentPrincipal, session: SessionDep
) -> PartnerSecret:
    """Register a partner platform for the caller's unit or one under it; the response holds
    its secret, shown only now."""
    covering = require_staff(principal, PARTNER_MANAGERS)
    client, secret = await service.register(
        session=session,
        client_id=body.client_id,
        name=body.name,
        unit_key=body.unit,
        scopes=list(body.scopes),
        actor=principal,
        covering_path=covering,
    )
    await session.commit()
    return PartnerSecret(client_id=client.client_id, client_secret=secret, scopes=client.scopes)


@router.post("/partner-clients/{client_id}/secret", response_model=PartnerSecret)
async def rotate(client_id: str, principal: CurrentPrincipal, session: SessionDep) -> PartnerSecret:
    """Issue a new secret for a partner of the caller's unit or one under it (404 for any
    other); the old secret stops working at once."""
    covering = require_staff(principal, PARTNER_MANAGERS)
    client, secret = await service.rotate_secret(
        session=session, client_id=client_id, actor=principal, covering_path=covering
    )
    await session.commit()
    return PartnerSecret(client_id=client.client_id, client_secret=secret, scopes=client.scopes)

"""Partner clients: registration and secret rotation (the secret is shown once)."""

from __future__ import annotations

import asyncio
import re
import secrets
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from accounts.audit import service as audit
from accounts.network.models import Unit
from accounts.partners.models import PARTNER_SCOPES, PartnerClient
from accounts.staff.passwords import hash_password
from kernel.problems import PROBLEMS, Conflict, DomainError, NotFound
from kernel.tokens import Principal

_CLIENT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{2,59}$")


class InvalidPartner(DomainError):
    """The partner client cannot be registered as asked."""

    type = PROBLEMS + "invalid-partner-client"
    status = 422
    title = "Invalid partner client"


def new_secret() -> str:
    """A fresh client secret (256 bits)."""
    return secrets.token_urlsafe(32)


async def register(
    *,
    session: AsyncSession,
    client_id: str,
    name: str,
    unit_key: str,
    scopes: list[str],
    actor: Principal | str,
) -> tuple[PartnerClient, str]:
    """Register a partner; returns it and its secret (never stored in plain)."""
    if not _CLIENT_ID.match(client_id):
        raise InvalidPartner("client_id: 3-60 lower-case letters, digits and dashes.")
    unknown = set(scopes) - set(PARTNER_SCOPES)
    if unknown or not scopes:
        raise InvalidPartner(f"scopes must be among {', '.join(PARTNER_SCOPES)}.")
    unit = (
        await session.execute(select(Unit).where(col(Unit.key) == unit_key))
    ).scalar_one_or_none()
    if unit is None:
        raise InvalidPartner(f"No unit has the key {unit_key!r}.")
    existing = await session.execute(
        select(PartnerClient).where(col(PartnerClient.client_id) == client_id)
    )
    if existing.scalar_one_or_none() is not None:
        raise Conflict(f"A partner client {client_id!r} exists already.")
    secret = new_secret()
    client = PartnerClient(
        client_id=client_id,
        name=name,
        secret_hash=await asyncio.to_thread(hash_password, secret),
        scopes=sorted(set(scopes)),
        unit_id=unit.id,
    )
    session.add(client)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="partner_client.register",
        target_type="partner_client",
        target_id=client_id,
        after={"client_id": client_id, "scopes": client.scopes, "unit": unit_key},
    )
    return client, secret


async def rotate_secret(
    *, session: AsyncSession, client_id: str, actor: Principal | str
) -> tuple[PartnerClient, str]:
    """Replace the secret; the old one stops working at once."""
    client = (
        await session.execute(
            select(PartnerClient).where(col(PartnerClient.client_id) == client_id)
        )
    ).scalar_one_or_none()
    if client is None:
        raise NotFound(f"No partner client {client_id!r}.")
    secret = new_secret()
    client.secret_hash = await asyncio.to_thread(hash_password, secret)
    client.secret_rotated_at = datetime.now(UTC)
    audit.record(
        session,
        actor=actor,
        action="partner_client.rotate_secret",
        target_type="partner_client",
        target_id=client_id,
    )
    await session.flush()
    return client, secret

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
from kernel.problems import PROBLEMS, Conflict, DomainError, Forbidden, NotFound
from kernel.tokens import Principal

_CLIENT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{2,59}$")


class InvalidPartner(DomainError):
    """The partner client cannot be registered as asked."""

    type = PROBLEMS + "invalid-partner-client"
    status = 422
    title = "Invalid partner client"


class PartnerUnitOutOfScope(Forbidden):
    """The owning unit is not the caller's unit or one under it."""

    type = PROBLEMS + "unit-out-of-scope"
    title = "Unit out of scope"


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
    covering_path: str | None,
) -> tuple[PartnerClient, str]:
    """Register a partner; returns it and its secret (never stored in plain).

    ``covering_path`` is the caller's unit path: a partner's tokens act for its owning unit,
    so staff may register one only for their own unit or a unit under it (None, which a caller
    must say explicitly: no limit, for system callers).
    """
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
    if covering_path is not None and not unit.path.startswith(covering_path):
        # units are public (GET /units), so saying the unit is outside reveals nothing
        raise PartnerUnitOutOfScope(
            f"Unit {unit_key} is not yours: register partners for your unit or those under it.",
            detail_zh="只能为本单位及下属单位登记合作平台。",
        )
    existing = await session.execute(
        select(PartnerClient).where(col(PartnerClient.client_id) == client_id)
    )
    if existing.scalar_one_or_none() is not None:
        raise Conflict(
            f"A partner client {client_id!r} exists already.", detail_zh="该合作平台标识已被使用。"
        )
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
    *,
    session: AsyncSession,
    client_id: str,
    actor: Principal | str,
    covering_path: str | None,
) -> tuple[PartnerClient, str]:
    """Replace the secret; the old one stops working at once.

    With ``covering_path`` (the caller's unit path), a partner owned by a unit outside it is
    answered exactly like a missing one, so staff cannot learn which other clients exist.
    """
    row = (
        await session.execute(
            select(PartnerClient, col(Unit.path))
            .join(Unit, col(PartnerClient.unit_id) == col(Unit.id))
            .where(col(PartnerClient.client_id) == client_id)
        )
    ).first()
    if row is None or (covering_path is not None and not row[1].startswith(covering_path)):
        raise NotFound(f"No partner client {client_id!r}.", detail_zh="找不到该合作平台。")
    client = row[0]
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

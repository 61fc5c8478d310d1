"""Staff users: creation and password sign-in."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from accounts.audit import service as audit
from accounts.network.models import Unit
from accounts.staff.models import STAFF_ROLES, StaffUser
from accounts.staff.passwords import hash_password, verify_password
from kernel.tokens import Principal


class InvalidStaff(ValueError):
    """A staff user cannot be created as asked."""


async def get_by_username(*, session: AsyncSession, username: str) -> StaffUser | None:
    """Return the staff user with this username."""
    result = await session.execute(select(StaffUser).where(col(StaffUser.username) == username))
    return result.scalar_one_or_none()


async def ensure_staff(
    *,
    session: AsyncSession,
    username: str,
    display_name: str,
    password: str,
    role: str,
    unit_key: str,
    actor: Principal | str = "cli",
) -> tuple[StaffUser, bool]:
    """Create the staff user unless one with this username exists; return it and whether new."""
    if role not in STAFF_ROLES:
        raise InvalidStaff(f"unknown role {role!r}; one of {', '.join(STAFF_ROLES)}")
    existing = await get_by_username(session=session, username=username)
    if existing is not None:
        return existing, False
    unit = (
        await session.execute(select(Unit).where(col(Unit.key) == unit_key))
    ).scalar_one_or_none()
    if unit is None:
        raise InvalidStaff(f"no unit with key {unit_key!r}")
    staff = StaffUser(
        username=username,
        display_name=display_name,
        # Argon2id takes ~100 ms of CPU: off the event loop, as sign-in's check is
        password_hash=await asyncio.to_thread(hash_password, password),
        role=role,
        unit_id=unit.id,
    )
    try:
        async with session.begin_nested():
            session.add(staff)
    except IntegrityError:  # the same username created at the same moment by someone else
        taken = await get_by_username(session=session, username=username)
        if taken is None:
            raise
        return taken, False
    audit.record(
        session,
        actor=actor,
        action="staff_user.create",
        target_type="staff_user",
        target_id=str(staff.id),
        after={"username": username, "role": role, "unit": unit_key},
    )
    return staff, True


async def authenticate(
    *, session: AsyncSession, username: str, password: str
) -> tuple[StaffUser, Unit] | None:
    """Return the active staff user and unit when the password matches, else None."""
    row = (
        await session.execute(
            select(StaffUser, Unit)
            .join(Unit, col(StaffUser.unit_id) == col(Unit.id))
            .where(col(StaffUser.username) == username)
        )
    ).first()
    staff, unit = (row[0], row[1]) if row else (None, None)
    ok = await verify_password(staff.password_hash if staff else None, password)
    if not ok or staff is None or unit is None or staff.status != "active":
        return None
    return staff, unit

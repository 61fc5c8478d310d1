"""Routes of staff users: managers add staff to their own unit or the units under it."""

from __future__ import annotations

import re
import uuid
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, select

from accounts.network.models import Unit
from accounts.network.repository import UnitRepository
from accounts.staff import service
from accounts.staff.models import StaffUser
from kernel.access import require_staff
from kernel.auth import CurrentPrincipal
from kernel.db import SessionDep
from kernel.pagination import ALTERED, InvalidCursor, Page, PageDep, encode_cursor
from kernel.problems import PROBLEMS, Conflict, DomainError, Forbidden
from kernel.roles import AUDITOR, DISTRICT_ADMIN, PARTNER_MANAGERS
from kernel.text import PlainText

router = APIRouter(prefix="/api/v1", tags=["staff"])
USERNAME = r"^[A-Za-z0-9._-]+$"
StaffRole = Literal[
    "learning_point_staff", "school_staff", "college_staff", "auditor", "district_admin"
]


class InvalidStaffProblem(DomainError):
    """The staff user cannot be created as asked."""

    type = PROBLEMS + "invalid-staff-user"
    status = 422
    title = "Invalid staff user"


class StaffCreate(BaseModel):
    """A staff user to add."""

    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=3, max_length=60, pattern=USERNAME)
    display_name: PlainText = Field(min_length=1, max_length=80)
    password: str = Field(min_length=10, max_length=200)
    role: StaffRole
    unit: str = Field(min_length=1, max_length=40)


class StaffPublic(BaseModel):
    """A staff user as shown."""

    id: uuid.UUID
    username: str
    display_name: str
    role: str
    unit: str
    status: str


@router.post("/staff", response_model=StaffPublic, status_code=201)
async def create_staff(
    body: StaffCreate, principal: CurrentPrincipal, session: SessionDep
) -> StaffPublic:
    """Add a staff user to a unit the caller covers (district administrators and college staff)."""
    covering = require_staff(principal, PARTNER_MANAGERS)
    if body.role == DISTRICT_ADMIN and not principal.has_role(DISTRICT_ADMIN):
        raise Forbidden(
            "Only a district administrator can appoint another.",
            detail_zh="只有区管理员可以任命区管理员。",
        )
    # an auditor reads every unit's statistics and every audit trail, whatever their unit: only
    # someone who reaches every unit already may appoint one (not college staff of one town)
    if body.role == AUDITOR and not (
        principal.has_role(DISTRICT_ADMIN) or covering.strip("/").count("/") == 0
    ):
        raise Forbidden(
            "An auditor reads every unit's statistics and audit trail: only staff of the whole"
            " district or a district administrator can appoint one.",
            detail_zh="审计人员可查看全区统计和审计日志，只有区级工作人员或区管理员可以任命。",
        )
    unit = await UnitRepository(session).get_by_key(body.unit)
    if unit is None or not unit.path.startswith(covering):
        raise InvalidStaffProblem(
            f"No unit {body.unit!r} within yours.", detail_zh="单位不存在或不在您的管理范围内。"
        )
    staff, created = await service.ensure_staff(
        session=session,
        username=body.username,
        display_name=body.display_name,
        password=body.password,
        role=body.role,
        unit_key=body.unit,
        actor=principal,
    )
    if not created:
        raise Conflict(f"The username {body.username!r} is taken.", detail_zh="用户名已被使用。")
    await session.commit()
    return StaffPublic(
        id=staff.id,
        username=staff.username,
        display_name=staff.display_name,
        role=staff.role,
        unit=unit.key,
        status=staff.status,
    )


@router.get("/staff", response_model=Page[StaffPublic])
async def list_staff(
    principal: CurrentPrincipal, session: SessionDep, page: PageDep
) -> Page[StaffPublic]:
    """Staff of the caller's unit and the units under it."""
    covering = require_staff(principal, (*PARTNER_MANAGERS, "auditor"))
    query = (
        select(StaffUser, col(Unit.key))
        .join(Unit, col(StaffUser.unit_id) == col(Unit.id))
        .where(col(Unit.path).startswith(covering, autoescape=True))
        .order_by(col(StaffUser.username))
        .limit(page.limit + 1)
    )
    if page.cursor:
        after = page.cursor.get("after")
        if not isinstance(after, str) or not re.fullmatch(USERNAME, after):
            raise InvalidCursor(ALTERED)  # not signed: a changed one must not reach the database
        query = query.where(col(StaffUser.username) > after)
    rows = (await session.execute(query)).all()
    items = [
        StaffPublic(
            id=s.id,
            username=s.username,
            display_name=s.display_name,
            role=s.role,
            unit=key,
            status=s.status,
        )
        for s, key in rows[: page.limit]
    ]
    more = len(rows) > page.limit
    return Page[StaffPublic](
        items=items, next_cursor=encode_cursor({"after": items[-1].username}) if more else None
    )

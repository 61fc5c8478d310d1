"""Registration figures of a unit (and everything under it) for the statistics reports.

Counts only, summed in SQL: how many residents of the unit hold a learning account (each is a
real-name account: it is opened with a checked citizen ID number), how many are active, how
many were opened in a period, and how many are in each group the plans single out. The unit's
resident population is the network's data (``unit.population``, with where it came from).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import String, case, cast, func
from sqlalchemy import select as sql_select
from sqlmodel import col

from accounts.learners.models import GROUPS, LearningAccount
from accounts.network.repository import UnitRepository
from accounts.network.service import UnitNotFound
from kernel.access import READING_STAFF, covers, require_staff
from kernel.auth import CurrentPrincipal
from kernel.db import SessionDep
from kernel.problems import Forbidden
from kernel.roles import AUDITOR, DISTRICT_ADMIN

CHINA = ZoneInfo("Asia/Shanghai")
router = APIRouter(prefix="/api/v1", tags=["statistics"])


class Registrations(BaseModel):
    """Learning accounts of the unit's residents (the unit and everything under it)."""

    unit: str
    name: str
    path: str
    population: int | None
    population_is_demo: bool
    registered: int
    active: int
    registered_in_period: int
    by_group: dict[str, int]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), CHINA).astimezone(UTC)


@router.get("/units/{key}/registrations", response_model=Registrations)
async def registrations(
    key: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    from_: Annotated[date, Query(alias="from")],
    to: date,
) -> Registrations:
    """Accounts of residents of the unit opened by the end of ``to`` (Beijing day), and those
    opened from ``from`` to ``to``: staff covering the unit, auditors and district admins."""
    require_staff(principal, READING_STAFF)
    unit = await UnitRepository(session).get_by_key(key)
    if unit is None:
        raise UnitNotFound(f"No unit has the key {key!r}.", detail_zh="找不到该办学单位。")
    if not principal.has_role(AUDITOR, DISTRICT_ADMIN) and not covers(principal, unit.path):
        raise Forbidden(
            f"Statistics of {key} are not yours to see: staff see their own unit and those "
            "under it.",
            detail_zh="只能查看本单位及下属单位的统计。",
        )
    ends = _midnight(to + timedelta(days=1))
    begins = _midnight(from_)
    created = col(LearningAccount.created_at)
    # groups are a JSON list; its text holds each group as a quoted word on both databases
    groups_text = cast(col(LearningAccount.groups), String)
    row = (
        await session.execute(
            sql_select(
                func.count(),
                func.count().filter(col(LearningAccount.status) == "active"),
                func.count().filter(created >= begins),
                *(func.sum(case((groups_text.like(f'%"{g}"%'), 1), else_=0)) for g in GROUPS),
            ).where(
                col(LearningAccount.residence_path).startswith(unit.path, autoescape=True),
                created < ends,
            )
        )
    ).one()
    registered, active, in_period, *per_group = row
    demo = unit.is_demo
    return Registrations(
        unit=unit.key,
        name=unit.name,
        path=unit.path,
        population=unit.population,
        population_is_demo=demo,
        registered=int(registered),
        active=int(active),
        registered_in_period=int(in_period),
        by_group={g: int(n or 0) for g, n in zip(GROUPS, per_group, strict=True)},
    )

"""Routes of the school network (public reference data: no personal data in it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from accounts.network.repository import UnitRepository
from accounts.network.schemas import LevelPublic, UnitPublic
from accounts.network.service import UnitNotFound, to_public
from kernel.db import SessionDep
from kernel.pagination import ALTERED, InvalidCursor, Page, PageDep, encode_cursor
from kernel.text import CONTROL_FREE

router = APIRouter(prefix="/api/v1", tags=["network"])


def _is_path(value: object) -> bool:
    """Whether ``value`` is shaped as a unit's path (``/410711/410711100/``)."""
    return (
        isinstance(value, str)
        and len(value) <= 400
        and value.startswith("/")
        and value.endswith("/")
        and "\x00" not in value
    )


@router.get("/unit-levels", response_model=list[LevelPublic])
async def list_levels(session: SessionDep) -> list[LevelPublic]:
    """The levels of the network, top first."""
    levels = await UnitRepository(session).levels()
    return [LevelPublic(code=lv.code, name=lv.name, rank=lv.rank) for lv in levels]


@router.get("/units", response_model=Page[UnitPublic])
async def list_units(
    session: SessionDep,
    page: PageDep,
    under: Annotated[
        str | None,
        Query(
            max_length=40,
            pattern=CONTROL_FREE,
            description="key of a unit: it and everything under it",
        ),
    ] = None,
    level: Annotated[str | None, Query(max_length=40, pattern=CONTROL_FREE)] = None,
) -> Page[UnitPublic]:
    """Units in depth-first order, optionally below one unit or at one level."""
    repo = UnitRepository(session)
    under_path = None
    if under is not None:
        root = await repo.get_by_key(under)
        if root is None:
            raise UnitNotFound(f"No unit has the key {under!r}.", detail_zh="找不到该办学单位。")
        under_path = root.path
    after = page.cursor.get("path") if page.cursor else None
    if page.cursor and not _is_path(after):
        raise InvalidCursor(ALTERED)  # not signed: a changed one must not reach the database
    rows = await repo.page(
        under_path=under_path, level=level, after_path=after, limit=page.limit + 1
    )
    items = [to_public(unit, parent_key) for unit, parent_key in rows[: page.limit]]
    next_cursor = encode_cursor({"path": items[-1].path}) if len(rows) > page.limit else None
    return Page[UnitPublic](items=items, next_cursor=next_cursor)


@router.get("/units/{key}", response_model=UnitPublic)
async def get_unit(key: str, session: SessionDep) -> UnitPublic:
    """One unit by its key."""
    repo = UnitRepository(session)
    unit = await repo.get_by_key(key)
    if unit is None:
        raise UnitNotFound(f"No unit has the key {key!r}.", detail_zh="找不到该办学单位。")
    parent = await session.get(type(unit), unit.parent_id) if unit.parent_id else None
    return to_public(unit, parent.key if parent else None)

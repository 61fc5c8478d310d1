"""Routes of the activity catalogue (public reference data)."""

from __future__ import annotations

from fastapi import APIRouter

from credits.catalogue import service
from credits.catalogue.schemas import CategoryPublic
from kernel.db import SessionDep

router = APIRouter(prefix="/api/v1", tags=["catalogue"])


@router.get("/categories", response_model=list[CategoryPublic])
async def list_categories(session: SessionDep) -> list[CategoryPublic]:
    """The categories activities are filed under."""
    rows = await service.list_categories(session=session)
    return [
        CategoryPublic(code=c.code, name_zh=c.name_zh, name_en=c.name_en, parent_code=c.parent_code)
        for c in rows
    ]

"""Loading and reading the category catalogue."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from credits.catalogue.models import ActivityCategory
from kernel.packagedata import read_json


def default_categories() -> dict[str, Any]:
    """The category list shipped with the service."""
    return read_json("credits.catalogue", "data/categories.json")


async def load_categories(*, session: AsyncSession, data: dict[str, Any]) -> dict[str, int]:
    """Create or update categories from ``data`` (parents first); idempotent."""
    created = updated = 0
    entries = sorted(data["categories"], key=lambda c: c.get("parent") is not None)
    for order, raw in enumerate(entries):
        fields = {
            "name_zh": raw["name_zh"],
            "name_en": raw["name_en"],
            "parent_code": raw.get("parent"),
            "sort_order": order,
        }
        category = await session.get(ActivityCategory, raw["code"])
        if category is None:
            session.add(ActivityCategory(code=raw["code"], **fields))
            created += 1
        elif any(getattr(category, k) != v for k, v in fields.items()):
            for k, v in fields.items():
                setattr(category, k, v)
            updated += 1
        await session.flush()
    return {"created": created, "updated": updated, "total": len(entries)}


async def list_categories(*, session: AsyncSession) -> Sequence[ActivityCategory]:
    """Active categories in catalogue order."""
    result = await session.execute(
        select(ActivityCategory)
        .where(col(ActivityCategory.active).is_(True))
        .order_by(col(ActivityCategory.sort_order))
    )
    return result.scalars().all()

"""Queries on the school network."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from accounts.network.models import Unit, UnitLevel


class UnitRepository:
    """Reads and writes of units and levels within one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_key(self, key: str) -> Unit | None:
        """Return the unit with this key (None for a key no unit can have, such as one holding
        NUL, which PostgreSQL text cannot hold: asking would be a 500)."""
        if "\x00" in key:
            return None
        result = await self.session.execute(select(Unit).where(col(Unit.key) == key))
        return result.scalar_one_or_none()

    async def levels(self) -> Sequence[UnitLevel]:
        """All levels, top first."""
        result = await self.session.execute(select(UnitLevel).order_by(col(UnitLevel.rank)))
        return result.scalars().all()

    async def page(
        self,
        *,
        under_path: str | None,
        level: str | None,
        after_path: str | None,
        limit: int,
    ) -> list[tuple[Unit, str | None]]:
        """Units ordered by path (a depth-first walk), each with its parent's key."""
        parent = aliased(Unit)
        query = select(Unit, col(parent.key)).outerjoin(
            parent, col(Unit.parent_id) == col(parent.id)
        )
        if under_path is not None:
            query = query.where(col(Unit.path).startswith(under_path, autoescape=True))
        if level is not None and "\x00" in level:
            return []  # no level code holds NUL (PostgreSQL refuses to compare with one)
        if level is not None:
            query = query.where(col(Unit.level_code) == level)
        if after_path is not None:
            query = query.where(col(Unit.path) > after_path)
        query = query.order_by(col(Unit.path)).limit(limit)
        result = await self.session.execute(query)
        return [(row[0], row[1]) for row in result.all()]

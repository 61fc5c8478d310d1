"""The activity catalogue's reference data."""

from __future__ import annotations

from sqlmodel import Field

from credits.db import Base


class ActivityCategory(Base, table=True):
    """活动类别: a category of learning activity (law, tai chi, digital skills...), kept as data."""

    __tablename__ = "activity_category"

    code: str = Field(primary_key=True, max_length=40)
    name_zh: str = Field(max_length=80)
    name_en: str = Field(max_length=80)
    parent_code: str | None = Field(
        default=None, foreign_key="activity_category.code", max_length=40
    )
    sort_order: int = Field(default=0)
    active: bool = Field(default=True)

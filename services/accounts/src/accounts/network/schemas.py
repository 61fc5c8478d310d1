"""Request and response shapes of the school network."""

from __future__ import annotations

import uuid

from pydantic import BaseModel


class UnitPublic(BaseModel):
    """A unit as the API shows it."""

    id: uuid.UUID
    key: str
    name: str
    level: str
    parent_key: str | None
    path: str
    division_code: str | None
    division_name: str | None
    population: int | None
    status: str
    is_demo: bool


class LevelPublic(BaseModel):
    """A level of the network."""

    code: str
    name: str
    rank: int

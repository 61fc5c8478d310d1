"""Shapes of the catalogue API."""

from pydantic import BaseModel


class CategoryPublic(BaseModel):
    """A category as the API shows it."""

    code: str
    name_zh: str
    name_en: str
    parent_code: str | None

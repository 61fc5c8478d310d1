"""The credits service's own metadata and model base; no other service reads these tables."""

from sqlalchemy.orm import registry
from sqlmodel import SQLModel

from kernel.db import make_metadata

VERSION_TABLE = "credits_alembic_version"
metadata = make_metadata()


class Base(SQLModel, registry=registry(metadata=metadata)):
    """Base of every credits table."""

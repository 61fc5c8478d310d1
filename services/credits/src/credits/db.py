"""The credits service's own metadata and model base; no other service reads these tables."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import registry
from sqlmodel import SQLModel

from kernel.db import make_engine, make_metadata

VERSION_TABLE = "credits_alembic_version"
metadata = make_metadata()


class Base(SQLModel, registry=registry(metadata=metadata)):
    """Base of every credits table."""


def make_credits_engine(url: str, **options: Any) -> AsyncEngine:
    """The credits service's engine: the kernel's, with JIT off on PostgreSQL (it compiled
    the ingestion statements' plans for longer than they ran). Benchmarks use it too, so they
    time what the service runs."""
    if url.startswith("postgresql"):
        options.setdefault("connect_args", {"server_settings": {"jit": "off"}})
    return make_engine(url, **options)

"""Alembic environment of the accounts service (version table ``accounts_alembic_version``)."""

from alembic import context

from accounts.config import Settings
from accounts.db import VERSION_TABLE, metadata
from accounts.models import load_all
from kernel.migrations import run_env

load_all()
if not context.config.attributes.get("database_url"):
    context.config.attributes["database_url"] = Settings().database_url
run_env(context, metadata, VERSION_TABLE)

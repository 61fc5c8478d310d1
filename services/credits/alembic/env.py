"""Alembic environment of the credits service (version table ``credits_alembic_version``)."""

from alembic import context

from credits.config import Settings
from credits.db import VERSION_TABLE, metadata
from credits.models import load_all
from kernel.migrations import run_env

load_all()
if not context.config.attributes.get("database_url"):
    context.config.attributes["database_url"] = Settings().database_url
# kept by triggers on PostgreSQL (migration 7c4f2e9a1d36), not described by a model
run_env(context, metadata, VERSION_TABLE, database_maintained=("learner_day_minutes",))

"""Credits service: how learning becomes credit."""

from pathlib import Path

# the service's folder: alembic.ini and alembic/ live here
SERVICE_ROOT = Path(__file__).resolve().parents[2]

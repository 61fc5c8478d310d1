"""credits-admin: migrations and reference data."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from credits import SERVICE_ROOT
from credits.catalogue.service import default_categories, load_categories
from credits.config import Settings
from kernel.db import run_in_transaction
from kernel.migrations import upgrade_to_head


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``credits-admin``."""
    parser = argparse.ArgumentParser(prog="credits-admin", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply every migration (alembic upgrade head)")
    commands.add_parser("seed", help="load the reference data shipped with the service")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "migrate":
        upgrade_to_head(SERVICE_ROOT, settings.database_url)
        print("credits: migrations at head")
    elif args.command == "seed":
        counts = asyncio.run(
            run_in_transaction(
                settings.database_url,
                lambda s: load_categories(session=s, data=default_categories()),
            )
        )
        print(f"credits: categories {json.dumps(counts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

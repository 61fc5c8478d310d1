"""credits-admin: migrations and reference data."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from sqlalchemy.ext.asyncio import AsyncSession

from credits import SERVICE_ROOT
from credits.audit.models import TABLES as AUDIT_TABLES
from credits.catalogue.service import default_categories, load_categories
from credits.certification.service import default_standards, load_standards
from credits.config import Settings
from credits.conversion.service import default_targets, load_targets
from credits.credentials import offline
from credits.db import make_credits_engine
from credits.ledger.worker import drain
from credits.rules.service import load_default_rules
from kernel import auditstore
from kernel.db import make_sessionmaker, run_in_transaction
from kernel.migrations import upgrade_to_head


async def seed_reference_data(session: AsyncSession) -> dict[str, object]:
    """Load everything the service ships as data (idempotent)."""
    return {
        "categories": await load_categories(session=session, data=default_categories()),
        "rules": await load_default_rules(session=session),
        "conversion_targets": await load_targets(session=session, data=default_targets()),
        "certification_standards": await load_standards(session=session, data=default_standards()),
    }


async def _accrue(url: str) -> int:
    engine = make_credits_engine(url)
    try:
        return await drain(make_sessionmaker(engine))
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``credits-admin``."""
    parser = argparse.ArgumentParser(prog="credits-admin", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply every migration (alembic upgrade head)")
    commands.add_parser("seed", help="load the reference data shipped with the service")
    commands.add_parser("accrue", help="settle every learner whose records changed, now")
    check = commands.add_parser(
        "verify-credential",
        help="verify a VC-JWT with only the issuer's public keys (files or URLs; works offline)",
    )
    check.add_argument("credential", help="the VC-JWT, or a file or URL holding it")
    check.add_argument("--keys", required=True, help="the credential key set (JWKS): file or URL")
    check.add_argument(
        "--status-list", help="the issuer's status list credential (VC-JWT): file or URL"
    )
    check.add_argument("--issuer", help="the expected issuer id (default: this college's)")
    auditstore.add_cli_commands(commands)
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command in auditstore.CLI_COMMANDS:
        code, line = auditstore.cli_command("credits", settings.database_url, AUDIT_TABLES, args)
        print(line, file=sys.stderr if code else sys.stdout)
        return code
    if args.command == "verify-credential":
        return offline.main(
            args.credential,
            args.keys,
            args.issuer or settings.credential_issuer_id,
            args.status_list,
        )
    if args.command == "migrate":
        upgrade_to_head(SERVICE_ROOT, settings.database_url)
        print("credits: migrations at head")
    elif args.command == "seed":
        counts = asyncio.run(run_in_transaction(settings.database_url, seed_reference_data))
        print(f"credits: reference data {json.dumps(counts)}")
    elif args.command == "accrue":
        print(f"credits: settled {asyncio.run(_accrue(settings.database_url))} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())

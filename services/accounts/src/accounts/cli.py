"""accounts-admin: migrations, signing keys, the network data and staff users."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession
from tqdm import tqdm

from accounts import SERVICE_ROOT
from accounts.audit.models import TABLES as AUDIT_TABLES
from accounts.config import Settings
from accounts.keys import MISSING_HINT
from accounts.learners.importing import ImportReport, import_residents
from accounts.learners.sheet import SheetError, read_sheet
from accounts.network.repository import UnitRepository
from accounts.network.service import load_network, muye_network
from accounts.pii import load_pii_cipher
from accounts.staff import service as staff_service
from kernel import auditstore
from kernel.db import run_in_transaction
from kernel.keyring import KeyRotationPending, load_keyring
from kernel.migrations import upgrade_to_head

DEMO_STAFF = {
    "username": "admin",
    "display_name": "演示管理员 (demo)",
    "password": "muye-demo-2026",
    "role": "district_admin",
    "unit_key": "410711",
}


def _operator() -> str:
    """The audit trail's actor for a change made from the command line: ``cli:<OS user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return "cli:unknown"


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``accounts-admin``."""
    parser = argparse.ArgumentParser(prog="accounts-admin", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply every migration (alembic upgrade head)")
    commands.add_parser(
        "init-keys", help="create the signing key and service call key files if missing"
    )
    rotate = commands.add_parser(
        "rotate-keys", help="publish a new signing key now; it signs after the lead"
    )
    rotate.add_argument(
        "--overlap-seconds",
        type=int,
        default=None,
        help="how long the old key stays published after it stops signing "
        "(default: token lifetime plus leeway)",
    )
    rotate.add_argument(
        "--lead-seconds",
        type=int,
        default=None,
        help="how long the new key is published before it signs "
        "(default: ACCOUNTS_KEY_PUBLISH_LEAD_SECONDS, 600)",
    )
    commands.add_parser("seed-network", help="load the Muye school network (idempotent)")
    commands.add_parser("seed-demo", help="network plus the demo staff login (idempotent)")
    sheet = commands.add_parser(
        "import-residents",
        help="import residents from an .xlsx or .csv sheet (dry run unless --commit)",
    )
    sheet.add_argument("file", type=Path)
    sheet.add_argument("--unit", required=True, help="key of the unit the sheet belongs to")
    sheet.add_argument(
        "--commit", action="store_true", help="write the good rows (default: dry run)"
    )
    staff = commands.add_parser("create-staff", help="create a staff user")
    for name in ("username", "display_name", "password", "role", "unit_key"):
        staff.add_argument(f"--{name.replace('_', '-')}", dest=name, required=True)
    auditstore.add_cli_commands(commands)
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command in auditstore.CLI_COMMANDS:
        code, line = auditstore.cli_command("accounts", settings.database_url, AUDIT_TABLES, args)
        print(line, file=sys.stderr if code else sys.stdout)
        return code

    if args.command == "migrate":
        upgrade_to_head(SERVICE_ROOT, settings.database_url)
        print("accounts: migrations at head")
    elif args.command == "init-keys":
        ring = load_keyring(settings.keys_file, create=True)
        print(f"accounts: signing key {ring.signing_key['kid']} in {settings.keys_file}")
        settings.service_key(create=True)  # shared with credits (kernel.servicecalls)
    elif args.command == "rotate-keys":
        ring = load_keyring(settings.keys_file, create=False, missing_hint=MISSING_HINT)
        overlap = args.overlap_seconds
        if overlap is None:
            overlap = settings.access_token_minutes * 60 + settings.token_leeway_seconds
        lead = settings.key_publish_lead_seconds if args.lead_seconds is None else args.lead_seconds
        if overlap < 0 or lead < 0:
            print(
                "accounts: --overlap-seconds and --lead-seconds cannot be negative", file=sys.stderr
            )
            return 2
        try:
            new = ring.rotate(overlap, lead_seconds=lead)
        except KeyRotationPending as pending:
            print(f"accounts: {pending}", file=sys.stderr)
            return 1
        starts = datetime.fromtimestamp(new.get("signs_from", new["created_at"]), UTC)
        print(
            f"accounts: key {new['kid']} is published now and signs from {starts.isoformat()}"
            " (running services read the key file again; no restart needed)"
        )
    elif args.command in ("seed-network", "seed-demo"):
        counts = asyncio.run(
            run_in_transaction(
                settings.database_url,
                lambda s: load_network(session=s, data=muye_network(), actor=_operator()),
            )
        )
        print(f"accounts: school network {json.dumps(counts)}")
        if args.command == "seed-demo":
            _, created = asyncio.run(
                run_in_transaction(
                    settings.database_url,
                    lambda s: staff_service.ensure_staff(
                        session=s, **DEMO_STAFF, actor=_operator()
                    ),
                )
            )
            print(f"accounts: demo staff {'created' if created else 'present'}")
    elif args.command == "import-residents":
        return _import_residents(settings, args.file, args.unit, commit=args.commit)
    elif args.command == "create-staff":
        fields = {k: getattr(args, k) for k in DEMO_STAFF}
        try:
            asyncio.run(
                run_in_transaction(
                    settings.database_url,
                    lambda s: staff_service.ensure_staff(session=s, **fields, actor=_operator()),
                )
            )
        except staff_service.InvalidStaff as exc:
            print(f"accounts: {exc}", file=sys.stderr)
            return 2
        print(f"accounts: staff {args.username} ready")
    return 0


def _import_residents(settings: Settings, path: Path, unit_key: str, *, commit: bool) -> int:
    try:
        rows = list(read_sheet(path.name, path.read_bytes()))
    except (OSError, SheetError) as exc:
        print(f"accounts: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    cipher = load_pii_cipher(settings.pii_file, create=settings.generate_pii_keys)

    async def work(session: AsyncSession) -> ImportReport:
        unit = await UnitRepository(session).get_by_key(unit_key)
        if unit is None:
            raise SheetError(f"no unit with key {unit_key!r}")
        with tqdm(total=len(rows), unit="row", desc="checking") as bar:
            return await import_residents(
                session=session,
                cipher=cipher,
                rows=rows,
                covering_path=unit.path,
                actor=_operator(),
                district_code=settings.district_code,
                dry_run=not commit,
                progress=bar.update,
            )

    try:
        report = asyncio.run(run_in_transaction(settings.database_url, work))
    except SheetError as exc:
        print(f"accounts: {exc}", file=sys.stderr)
        return 2
    for problem in report.problems:
        print(f"row {problem.row}: {problem.field}: {problem.reason_zh} ({problem.reason})")
    verb = "would create" if report.dry_run else "created"
    print(
        f"accounts: {report.total} rows; {verb} {report.created}, updated {report.updated}, "
        f"unchanged {report.unchanged}, rejected {report.rejected}"
        + (" (dry run: nothing written; add --commit)" if report.dry_run else "")
    )
    return 1 if report.rejected else 0


if __name__ == "__main__":
    sys.exit(main())

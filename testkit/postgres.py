"""A PostgreSQL server for the tests: the local one if it answers, else a throwaway cluster.

Order: ``MUYE_TEST_PG_DSN`` if set; then 127.0.0.1:5432 (trust auth, as on our machines); then a
cluster made with the machine's own ``initdb``/``pg_ctl`` in a temporary folder; else a clear
failure saying what to install. ``MUYE_TEST_PG_THROWAWAY=1`` goes straight to the throwaway.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

INSTALL_HINT = (
    "No PostgreSQL server for the tests: none answers at 127.0.0.1:5432 (or MUYE_TEST_PG_DSN), "
    "and no initdb/pg_ctl was found to start a throwaway one. Install PostgreSQL "
    "(Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql@15) "
    "or point MUYE_TEST_PG_DSN at a server where the user may create databases."
)


def execute(dsn: str, statement: str, *args: object) -> str:
    """Run one statement on a database (plain ``postgresql://`` URL); its status, e.g.
    ``UPDATE 1``. For end-to-end tests that must arrange what only time would (a check-in
    twenty minutes ago) in a running service's database."""

    async def run() -> str:
        connection = await asyncpg.connect(dsn)
        try:
            return str(await connection.execute(statement, *args))
        finally:
            await connection.close()

    return asyncio.run(run())


def checked_in_earlier(dsn: str, session_id: str, minutes: int) -> None:
    """Move the one open or closed check-in of a session ``minutes`` back, as if its resident
    had arrived then (a check-out counts whole minutes since the check-in)."""
    moved = execute(
        dsn,
        "UPDATE attendance SET checked_in_at = checked_in_at - make_interval(mins => $2)"
        " WHERE session_id = $1",
        uuid.UUID(session_id),
        minutes,
    )
    if moved != "UPDATE 1":
        raise AssertionError(f"expected one check-in of session {session_id}, moved: {moved}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _try_connect(dsn: str) -> bool:
    try:
        connection = await asyncpg.connect(dsn, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await connection.close()
    return True


def _find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


@dataclass
class PostgresServer:
    """A server the tests may create databases on."""

    admin_dsn: str
    created: list[str] = field(default_factory=list)

    def base(self) -> str:
        """The DSN without its database name."""
        return self.admin_dsn.rsplit("/", 1)[0]

    def create_database(self, label: str) -> str:
        """Create a fresh, empty database and return its plain ``postgresql://`` URL."""
        name = f"muye_test_{label}_{uuid.uuid4().hex[:8]}"

        async def create() -> None:
            connection = await asyncpg.connect(self.admin_dsn)
            try:
                await connection.execute(f'CREATE DATABASE "{name}"')
            finally:
                await connection.close()

        asyncio.run(create())
        self.created.append(name)
        return f"{self.base()}/{name}"

    def drop_all(self) -> None:
        """Drop every database this run created."""

        async def drop() -> None:
            connection = await asyncpg.connect(self.admin_dsn)
            try:
                for name in self.created:
                    await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await connection.close()

        asyncio.run(drop())
        self.created.clear()


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Yield a server for this test run, starting a throwaway one when needed."""
    candidates = [
        os.environ.get("MUYE_TEST_PG_DSN"),
        "postgresql://postgres@127.0.0.1:5432/postgres",
    ]
    if os.environ.get("MUYE_TEST_PG_THROWAWAY") == "1":  # to exercise the fallback on purpose
        candidates = []
    for dsn in candidates:
        if dsn and asyncio.run(_try_connect(dsn)):
            server = PostgresServer(dsn)
            try:
                yield server
            finally:
                server.drop_all()
            return
    initdb, pg_ctl = _find_binary("initdb"), _find_binary("pg_ctl")
    if not initdb or not pg_ctl:
        raise RuntimeError(INSTALL_HINT)
    workdir = Path(tempfile.mkdtemp(prefix="muye-pg-"))
    data = workdir / "data"
    port = free_port()
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError(INSTALL_HINT + " (as root, a 'postgres' user must exist)") from None
        shutil.chown(workdir, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*run_as, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [
            *run_as,
            pg_ctl,
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(workdir / "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    server = PostgresServer(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    try:
        yield server
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], check=False)
        shutil.rmtree(workdir, ignore_errors=True)

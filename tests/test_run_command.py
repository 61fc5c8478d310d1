"""`make run`'s program on the embedded default: SQLite files, start, answer, stop on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from devstack.stack import ROOT
from testkit.postgres import free_port


def test_run_sets_up_sqlite_serves_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("GATEWAY", "ACCOUNTS", "CREDITS")}
    env = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")}
    env.update({f"MUYE_{name}_PORT": str(port) for name, port in ports.items()})
    env["MUYE_DATA_DIR"] = str(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + 120
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Press Ctrl-C" in line:
                break
        text = "".join(output)
        assert "Press Ctrl-C" in text, text
        assert "admin / muye-demo-2026" in text
        gateway = f"http://127.0.0.1:{ports['GATEWAY']}"
        ready = httpx.get(f"{gateway}/readyz").json()
        backends = {
            ready["checks"][s]["checks"]["database"]["backend"] for s in ("accounts", "credits")
        }
        assert backends == {"sqlite"}
        assert sorted(p.name for p in tmp_path.glob("*.sqlite3")) == [
            "accounts.sqlite3",
            "credits.sqlite3",
        ]
        assert (tmp_path / "keys" / "accounts-signing.jwks.json").stat().st_mode & 0o077 == 0
        token = httpx.post(
            f"{gateway}/auth/token",
            data={"grant_type": "password", "username": "admin", "password": "muye-demo-2026"},
        )
        assert token.status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        remaining, _ = process.communicate(timeout=30)
    assert process.returncode == 0, remaining
    assert "Stopped." in remaining
    for port in ports.values():  # every service process is gone: nothing listens any more
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
        except httpx.ConnectError:
            continue
        raise AssertionError(f"something still answers on port {port}")

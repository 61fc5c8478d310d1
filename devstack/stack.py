"""Prepare and start the three services as separate processes.

``make run`` uses this on the embedded default (one SQLite file per service under ``var/``);
the end-to-end tests use the same code with PostgreSQL URLs and free ports.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class StackConfig:
    """Where each service listens and keeps its data."""

    data_dir: Path = ROOT / "var"
    host: str = "127.0.0.1"
    gateway_port: int = 8000
    accounts_port: int = 8001
    credits_port: int = 8002
    accounts_database_url: str | None = None
    credits_database_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    # uvicorn worker processes per service (default one; benchmarks may ask for more)
    workers: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> StackConfig:
        """Defaults, overridden by ``MUYE_DATA_DIR``, ``MUYE_HOST`` and ``MUYE_*_PORT``."""
        env = os.environ
        return cls(
            data_dir=Path(env.get("MUYE_DATA_DIR", str(ROOT / "var"))),
            host=env.get("MUYE_HOST", "127.0.0.1"),
            gateway_port=int(env.get("MUYE_GATEWAY_PORT", "8000")),
            accounts_port=int(env.get("MUYE_ACCOUNTS_PORT", "8001")),
            credits_port=int(env.get("MUYE_CREDITS_PORT", "8002")),
        )

    def url(self, port: int) -> str:
        """Base URL of the service on ``port``."""
        return f"http://{self.host}:{port}"

    def env(self) -> dict[str, str]:
        """The environment every service process gets."""
        env = dict(os.environ)
        accounts = self.url(self.accounts_port)
        env.update(
            {
                "ACCOUNTS_DATA_DIR": str(self.data_dir),
                "ACCOUNTS_HOST": self.host,
                "ACCOUNTS_PORT": str(self.accounts_port),
                "CREDITS_DATA_DIR": str(self.data_dir),
                "CREDITS_HOST": self.host,
                "CREDITS_PORT": str(self.credits_port),
                "CREDITS_JWKS_URL": accounts + "/.well-known/jwks.json",
                "CREDITS_ACCOUNTS_URL": accounts,
                # verification pages, status lists and keys are published through the gateway
                "CREDITS_PUBLIC_URL": self.url(self.gateway_port),
                "GATEWAY_HOST": self.host,
                "GATEWAY_PORT": str(self.gateway_port),
                "GATEWAY_ACCOUNTS_URL": accounts,
                "GATEWAY_CREDITS_URL": self.url(self.credits_port),
            }
        )
        if self.accounts_database_url:
            env["ACCOUNTS_DATABASE_URL"] = self.accounts_database_url
        if self.credits_database_url:
            env["CREDITS_DATABASE_URL"] = self.credits_database_url
        env.update(self.extra_env)
        return env


def _run(args: list[str], env: Mapping[str, str]) -> None:
    subprocess.run([sys.executable, "-m", *args], env=dict(env), check=True, cwd=ROOT)


def prepare(config: StackConfig, *, demo: bool = True) -> None:
    """Migrate both databases, create signing keys, load reference and demo data."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    env = config.env()
    _run(["accounts.cli", "migrate"], env)
    _run(["accounts.cli", "init-keys"], env)
    _run(["accounts.cli", "seed-demo" if demo else "seed-network"], env)
    _run(["credits.cli", "migrate"], env)
    _run(["credits.cli", "seed"], env)


SERVICES = (
    ("accounts", "accounts.main:create_app", "accounts_port"),
    ("credits", "credits.main:create_app", "credits_port"),
    ("gateway", "gateway.main:create_app", "gateway_port"),
)


@dataclass
class Stack:
    """The running service processes."""

    config: StackConfig
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, *, log_dir: Path | None = None, only: tuple[str, ...] | None = None) -> None:
        """Start each service (or those in ``only``) as its own uvicorn process."""
        env = self.config.env()
        for name, factory, port_field in SERVICES:
            if only is not None and name not in only:
                continue
            port = getattr(self.config, port_field)
            workers = self.config.workers.get(name, 1)
            log = open(log_dir / f"{name}.log", "ab") if log_dir else None  # noqa: SIM115
            self.processes[name] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    factory,
                    "--factory",
                    "--host",
                    self.config.host,
                    "--port",
                    str(port),
                    "--no-access-log",
                    "--timeout-graceful-shutdown",
                    "5",
                    *(["--workers", str(workers)] if workers > 1 else []),
                ],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT if log else None,
            )

    def wait_ready(self, timeout: float = 60.0) -> dict[str, object]:
        """Wait until the gateway reports every service ready; return its report."""
        deadline = time.monotonic() + timeout
        url = self.config.url(self.config.gateway_port) + "/readyz"
        last: object = None
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {process.returncode}")
            try:
                response = httpx.get(url, timeout=2.0)
                last = response.json()
                if response.status_code == 200:
                    return dict(response.json())
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise TimeoutError(f"services not ready after {timeout}s: {last}")

    def stop(self, only: tuple[str, ...] | None = None) -> None:
        """Stop the services (SIGTERM, then SIGKILL after ten seconds)."""
        names = [n for n in self.processes if only is None or n in only]
        for name in names:
            if self.processes[name].poll() is None:
                self.processes[name].send_signal(signal.SIGTERM)
        for name in names:
            try:
                self.processes[name].wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.processes[name].kill()
                self.processes[name].wait()
            del self.processes[name]

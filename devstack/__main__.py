"""``python -m devstack``: set up and run the whole system until Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from types import FrameType

from accounts.cli import DEMO_STAFF
from devstack.stack import Stack, StackConfig, prepare


def main() -> int:
    """Prepare the embedded default, start the services, print where they are, wait."""
    config = StackConfig.from_env()
    print("Preparing databases, keys and demo data in", config.data_dir)
    try:
        prepare(config)
    except subprocess.CalledProcessError as exc:
        print(
            f"setup failed: {' '.join(exc.cmd[2:])} exited with {exc.returncode}", file=sys.stderr
        )
        return 1
    stack = Stack(config)
    stopping = False

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stack.start()
    try:
        report = stack.wait_ready()
        gateway = config.url(config.gateway_port)
        print()
        print("Muye learning-credit bank is running:")
        print(f"  gateway   {gateway}  (the public entry; API docs at {gateway}/docs)")
        print(f"  accounts  {config.url(config.accounts_port)}")
        print(f"  credits   {config.url(config.credits_port)}")
        print(f"  readiness {gateway}/readyz: {report.get('status')}")
        print()
        login = f"{DEMO_STAFF['username']} / {DEMO_STAFF['password']}"
        print(f"Demo login (staff, district administrator): {login}")
        print(
            f"  curl -s -d grant_type=password -d username={DEMO_STAFF['username']} "
            f"-d password={DEMO_STAFF['password']} {gateway}/auth/token"
        )
        print("Press Ctrl-C to stop.")
        while not stopping:
            for name, process in stack.processes.items():
                if process.poll() is not None:
                    print(
                        f"{name} exited with code {process.returncode}; stopping", file=sys.stderr
                    )
                    stopping = True
            time.sleep(0.5)
    except (RuntimeError, TimeoutError) as exc:
        print(f"start failed: {exc}", file=sys.stderr)
        return 1
    finally:
        print("Stopping services...")
        stack.stop()
        print("Stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Headless Chromium (Debian's) for looking at a page as a person would: its DOM and a
screenshot. `make test` installs Chromium where it is missing."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def chromium() -> str:
    """The Chromium executable, or an AssertionError saying how to get one."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "no Chromium: run `make test` (it installs Debian's chromium) or apt-get it"
    return found


def _run(*args: str, timeout: float = 90.0) -> str:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        done = subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def dom(url: str, *, width: int = 390, height: int = 844) -> str:
    """The page's DOM after Chromium has loaded and laid it out."""
    return _run(f"--window-size={width},{height}", "--dump-dom", url)


def screenshot(url: str, path: Path, *, width: int = 390, height: int = 844) -> Path:
    """A PNG of the page at a phone's viewport (390 x 844 CSS pixels by default)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _run(f"--window-size={width},{height}", f"--screenshot={path}", url)
    assert path.is_file() and path.stat().st_size > 0, f"no screenshot at {path}"
    return path

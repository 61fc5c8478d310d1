"""The HMAC key that signs session check-in codes (a file, created on first run if allowed)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


class CheckInKeyMissing(RuntimeError):
    """No key file and generation is switched off."""


def load_checkin_secret(path: Path, *, create: bool) -> bytes:
    """Read the key, creating a 256-bit one (owner-only file) when allowed and missing."""
    if not path.exists():
        if not create:
            raise CheckInKeyMissing(f"no check-in key at {path}: set CREDITS_GENERATE_CHECKIN_KEY")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())

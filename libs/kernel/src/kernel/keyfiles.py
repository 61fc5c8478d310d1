"""Secret keys kept as hex in owner-only files, made on first use where allowed.

The check-in code key and the service call key are kept this way.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


class KeyFileMissing(RuntimeError):
    """No key file where the settings say, and making one is not allowed."""


def load_hex_key(path: Path, *, create: bool, hint: str = "") -> bytes:
    """The key in ``path``, creating a 256-bit one (owner-only file) when allowed and missing.

    Two processes creating it at once both end up with the one that was written first.
    """
    if not path.exists():
        if not create:
            raise KeyFileMissing(f"no key at {path}" + (f": {hint}" if hint else ""))
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())

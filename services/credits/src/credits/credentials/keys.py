"""The college's credential-signing keys: a key ring file (kernel.keyring) of the credits service.

Created on first run when allowed (owner-only), the newest entry signs, older entries stay
published so credentials they signed keep verifying. This key set is not the access tokens'
(the accounts service's): see docs/decisions.md.
"""

from __future__ import annotations

from pathlib import Path

from kernel.keyring import KeyRing, generate_key, load_keyring, public_part

__all__ = ["KeyRing", "generate_key", "load_credential_keys", "public_part"]


def load_credential_keys(path: Path, *, create: bool) -> KeyRing:
    """The credential key ring; created with one fresh key when allowed and missing."""
    return load_keyring(
        path, create=create, missing_hint="set CREDITS_GENERATE_CREDENTIAL_KEYS=true"
    )

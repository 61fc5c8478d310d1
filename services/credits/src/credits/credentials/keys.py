"""The college's credential-signing key: a private JWKS file of the credits service.

Created on first run when allowed (owner-only, like the check-in key), the newest entry signs,
older entries stay published so credentials they signed keep verifying. This key set is not
the access tokens' (the accounts service's): see docs/decisions.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk

PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi")


class CredentialKeysMissing(RuntimeError):
    """No key file and generation is switched off."""


def _thumbprint(entry: dict[str, Any]) -> str:
    # RFC 7638: SHA-256 over the required RSA members in lexicographic order
    canonical = json.dumps(
        {"e": entry["e"], "kty": "RSA", "n": entry["n"]}, separators=(",", ":"), sort_keys=True
    )
    return (
        base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).decode().rstrip("=")
    )


def generate_key(now: float | None = None) -> dict[str, Any]:
    """A new RSA-2048 private JWK for RS256, ``kid`` its thumbprint."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    entry: dict[str, Any] = {
        k: (v.decode() if isinstance(v, bytes) else v)
        for k, v in jwk.RSAKey(pem, "RS256").to_dict().items()
    }
    entry.update({"use": "sig", "alg": "RS256"})
    entry["kid"] = _thumbprint(entry)
    entry["created_at"] = int(time.time() if now is None else now)
    return entry


def public_part(entry: dict[str, Any]) -> dict[str, Any]:
    """The publishable half of a private JWK."""
    return {k: v for k, v in entry.items() if k not in (*PRIVATE_MEMBERS, "created_at")}


@dataclass
class CredentialKeys:
    """The keys in the file: the last one signs, all are published."""

    path: Path
    entries: list[dict[str, Any]]

    @property
    def signing_key(self) -> dict[str, Any]:
        """The private JWK new credentials are signed with."""
        return self.entries[-1]

    def public_jwks(self) -> dict[str, Any]:
        """The key set to publish (credentials never expire because a key was rotated)."""
        return {"keys": [public_part(e) for e in self.entries]}

    def save(self) -> None:
        """Write the file atomically, readable by its owner only."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"keys": self.entries}, handle, indent=1)
        os.replace(temporary, self.path)


def load_credential_keys(path: Path, *, create: bool) -> CredentialKeys:
    """Read the key file; create it with one fresh key when allowed and missing."""
    if path.exists():
        entries = json.loads(path.read_text())["keys"]
        if entries:
            return CredentialKeys(path, entries)
    if not create:
        raise CredentialKeysMissing(
            f"no credential signing keys at {path}: set CREDITS_GENERATE_CREDENTIAL_KEYS=true"
        )
    keys = CredentialKeys(path, [generate_key()])
    keys.save()
    return keys

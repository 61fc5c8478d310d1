"""Signing keys in a private JWKS file: the newest key signs, older keys stay published.

Used by the accounts service (access tokens) and the credits service (credentials), each with a
file of its own. Rotation adds a new key and keeps the previous one published (but no longer
signing) for an overlap; after that it is dropped from the published set. A key never rotated
stays published for good.
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


def thumbprint(public: dict[str, Any]) -> str:
    """The RFC 7638 thumbprint of an RSA JWK."""
    # RFC 7638: SHA-256 over the required members in lexicographic order
    canonical = json.dumps(
        {"e": public["e"], "kty": "RSA", "n": public["n"]}, separators=(",", ":"), sort_keys=True
    )
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def generate_key(now: float | None = None) -> dict[str, Any]:
    """Make a new RSA-2048 private JWK with ``kid`` (its thumbprint) and ``created_at``."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    entry: dict[str, Any] = {
        k: (v.decode() if isinstance(v, bytes) else v)
        for k, v in jwk.RSAKey(pem.decode(), "RS256").to_dict().items()
    }
    entry.update({"use": "sig", "alg": "RS256"})
    entry["kid"] = thumbprint(entry)
    entry["created_at"] = int(time.time() if now is None else now)
    return entry


def public_part(entry: dict[str, Any]) -> dict[str, Any]:
    """The publishable half of a private JWK."""
    return {
        k: v
        for k, v in entry.items()
        if k not in PRIVATE_MEMBERS and k not in ("created_at", "retired_at", "publish_until")
    }


@dataclass
class KeyRing:
    """The keys in one file: the last entry signs, retired ones stay published for a while."""

    path: Path
    entries: list[dict[str, Any]]

    @property
    def signing_key(self) -> dict[str, Any]:
        """The private JWK new tokens are signed with."""
        return self.entries[-1]

    def public_jwks(self, now: float | None = None) -> dict[str, Any]:
        """The JWKS to publish: the signing key and retired keys still within their overlap."""
        moment = time.time() if now is None else now
        live = [e for e in self.entries if e.get("publish_until", float("inf")) > moment]
        return {"keys": [public_part(e) for e in live]}

    def rotate(self, overlap_seconds: int, now: float | None = None) -> dict[str, Any]:
        """Retire the signing key (published ``overlap_seconds`` more) and add a new one."""
        moment = time.time() if now is None else now
        current = self.signing_key
        current["retired_at"] = int(moment)
        current["publish_until"] = int(moment + overlap_seconds)
        # keys past their overlap can go from the file too
        self.entries = [e for e in self.entries if e.get("publish_until", float("inf")) > moment]
        new = generate_key(moment)
        self.entries.append(new)
        self.save()
        return new

    def save(self) -> None:
        """Write the ring atomically, readable by its owner only."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"keys": self.entries}, handle, indent=1)
        os.replace(temporary, self.path)


class SigningKeysMissing(RuntimeError):
    """No key file and key generation is switched off."""


def load_keyring(path: Path, *, create: bool, missing_hint: str = "") -> KeyRing:
    """Read the key file; create it with one fresh key when allowed and missing."""
    if path.exists():
        entries = json.loads(path.read_text())["keys"]
        if entries:
            return KeyRing(path, entries)
    if not create:
        raise SigningKeysMissing(f"no signing keys at {path}: {missing_hint}".rstrip(": "))
    ring = KeyRing(path, [generate_key()])
    ring.save()
    return ring

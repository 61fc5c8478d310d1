"""Signing keys in a private JWKS file: the newest key signs, older keys stay published.

Used by the accounts service (access tokens) and the credits service (credentials), each with a
file of its own. Rotation adds a new key and keeps the previous one published (but no longer
signing) for an overlap; after that it is dropped from the published set. A key never rotated
stays published for good.

A rotation may give the new key a lead: it is published at once and signs only from
``signs_from``, so every verifier that caches the key set (the gateway, for up to its TTL) has
it before the first token it signs arrives. A running service picks the rotation up from the
file (:meth:`KeyRing.refreshed`), without a restart.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk
from jose.backends.base import Key

from kernel.tokens import keys_from_jwks

PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi")
BOOKKEEPING_MEMBERS = ("created_at", "retired_at", "publish_until", "signs_from")


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
        k: v for k, v in entry.items() if k not in PRIVATE_MEMBERS and k not in BOOKKEEPING_MEMBERS
    }


def _signs_from(entry: dict[str, Any]) -> float:
    return float(entry.get("signs_from", float("-inf")))


def _stamp(path: Path) -> tuple[int, int, int]:
    status = path.stat()
    return (status.st_ino, status.st_mtime_ns, status.st_size)


class KeyRotationPending(RuntimeError):
    """A rotated key has not started signing yet: rotating again would skip its lead."""


@dataclass
class KeyRing:
    """The keys in one file: the newest key that may sign signs, retired ones stay published."""

    path: Path
    entries: list[dict[str, Any]]
    #: bumped whenever the entries change (a rotation, or the file read again)
    version: int = 0
    _stamp: tuple[int, int, int] | None = field(default=None, repr=False)
    _checked_at: float = field(default=float("-inf"), repr=False)

    @property
    def signing_key(self) -> dict[str, Any]:
        """The private JWK new tokens are signed with now."""
        return self.signing_key_at()

    def signing_key_at(self, now: float | None = None) -> dict[str, Any]:
        """The private JWK that signs at ``now``: the newest whose lead is over."""
        moment = time.time() if now is None else now
        ready = [e for e in self.entries if _signs_from(e) <= moment]
        return ready[-1] if ready else self.entries[0]

    def public_jwks(self, now: float | None = None) -> dict[str, Any]:
        """The JWKS to publish: the signing key, a key in its lead, retired keys in overlap."""
        moment = time.time() if now is None else now
        live = [e for e in self.entries if e.get("publish_until", float("inf")) > moment]
        return {"keys": [public_part(e) for e in live]}

    def rotate(
        self, overlap_seconds: int, *, lead_seconds: int = 0, now: float | None = None
    ) -> dict[str, Any]:
        """Add a key that signs after ``lead_seconds``, published from now.

        The key it replaces signs until then and stays published ``overlap_seconds`` longer.
        """
        moment = time.time() if now is None else now
        pending = [e for e in self.entries if _signs_from(e) > moment]
        if pending:
            starts_at = datetime.fromtimestamp(_signs_from(pending[-1]), UTC).isoformat()
            raise KeyRotationPending(
                f"key {pending[-1]['kid']} signs from {starts_at}; rotate again after that"
            )
        current = self.signing_key_at(moment)
        starts = int(moment + lead_seconds)
        current["retired_at"] = starts
        current["publish_until"] = starts + overlap_seconds
        # keys past their overlap can go from the file too
        self.entries = [e for e in self.entries if e.get("publish_until", float("inf")) > moment]
        new = generate_key(moment)
        if lead_seconds > 0:
            new["signs_from"] = starts
        self.entries.append(new)
        self.save()
        return new

    def refreshed(self, min_interval_seconds: float = 1.0) -> KeyRing:
        """This ring, read again from its file if the file changed since it was read.

        The file is looked at once a second at most, so a rotation reaches a running service
        within a second. A file that cannot be read keeps the keys already held.
        """
        now = time.monotonic()
        if now - self._checked_at < min_interval_seconds:
            return self
        self._checked_at = now
        try:
            stamp = _stamp(self.path)
            if stamp != self._stamp:
                entries = json.loads(self.path.read_text())["keys"]
                if entries:
                    self.entries = entries
                    self.version += 1
                self._stamp = stamp
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return self

    def save(self) -> None:
        """Write the ring atomically, readable by its owner only."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"keys": self.entries}, handle, indent=1)
        os.replace(temporary, self.path)
        self.version += 1
        self._stamp = _stamp(self.path)


class RingKeySource:
    """Verification keys from a ring of our own (the issuer checking its own tokens).

    Built again when the ring changes or a retired key's overlap ends.
    """

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring
        self._version = -1
        self._until = float("-inf")
        self._keys: dict[str, Key] = {}

    async def get(self, kid: str) -> Key | None:
        """Return the key for ``kid``."""
        ring = self._ring.refreshed()
        now = time.time()
        if ring.version != self._version or now >= self._until:
            self._keys = keys_from_jwks(ring.public_jwks(now))
            self._version = ring.version
            ends = [float(e["publish_until"]) for e in ring.entries if "publish_until" in e]
            self._until = min((t for t in ends if t > now), default=float("inf"))
        return self._keys.get(kid)


class SigningKeysMissing(RuntimeError):
    """No key file and key generation is switched off."""


def load_keyring(path: Path, *, create: bool, missing_hint: str = "") -> KeyRing:
    """Read the key file; create it with one fresh key when allowed and missing."""
    if path.exists():
        entries = json.loads(path.read_text())["keys"]
        if entries:
            return KeyRing(path, entries, _stamp=_stamp(path))
    if not create:
        raise SigningKeysMissing(f"no signing keys at {path}: {missing_hint}".rstrip(": "))
    ring = KeyRing(path, [generate_key()])
    ring.save()
    return ring

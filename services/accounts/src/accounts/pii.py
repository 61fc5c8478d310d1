"""Personal data at rest: authenticated encryption and blind indexes (PIPL sensitive data).

ID numbers and phones are stored as AES-256-GCM ciphertext (a fresh 96-bit nonce each time,
the column name as associated data so a value cannot be moved to another column) and found by a
keyed hash (HMAC-SHA256, a separate key), so equality lookups and uniqueness work without the
plain value. Keys come from a key file (created on first run in development) named by the
settings; every ciphertext starts with its key id, so keys can be rotated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class PiiKeysMissing(RuntimeError):
    """No PII key file and generation is switched off."""


class PiiDecryptionError(ValueError):
    """A ciphertext failed authentication: altered, or made under another key."""


@dataclass(frozen=True)
class PiiCipher:
    """Encrypts, decrypts and indexes personal data with the configured keys."""

    key_id: str
    encryption_keys: dict[str, bytes]
    index_key: bytes

    def encrypt(self, plain: str, *, field: str) -> bytes:
        """Return ``key id (8 bytes) || nonce || ciphertext+tag``."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.encryption_keys[self.key_id]).encrypt(
            nonce, plain.encode("utf-8"), field.encode()
        )
        return self.key_id.encode().ljust(8, b"\0") + nonce + sealed

    def decrypt(self, blob: bytes, *, field: str) -> str:
        """Open a value made by :meth:`encrypt` for the same ``field``."""
        key_id = blob[:8].rstrip(b"\0").decode()
        key = self.encryption_keys.get(key_id)
        if key is None:
            raise PiiDecryptionError(f"unknown PII key {key_id!r}")
        nonce, sealed = blob[8 : 8 + NONCE_BYTES], blob[8 + NONCE_BYTES :]
        try:
            return AESGCM(key).decrypt(nonce, sealed, field.encode()).decode("utf-8")
        except Exception as exc:  # cryptography raises InvalidTag
            raise PiiDecryptionError("personal data failed authentication") from exc

    def blind_index(self, plain: str, *, field: str) -> str:
        """The keyed hash that finds ``plain`` without revealing it (hex, 64 characters)."""
        message = field.encode() + b"\0" + plain.encode("utf-8")
        return hmac.new(self.index_key, message, hashlib.sha256).hexdigest()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def load_pii_cipher(path: Path, *, create: bool) -> PiiCipher:
    """Read the PII key file, creating it with fresh keys when allowed and missing."""
    if not path.exists():
        if not create:
            raise PiiKeysMissing(f"no PII keys at {path}: set ACCOUNTS_GENERATE_PII_KEYS=true once")
        key_id = secrets.token_hex(4)
        document = {
            "current": key_id,
            "encryption_keys": {key_id: _b64(AESGCM.generate_key(bit_length=256))},
            "index_key": _b64(secrets.token_bytes(32)),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle, indent=1)
    document = json.loads(path.read_text())
    return PiiCipher(
        key_id=document["current"],
        encryption_keys={k: base64.b64decode(v) for k, v in document["encryption_keys"].items()},
        index_key=base64.b64decode(document["index_key"]),
    )

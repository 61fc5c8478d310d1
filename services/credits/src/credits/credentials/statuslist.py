"""W3C Bitstring Status List: the revocation bits of issued credentials, as a credential.

Pure: no I/O. Bit ``i`` of a list is the ``i``-th bit counted from the most significant bit of
the first byte; 1 means revoked. The list is GZIP-compressed and multibase-encoded as
base64url without padding (prefix ``u``). A list holds :data:`LIST_SIZE` entries, the
specification's minimum (16 KiB), so that one credential's bit hides among many.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterable
from datetime import datetime
from typing import Any

LIST_SIZE = 131_072
STATUS_PURPOSE = "revocation"
VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"


class StatusListError(ValueError):
    """An encoded list that cannot be read."""


def encode(revoked: Iterable[int], size: int = LIST_SIZE) -> str:
    """The ``encodedList`` with the bits at ``revoked`` set."""
    bits = bytearray(size // 8)
    for index in revoked:
        if not 0 <= index < size:
            raise StatusListError(f"index {index} outside a list of {size}")
        bits[index // 8] |= 0x80 >> (index % 8)
    packed = gzip.compress(bytes(bits), mtime=0)
    return "u" + base64.urlsafe_b64encode(packed).decode().rstrip("=")


def decode(encoded: str) -> bytes:
    """The raw bitstring of an ``encodedList``."""
    if not encoded.startswith("u"):
        raise StatusListError("encodedList is not multibase base64url ('u' prefix)")
    body = encoded[1:]
    try:
        return gzip.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, OSError, EOFError) as exc:
        raise StatusListError(f"encodedList cannot be decoded: {exc}") from None


def is_set(bitstring: bytes, index: int) -> bool:
    """Whether bit ``index`` is set."""
    if not 0 <= index < len(bitstring) * 8:
        raise StatusListError(f"index {index} outside the list")
    return bool(bitstring[index // 8] & (0x80 >> (index % 8)))


def entry(list_url: str, index: int) -> dict[str, Any]:
    """The ``credentialStatus`` of a credential at ``index`` of the list at ``list_url``."""
    return {
        "id": f"{list_url}#{index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": STATUS_PURPOSE,
        "statusListIndex": str(index),
        "statusListCredential": list_url,
    }


def credential(
    *,
    list_url: str,
    issuer: str,
    revoked: Iterable[int],
    valid_from: datetime,
    valid_until: datetime,
) -> dict[str, Any]:
    """The unsigned BitstringStatusListCredential of one list."""
    return {
        "@context": [VC_CONTEXT],
        "id": list_url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer,
        "validFrom": _iso(valid_from),
        "validUntil": _iso(valid_until),
        "credentialSubject": {
            "id": f"{list_url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": STATUS_PURPOSE,
            "encodedList": encode(revoked),
        },
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")

"""W3C Bitstring Status List: the revocation bits of issued credentials, as a credential.

Pure: no I/O. Bit ``i`` of a list is the ``i``-th bit counted from the most significant bit of
the first byte; 1 means revoked. The list is GZIP-compressed and multibase-encoded as
base64url without padding (prefix ``u``). A list holds :data:`LIST_SIZE` entries, the
specification's minimum (16 KiB), so that one credential's bit hides among many.

Bits are handed out in a secret order (:func:`index_for`), as the specification asks: were the
n-th credential of a list at bit n, anyone could read from the list when each was issued and
which were revoked together.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime
from typing import Any

LIST_SIZE = 131_072
STATUS_PURPOSE = "revocation"
VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"


class StatusListError(ValueError):
    """An encoded list that cannot be read."""


_HALF_BITS = 9  # a Feistel network over 18 bits, walked down to the list's 17
_HALF_MASK = (1 << _HALF_BITS) - 1
_ROUNDS = 4


def _feistel(value: int, key: bytes) -> int:
    left, right = value >> _HALF_BITS, value & _HALF_MASK
    for round_ in range(_ROUNDS):
        mac = hmac.new(key, bytes([round_]) + right.to_bytes(2, "big"), hashlib.sha256).digest()
        left, right = right, left ^ (int.from_bytes(mac[:2], "big") & _HALF_MASK)
    return (left << _HALF_BITS) | right


def index_for(position: int, key: bytes | None) -> int:
    """The bit of the ``position``-th credential of a list whose order is keyed by ``key``.

    A keyed permutation of ``range(LIST_SIZE)`` (a four-round Feistel network, cycle-walked
    from 2**18 down to 2**17): every position gets its own bit and no two share one, without
    a table of what is taken. ``None`` keeps the issue order (lists begun before this).
    """
    if not 0 <= position < LIST_SIZE:
        raise StatusListError(f"position {position} outside a list of {LIST_SIZE}")
    if key is None:
        return position
    index = _feistel(position, key)
    while index >= LIST_SIZE:  # cycle-walking keeps the permutation inside the list
        index = _feistel(index, key)
    return index


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

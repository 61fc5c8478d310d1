"""Check-in codes for session QR images: signed, naming the session, valid for a window.

Pure rules: no I/O. A code is ``base64url(payload).base64url(HMAC-SHA256(payload))`` with the
payload ``{"s": session id, "nbf": unix seconds, "exp": unix seconds, "n": nonce}``. It is
short enough for a QR image and checked without a database read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime


class InvalidCheckInCode(ValueError):
    """The code is forged, expired, not yet valid or for another session; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CheckInCode:
    """What a valid code says."""

    session_id: str
    not_before: datetime
    expires_at: datetime


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(secret: bytes, *, session_id: str, not_before: datetime, expires_at: datetime) -> str:
    """Sign a code for ``session_id`` valid from ``not_before`` until ``expires_at``."""
    payload = json.dumps(
        {
            "s": session_id,
            "nbf": int(not_before.timestamp()),
            "exp": int(expires_at.timestamp()),
            "n": secrets.token_hex(4),
        },
        separators=(",", ":"),
    ).encode()
    mac = hmac.new(secret, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def verify(
    secret: bytes, code: str, *, session_id: str, now: datetime, grace_seconds: int = 0
) -> CheckInCode:
    """Check ``code`` for ``session_id`` at ``now``; raise :class:`InvalidCheckInCode`.

    ``grace_seconds`` keeps an expired code good for that long after its end (check-out: the
    resident who scans on the way out just after the session ended).
    """
    if len(code) > 512 or code.count(".") != 1:
        raise InvalidCheckInCode("malformed")
    encoded_payload, encoded_mac = code.split(".")
    try:
        payload, mac = _unb64(encoded_payload), _unb64(encoded_mac)
    except (binascii.Error, ValueError):
        raise InvalidCheckInCode("malformed") from None
    expected = hmac.new(secret, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise InvalidCheckInCode("forged")
    try:
        claims = json.loads(payload)
        named, nbf, exp = str(claims["s"]), int(claims["nbf"]), int(claims["exp"])
    except (ValueError, KeyError, TypeError):
        raise InvalidCheckInCode("malformed") from None
    if named != session_id:
        raise InvalidCheckInCode("other session")
    moment = int(now.timestamp())
    if moment < nbf:
        raise InvalidCheckInCode("not yet valid")
    if moment > exp + max(0, grace_seconds):
        raise InvalidCheckInCode("expired")
    return CheckInCode(
        session_id=named,
        not_before=datetime.fromtimestamp(nbf, UTC),
        expires_at=datetime.fromtimestamp(exp, UTC),
    )


def bounded_minutes(
    *, session_start: datetime, session_end: datetime, checked_in: datetime, checked_out: datetime
) -> int:
    """Whole minutes attended: the overlap of presence and the session, never more."""
    start = max(session_start, checked_in)
    end = min(session_end, checked_out)
    return max(0, int((end - start).total_seconds() // 60))

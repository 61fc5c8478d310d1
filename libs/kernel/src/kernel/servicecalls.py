"""Calls one service makes to another on its own behalf, signed with a key the two share.

Some internal routes must answer only another service, not anyone inside the network who holds
a staff token: the accounts service's learner-group lookup answers the credits service's
statistics report, and group membership is personal data. The caller still sends the staff
member's token (it decides which unit the answer is for, and who is on the audit trail); this
adds proof that the request was made by the service holding the key.

The signature is HMAC-SHA256 over the time, the method, the path and a digest of the body,
sent as ``X-Muye-Service-Signature: t=<unix seconds>,v1=<hex>``. A signature older or newer
than :data:`TOLERANCE_SECONDS` is refused, so a captured request cannot be replayed later; the
body digest ties the signature to the very ids asked for. Pure; the key is kept by
:mod:`kernel.keyfiles`.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "x-muye-service-signature"
TOLERANCE_SECONDS = 300


def _mac(key: bytes, moment: int, method: str, path: str, body: bytes) -> str:
    message = "\n".join(
        (str(moment), method.upper(), path, hashlib.sha256(body).hexdigest())
    ).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign(key: bytes, method: str, path: str, body: bytes, *, now: float | None = None) -> str:
    """The header value that vouches for this request."""
    moment = int(time.time() if now is None else now)
    return f"t={moment},v1={_mac(key, moment, method, path, body)}"


def verify(
    key: bytes,
    header: str | None,
    method: str,
    path: str,
    body: bytes,
    *,
    now: float | None = None,
) -> bool:
    """Whether ``header`` signs this very request, made within the tolerance of ``now``."""
    if not header:
        return False
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    moment, given = fields.get("t", ""), fields.get("v1", "")
    if not moment.isdigit() or not given:
        return False
    current = time.time() if now is None else now
    if abs(current - int(moment)) > TOLERANCE_SECONDS:
        return False
    return hmac.compare_digest(given, _mac(key, int(moment), method, path, body))

"""VC-JWT as Open Badges 3.0 §8.2 "JSON Web Token Proof Format" limits it: sign and verify.

Pure: no I/O (keys and the status lookup are handed in). The JWT payload is the credential
itself with the registered claims ``iss`` (issuer.id), ``jti`` (id), ``sub``
(credentialSubject.id), ``nbf`` (validFrom) and ``exp`` (validUntil, when it has one); the JOSE
header is exactly ``alg`` (RS256, the one algorithm every OB 3.0 verifier supports), ``kid``
(a URI: the published key set's address, the key's thumbprint as fragment) and ``typ: JWT``.
Any other header (``jwk``, ``jku``, ``x5u``...) is refused, never followed.

These keys and these rules are not the access tokens' (``kernel.tokens``): a credential key is
published in its own key set, and ``typ: at+jwt`` is refused here as ``JWT`` is refused there,
so neither can ever pass for the other.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jose import jwk, jws
from jose.backends.base import Key
from jose.exceptions import JOSEError

ALGORITHM = "RS256"
JOSE_TYP = "JWT"
ALLOWED_HEADERS = frozenset({"alg", "kid", "typ"})
MAX_BYTES = 200_000  # a CLR of a long learning life, with room

VALID = "valid"
REVOKED = "revoked"
EXPIRED = "expired"
NOT_YET_VALID = "not_yet_valid"
TAMPERED = "tampered"
WRONG_ISSUER = "wrong_issuer"
MALFORMED = "malformed"
STATUS_UNKNOWN = "status_unknown"

# whether the credential at (list URL, index) is revoked; None when that cannot be told
StatusLookup = Callable[[str, int], bool | None]


@dataclass(frozen=True)
class Verdict:
    """What verification found: ``status`` is one of the constants above."""

    status: str
    reason: str
    credential: Mapping[str, Any] | None = None
    header: Mapping[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        """Whether the credential is valid now."""
        return self.status == VALID


def public_keys(jwks: Mapping[str, Any]) -> dict[str, Key]:
    """RS256 verification keys of a JWKS by ``kid``; private members are never accepted."""
    keys: dict[str, Key] = {}
    for entry in jwks.get("keys", []):
        kid = entry.get("kid")
        if not kid or entry.get("kty") != "RSA" or entry.get("alg", ALGORITHM) != ALGORITHM:
            continue
        if "d" in entry:
            continue
        keys[str(kid)] = jwk.construct(dict(entry), algorithm=ALGORITHM)
    return keys


def key_id(kid_uri: str) -> str:
    """The key set entry a header ``kid`` names: its fragment, or the whole value."""
    return kid_uri.rsplit("#", 1)[-1]


def _seconds(value: Any) -> int:
    if not isinstance(value, str):
        raise ValueError("not a dateTime")
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


def issuer_id(credential: Mapping[str, Any]) -> str | None:
    """``issuer.id`` (or ``issuer`` when it is a plain URI)."""
    issuer = credential.get("issuer")
    if isinstance(issuer, str):
        return issuer
    if isinstance(issuer, Mapping) and isinstance(issuer.get("id"), str):
        return str(issuer["id"])
    return None


def subject_id(credential: Mapping[str, Any]) -> str | None:
    """``credentialSubject.id``."""
    subject = credential.get("credentialSubject")
    if isinstance(subject, Mapping) and isinstance(subject.get("id"), str):
        return str(subject["id"])
    return None


def claims_for(credential: Mapping[str, Any]) -> dict[str, Any]:
    """The JWT payload of ``credential``: the credential and its registered claims."""
    claims = dict(credential)
    claims["iss"] = issuer_id(credential)
    claims["jti"] = credential["id"]
    claims["sub"] = subject_id(credential)
    claims["nbf"] = _seconds(credential["validFrom"])
    if "validUntil" in credential:
        claims["exp"] = _seconds(credential["validUntil"])
    return claims


def sign(credential: Mapping[str, Any], *, private_jwk: Mapping[str, Any], kid_uri: str) -> str:
    """The Compact JWS of ``credential`` signed with ``private_jwk`` (RS256)."""
    key = jwk.construct(dict(private_jwk), algorithm=ALGORITHM)
    payload = json.dumps(claims_for(credential), ensure_ascii=False, separators=(",", ":"))
    signed = jws.sign(
        payload.encode(),
        key,
        headers={"kid": kid_uri, "typ": JOSE_TYP},
        algorithm=ALGORITHM,
    )
    return signed if isinstance(signed, str) else signed.decode()


def _b64json(segment: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except RecursionError:  # nested deeper than the parser goes: not a JOSE part
        raise ValueError("JSON nested too deeply") from None


def _status_entry(credential: Mapping[str, Any]) -> tuple[str, int] | None | str:
    """(list URL, index); None when there is no status; a reason string when it is unreadable."""
    status = credential.get("credentialStatus")
    if status is None:
        return None
    if not isinstance(status, Mapping) or status.get("type") != "BitstringStatusListEntry":
        return "credentialStatus is not a BitstringStatusListEntry"
    if status.get("statusPurpose") != "revocation":
        return "credentialStatus has an unknown purpose"
    url, index = status.get("statusListCredential"), status.get("statusListIndex")
    if not isinstance(url, str) or not isinstance(index, str) or not index.isdigit():
        return "credentialStatus lacks its list or index"
    return url, int(index)


def verify(
    token: str,
    *,
    keys: Mapping[str, Key],
    issuer: str,
    now: datetime | None = None,
    status: StatusLookup | None = None,
    leeway_seconds: int = 0,
) -> Verdict:
    """Verify a VC-JWT issued by ``issuer`` against ``keys``; never raises.

    Checks, in order: shape and header, the signing key (unknown: wrong issuer), the signature
    (bad: tampered), the claims against the credential they wrap (mismatch: tampered), the
    issuer, revocation through ``status``, then the validity period.
    """
    moment = int((now or datetime.now(UTC)).timestamp())
    token = token.strip()
    if len(token) > MAX_BYTES or token.count(".") != 2:
        return Verdict(MALFORMED, "not a compact JWS")
    head, payload, _ = token.split(".")
    try:
        header = _b64json(head)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return Verdict(MALFORMED, "unreadable JOSE header")
    if not isinstance(header, dict):
        return Verdict(MALFORMED, "unreadable JOSE header")
    if header.get("typ", JOSE_TYP) != JOSE_TYP:
        return Verdict(MALFORMED, f"typ {header.get('typ')!r} is not a credential")
    if set(header) - ALLOWED_HEADERS:
        return Verdict(TAMPERED, "JOSE header carries fields OB 3.0 does not allow", header=header)
    if header.get("alg") != ALGORITHM:
        return Verdict(TAMPERED, f"algorithm {header.get('alg')!r} is not RS256", header=header)
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        return Verdict(MALFORMED, "no key id", header=header)
    key = keys.get(key_id(kid))
    if key is None:
        return Verdict(WRONG_ISSUER, "signed with a key the issuer never published", header=header)
    try:
        jws.verify(token, key, algorithms=[ALGORITHM])
    except JOSEError:
        return Verdict(TAMPERED, "the signature does not match the content", header=header)
    try:
        claims = _b64json(payload)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return Verdict(MALFORMED, "unreadable payload", header=header)
    if not isinstance(claims, dict):
        return Verdict(MALFORMED, "unreadable payload", header=header)
    # VC Data Model 1.1 issuers put the credential in a `vc` claim (OB 3.0 §8.2.6, note)
    credential = claims["vc"] if isinstance(claims.get("vc"), dict) else claims
    try:
        expected_nbf = _seconds(credential.get("validFrom"))
        expected_exp = _seconds(credential["validUntil"]) if "validUntil" in credential else None
    except ValueError:
        return Verdict(MALFORMED, "validFrom or validUntil is not a dateTime", credential, header)
    mismatched = [
        name
        for name, claim, value in (
            ("iss", claims.get("iss"), issuer_id(credential)),
            ("jti", claims.get("jti"), credential.get("id")),
            ("sub", claims.get("sub"), subject_id(credential)),
            ("nbf", claims.get("nbf"), expected_nbf),
            ("exp", claims.get("exp"), expected_exp),
        )
        if claim != value or (name != "exp" and claim is None)
    ]
    if mismatched:
        return Verdict(
            TAMPERED, f"claims disagree with the credential: {', '.join(mismatched)}", credential
        )
    if claims.get("iss") != issuer:
        return Verdict(WRONG_ISSUER, f"issued by {claims.get('iss')!r}", credential, header)
    entry = _status_entry(credential)
    if isinstance(entry, str):
        return Verdict(MALFORMED, entry, credential, header)
    if entry is not None:
        revoked = status(*entry) if status is not None else None
        if revoked is None:
            return Verdict(STATUS_UNKNOWN, "the revocation status cannot be read", credential)
        if revoked:
            return Verdict(REVOKED, "the issuer has revoked this credential", credential, header)
    if int(claims["nbf"]) > moment + leeway_seconds:
        return Verdict(NOT_YET_VALID, "not valid yet", credential, header)
    if claims.get("exp") is not None and int(claims["exp"]) < moment - leeway_seconds:
        return Verdict(EXPIRED, "the validity period has ended", credential, header)
    return Verdict(VALID, "signature, issuer, status and validity period check out", credential)

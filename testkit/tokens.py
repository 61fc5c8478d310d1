"""Forged, broken and misdirected tokens: the list every verifier must refuse with a 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk, jwt

from kernel.tokens import MAX_TOKEN_BYTES, TokenSigner

PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi")


def private_jwk(kid: str) -> dict[str, Any]:
    """A fresh RSA-2048 private JWK with ``kid``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    entry = {
        k: v.decode() if isinstance(v, bytes) else v
        for k, v in jwk.RSAKey(pem, "RS256").to_dict().items()
    }
    entry.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return entry


def public_jwk(entry: dict[str, Any]) -> dict[str, Any]:
    """The public half of a private JWK."""
    return {k: v for k, v in entry.items() if k not in PRIVATE_MEMBERS}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{signature}"


def forged_tokens(key: dict[str, Any], *, issuer: str, audience: str) -> dict[str, str]:
    """Tokens that look like ``key``'s but must each be refused, by name of what is wrong."""
    kid = key["kid"]
    now = int(time.time())

    def signer(entry: dict[str, Any] = key, iss: str = issuer, aud: str = audience) -> TokenSigner:
        return TokenSigner(entry, issuer=iss, audience=aud)

    def claims(**overrides: Any) -> dict[str, Any]:
        base = {
            "iss": issuer,
            "aud": audience,
            "sub": "s-1",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": "j",
            "kind": "staff",
            "roles": ["district_admin"],
        }
        base.update(overrides)
        return base

    good = signer().sign(subject="s-1", kind="staff", lifetime_seconds=300, roles=["auditor"])
    head, payload, signature = good.split(".")
    raised = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raised["roles"] = ["district_admin"]
    public_pem = jwk.construct(public_jwk(key), "RS256").to_pem()
    hs_input = _unsigned({"alg": "HS256", "typ": "at+jwt", "kid": kid}, claims())[:-1]
    hs_mac = hmac.new(public_pem, hs_input.encode(), hashlib.sha256).digest()
    foreign = private_jwk(kid)  # a forger who guessed our kid
    no_aud = claims()
    del no_aud["aud"]
    no_iss = claims()
    del no_iss["iss"]
    return {
        "alg none": _unsigned({"alg": "none", "typ": "at+jwt", "kid": kid}, claims()),
        "alg NoNe": _unsigned({"alg": "NoNe", "typ": "at+jwt", "kid": kid}, claims()),
        "missing alg": _unsigned({"typ": "at+jwt", "kid": kid}, claims(), signature),
        "stripped signature": f"{head}.{payload}.",
        "foreign key": signer(foreign).sign(subject="s-1", kind="staff", lifetime_seconds=300),
        "hs256 with the public key": f"{hs_input}.{_b64(hs_mac)}",
        "expired beyond leeway": signer().sign(
            subject="s", kind="staff", lifetime_seconds=60, now=now - 400
        ),
        "not yet valid": signer().sign(
            subject="s", kind="staff", lifetime_seconds=600, now=now + 300
        ),
        "wrong audience": signer(aud="someone-else").sign(
            subject="s", kind="staff", lifetime_seconds=60
        ),
        "wrong issuer": signer(iss="https://evil.test").sign(
            subject="s", kind="staff", lifetime_seconds=60
        ),
        "missing audience": jwt.encode(
            no_aud, key, algorithm="RS256", headers={"kid": kid, "typ": "at+jwt"}
        ),
        "missing issuer": jwt.encode(
            no_iss, key, algorithm="RS256", headers={"kid": kid, "typ": "at+jwt"}
        ),
        "tampered payload": f"{head}.{_b64(json.dumps(raised).encode())}.{signature}",
        "over 8 KB": signer().sign(
            subject="s", kind="staff", lifetime_seconds=60, extra={"pad": "x" * MAX_TOKEN_BYTES}
        ),
        "garbage": "not-a-token",
        "three parts of garbage": "a.b.c",
        "unknown kid": signer({**key, "kid": "other"}).sign(
            subject="s", kind="staff", lifetime_seconds=60
        ),
        "wrong typ": jwt.encode(
            claims(), key, algorithm="RS256", headers={"kid": kid, "typ": "JWT"}
        ),
        "jku pointing elsewhere": jwt.encode(
            claims(),
            foreign,
            algorithm="RS256",
            headers={"kid": "evil", "typ": "at+jwt", "jku": "http://127.0.0.1:9/jwks.json"},
        ),
        "embedded jwk header": jwt.encode(
            claims(),
            foreign,
            algorithm="RS256",
            headers={"kid": kid, "typ": "at+jwt", "jwk": public_jwk(foreign)},
        ),
    }

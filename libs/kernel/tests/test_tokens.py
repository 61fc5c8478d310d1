"""The token verifier refuses every malformed, forged or misdirected token with a 401."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk, jwt

from kernel.tokens import (
    MAX_TOKEN_BYTES,
    InvalidToken,
    JwksKeySource,
    KeysUnavailable,
    StaticKeySource,
    TokenSigner,
    TokenVerifier,
    keys_from_jwks,
)

ISSUER = "https://issuer.test"
AUDIENCE = "muye-test"


def _private_jwk(kid: str) -> dict[str, Any]:
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


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}


OURS = _private_jwk("ours")
FOREIGN = _private_jwk("ours")  # same kid, different key: a forger guessing our kid
JWKS = {"keys": [_public(OURS)]}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _signer(
    entry: dict[str, Any] = OURS, issuer: str = ISSUER, audience: str = AUDIENCE
) -> TokenSigner:
    return TokenSigner(entry, issuer=issuer, audience=audience)


def _good(**overrides: Any) -> str:
    return _signer().sign(
        subject="s-1", kind="staff", lifetime_seconds=300, roles=["auditor"], **overrides
    )


@pytest.fixture
def verifier() -> TokenVerifier:
    return TokenVerifier(
        StaticKeySource(keys_from_jwks(JWKS)), issuer=ISSUER, audience=AUDIENCE, leeway_seconds=30
    )


async def test_good_token_names_its_principal(verifier: TokenVerifier) -> None:
    principal = await verifier.verify(_good(unit="410711", scopes=["profile"]))
    assert principal.subject == "s-1"
    assert principal.kind == "staff"
    assert principal.roles == ("auditor",)
    assert principal.unit == "410711"
    assert principal.has_scope("profile")


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{signature}"


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "s-1",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": "j",
        "kind": "staff",
    }
    claims.update(overrides)
    return claims


def _hs256(claims: dict[str, Any], secret: bytes) -> str:
    # the classic key-confusion forgery, built by hand: jose itself refuses to make it
    signing_input = _unsigned({"alg": "HS256", "typ": "at+jwt", "kid": "ours"}, claims)[:-1]
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _forged_cases() -> dict[str, str]:
    good = _good()
    head, payload, signature = good.split(".")
    tampered_claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    tampered_claims["roles"] = ["district_admin"]
    public_pem = jwk.construct(_public(OURS), "RS256").to_pem()
    now = int(time.time())
    return {
        "alg none": _unsigned({"alg": "none", "typ": "at+jwt", "kid": "ours"}, _claims()),
        "alg NoNe": _unsigned({"alg": "NoNe", "typ": "at+jwt", "kid": "ours"}, _claims()),
        "missing alg": _unsigned({"typ": "at+jwt", "kid": "ours"}, _claims(), signature),
        "stripped signature": f"{head}.{payload}.",
        "foreign key": _signer(FOREIGN).sign(subject="s-1", kind="staff", lifetime_seconds=300),
        "hs256 with public key": _hs256(_claims(), public_pem),
        "expired beyond leeway": _signer().sign(
            subject="s", kind="staff", lifetime_seconds=60, now=now - 200
        ),
        "not yet valid": _signer().sign(
            subject="s", kind="staff", lifetime_seconds=600, now=now + 120
        ),
        "wrong audience": _signer(audience="someone-else").sign(
            subject="s", kind="staff", lifetime_seconds=60
        ),
        "wrong issuer": _signer(issuer="https://evil.test").sign(
            subject="s", kind="staff", lifetime_seconds=60
        ),
        "tampered payload": f"{head}.{_b64(json.dumps(tampered_claims).encode())}.{signature}",
        "over 8 KB": _good(extra={"pad": "x" * MAX_TOKEN_BYTES}),
        "garbage": "not-a-token",
        "three dots of garbage": "a.b.c",
        "unknown kid": _signer({**OURS, "kid": "other"}).sign(
            subject="s", kind="staff", lifetime_seconds=60
        ),
        "wrong typ": jwt.encode(
            _claims(), OURS, algorithm="RS256", headers={"kid": "ours", "typ": "JWT"}
        ),
        "jku pointing elsewhere": jwt.encode(
            _claims(),
            FOREIGN,
            algorithm="RS256",
            headers={"kid": "evil", "typ": "at+jwt", "jku": "http://evil.test/jwks"},
        ),
    }


@pytest.mark.parametrize("case", sorted(_forged_cases()))
async def test_forged_or_misdirected_token_is_invalid(verifier: TokenVerifier, case: str) -> None:
    token = _forged_cases()[case]
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(token)
    assert caught.value.status == 401


async def test_missing_audience_claim_is_invalid(verifier: TokenVerifier) -> None:
    claims = _claims()
    del claims["aud"]
    token = jwt.encode(claims, OURS, algorithm="RS256", headers={"kid": "ours", "typ": "at+jwt"})
    with pytest.raises(InvalidToken):
        await verifier.verify(token)


async def test_expired_within_leeway_still_verifies(verifier: TokenVerifier) -> None:
    token = _signer().sign(
        subject="s", kind="staff", lifetime_seconds=60, now=int(time.time()) - 75
    )
    assert (await verifier.verify(token)).subject == "s"


def _jwks_transport(
    counter: list[int], jwks: dict[str, Any], fail: bool = False
) -> httpx.MockTransport:
    async def handler(_request: httpx.Request) -> httpx.Response:
        counter.append(1)
        await asyncio.sleep(0.01)
        if fail:
            return httpx.Response(503)
        return httpx.Response(200, json=jwks)

    return httpx.MockTransport(handler)


async def test_unknown_kid_refreshes_once_for_many_concurrent_requests() -> None:
    calls: list[int] = []
    async with httpx.AsyncClient(transport=_jwks_transport(calls, JWKS)) as client:
        source = JwksKeySource(client, "http://issuer.test/jwks", min_refresh_seconds=0.2)
        verifier = TokenVerifier(source, issuer=ISSUER, audience=AUDIENCE)
        assert (await verifier.verify(_good())).subject == "s-1"
        assert len(calls) == 1
        await asyncio.sleep(0.25)  # the initial fetch counts against the refresh interval
        stranger = _signer({**OURS, "kid": "rotated"}).sign(
            subject="s", kind="staff", lifetime_seconds=60
        )
        results = await asyncio.gather(
            *(verifier.verify(stranger) for _ in range(20)), return_exceptions=True
        )
        assert all(isinstance(r, InvalidToken) for r in results)
        assert len(calls) == 2  # one refresh shared by all twenty
        again = await asyncio.gather(
            *(verifier.verify(stranger) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, InvalidToken) for r in again)
        assert len(calls) == 2  # and none more within the interval


async def test_jwks_unavailable_fails_closed() -> None:
    calls: list[int] = []
    async with httpx.AsyncClient(transport=_jwks_transport(calls, JWKS, fail=True)) as client:
        source = JwksKeySource(client, "http://issuer.test/jwks", max_stale_seconds=0)
        verifier = TokenVerifier(source, issuer=ISSUER, audience=AUDIENCE)
        with pytest.raises(KeysUnavailable):
            await verifier.verify(_good())


def test_private_keys_are_never_accepted_for_verification() -> None:
    assert keys_from_jwks({"keys": [OURS]}) == {}
    assert set(keys_from_jwks(JWKS)) == {"ours"}

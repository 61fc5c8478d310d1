"""The token verifier refuses every malformed, forged or misdirected token with a 401."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from kernel.tokens import (
    InvalidToken,
    JwksKeySource,
    KeysUnavailable,
    StaticKeySource,
    TokenSigner,
    TokenVerifier,
    keys_from_jwks,
)
from testkit.tokens import forged_tokens, private_jwk, public_jwk

ISSUER = "https://issuer.test"
AUDIENCE = "muye-test"


OURS = private_jwk("ours")
JWKS = {"keys": [public_jwk(OURS)]}


def _signer(entry: dict[str, Any] = OURS) -> TokenSigner:
    return TokenSigner(entry, issuer=ISSUER, audience=AUDIENCE)


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


FORGED = forged_tokens(OURS, issuer=ISSUER, audience=AUDIENCE)


@pytest.mark.parametrize("case", sorted(FORGED))
async def test_forged_or_misdirected_token_is_invalid(verifier: TokenVerifier, case: str) -> None:
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(FORGED[case])
    assert caught.value.status == 401


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
    now = [1000.0]  # the source's clock, moved by the test (a loaded machine cannot stretch it)
    async with httpx.AsyncClient(transport=_jwks_transport(calls, JWKS)) as client:
        source = JwksKeySource(
            client, "http://issuer.test/jwks", min_refresh_seconds=0.2, clock=lambda: now[0]
        )
        verifier = TokenVerifier(source, issuer=ISSUER, audience=AUDIENCE)
        assert (await verifier.verify(_good())).subject == "s-1"
        assert len(calls) == 1
        # an unknown kid right after the regular fetch is fetched at once (a key rotated just
        # then), not once the refresh interval has passed
        stranger = _signer({**OURS, "kid": "rotated"}).sign(
            subject="s", kind="staff", lifetime_seconds=60
        )
        results = await asyncio.gather(
            *(verifier.verify(stranger) for _ in range(20)), return_exceptions=True
        )
        assert all(isinstance(r, InvalidToken) for r in results)
        assert len(calls) == 2  # one refresh shared by all twenty
        now[0] += 0.1
        again = await asyncio.gather(
            *(verifier.verify(stranger) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, InvalidToken) for r in again)
        assert len(calls) == 2  # and none more within the interval
        now[0] += 0.2
        assert isinstance(
            (await asyncio.gather(verifier.verify(stranger), return_exceptions=True))[0],
            InvalidToken,
        )
        assert len(calls) == 3  # once the interval has passed, an unknown kid refreshes again


async def test_after_a_failed_fetch_an_unknown_kid_waits_the_interval() -> None:
    calls: list[int] = []
    now = [1000.0]
    failing = [False]

    async def handler(_request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503) if failing[0] else httpx.Response(200, json=JWKS)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        source = JwksKeySource(
            client, "http://issuer.test/jwks", min_refresh_seconds=0.2, clock=lambda: now[0]
        )
        assert await source.get(OURS["kid"]) is not None
        failing[0] = True
        assert await source.get("rotated") is None
        assert len(calls) == 2  # the unknown kid's fetch, which failed
        now[0] += 0.1
        assert await source.get("other") is None
        assert len(calls) == 2  # a failing issuer is not asked again within the interval
        now[0] += 0.15
        assert await source.get("other") is None
        assert len(calls) == 3


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


class _Keys:
    """A key source whose keys a test changes under the verifier."""

    def __init__(self, keys: dict[str, Any]) -> None:
        self.keys = dict(keys)

    async def get(self, kid: str) -> Any:
        return self.keys.get(kid)


def _remembering(keys: Any, **options: Any) -> TokenVerifier:
    return TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, leeway_seconds=30, **options)


async def test_a_remembered_token_is_not_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import kernel.tokens as tokens

    decoded: list[str] = []
    real = tokens.jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(tokens.jwt, "decode", counting)
    verifier = _remembering(StaticKeySource(keys_from_jwks(JWKS)))
    token = _good()
    first, second = await verifier.verify(token), await verifier.verify(token)
    assert first == second and first.subject == "s-1"
    assert decoded == [token]
    # any other text is checked in full, one changed character of the signature included
    altered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(InvalidToken):
        await verifier.verify(altered)
    assert decoded == [token, altered]


async def test_a_remembered_token_still_expires() -> None:
    verifier = _remembering(StaticKeySource(keys_from_jwks(JWKS)))
    # expired 29 s ago: inside the 30 s leeway for about one more second
    token = _signer().sign(
        subject="s", kind="staff", lifetime_seconds=60, now=int(time.time()) - 89
    )
    assert (await verifier.verify(token)).subject == "s"
    await asyncio.sleep(2.1)
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(token)
    assert caught.value.extensions["reason"] == "token expired"


async def test_a_remembered_token_is_refused_once_its_key_is_withdrawn() -> None:
    keys = _Keys(keys_from_jwks(JWKS))
    verifier = _remembering(keys)
    token = _good()
    assert (await verifier.verify(token)).subject == "s-1"
    keys.keys.clear()  # the issuer withdrew the key (a compromised key, say)
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(token)
    assert caught.value.extensions["reason"] == "unknown signing key"


async def test_a_key_replaced_under_the_same_kid_checks_the_token_again() -> None:
    keys = _Keys(keys_from_jwks(JWKS))
    verifier = _remembering(keys)
    token = _good()
    assert (await verifier.verify(token)).subject == "s-1"
    other = private_jwk(OURS["kid"])  # another key pair under the same kid
    keys.keys = keys_from_jwks({"keys": [public_jwk(other)]})
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(token)
    assert caught.value.extensions["reason"] == "bad signature"


async def test_forged_tokens_are_refused_after_a_good_one_was_remembered() -> None:
    verifier = _remembering(StaticKeySource(keys_from_jwks(JWKS)))
    assert (await verifier.verify(_good())).subject == "s-1"
    for case, forged in sorted(FORGED.items()):
        with pytest.raises(InvalidToken):
            await verifier.verify(forged)
        assert (await verifier.verify(_good())).subject == "s-1", case


async def test_remembered_tokens_are_bounded_and_can_be_switched_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kernel.tokens as tokens

    calls: list[int] = []
    real = tokens.jwt.decode
    monkeypatch.setattr(tokens.jwt, "decode", lambda *a, **k: calls.append(1) or real(*a, **k))
    bounded = _remembering(StaticKeySource(keys_from_jwks(JWKS)), remembered=2)
    first, second, third = (_good(scopes=[f"s{n}"]) for n in range(3))
    for token in (first, second, third):
        await bounded.verify(token)
    await bounded.verify(third)  # still remembered
    await bounded.verify(first)  # the oldest was let go: checked again
    assert len(calls) == 4
    off = _remembering(StaticKeySource(keys_from_jwks(JWKS)), remembered=0)
    await off.verify(first)
    await off.verify(first)
    assert len(calls) == 6

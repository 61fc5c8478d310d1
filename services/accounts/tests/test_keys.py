"""Signing-key rotation: the old key stays published through the overlap, then goes."""

from __future__ import annotations

from pathlib import Path

from kernel.keyring import load_keyring
from kernel.tokens import StaticKeySource, TokenSigner, TokenVerifier, keys_from_jwks

ISS, AUD = "https://issuer.test", "aud"


async def _verifies(jwks: dict, token: str) -> bool:
    verifier = TokenVerifier(StaticKeySource(keys_from_jwks(jwks)), issuer=ISS, audience=AUD)
    try:
        await verifier.verify(token)
    except Exception:  # noqa: BLE001 - any refusal counts as "does not verify"
        return False
    return True


async def test_tokens_of_both_keys_verify_during_overlap_and_old_ones_fail_after(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys.json"
    ring = load_keyring(path, create=True)
    now = 1_800_000_000
    old_token = TokenSigner(ring.signing_key, issuer=ISS, audience=AUD).sign(
        subject="s", kind="staff", lifetime_seconds=900, now=now
    )
    ring.rotate(overlap_seconds=930, now=now + 10)
    reloaded = load_keyring(path, create=False)
    new_token = TokenSigner(reloaded.signing_key, issuer=ISS, audience=AUD).sign(
        subject="s", kind="staff", lifetime_seconds=900
    )
    during = reloaded.public_jwks(now=now + 500)
    assert len(during["keys"]) == 2
    assert await _verifies(during, new_token)
    after = reloaded.public_jwks(now=now + 10 + 931)
    assert [k["kid"] for k in after["keys"]] == [reloaded.signing_key["kid"]]
    assert await _verifies(after, new_token)
    assert not await _verifies(after, old_token)


def test_key_file_is_owner_only_and_holds_no_surprises(tmp_path: Path) -> None:
    path = tmp_path / "k" / "keys.json"
    ring = load_keyring(path, create=True)
    assert path.stat().st_mode & 0o077 == 0
    public = ring.public_jwks()["keys"][0]
    assert {"d", "p", "q"}.isdisjoint(public)
    assert public["kid"] == ring.signing_key["kid"]
    assert load_keyring(path, create=False).signing_key == ring.signing_key

"""Signing-key rotation: the old key stays published through the overlap, then goes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from jose import jwt

from accounts.cli import DEMO_STAFF
from accounts.cli import main as cli_main
from accounts.config import Settings
from accounts.main import create_app
from kernel.keyring import KeyRotationPending, load_keyring
from kernel.tokens import StaticKeySource, TokenSigner, TokenVerifier, keys_from_jwks
from testkit.apps import rolled_back_client, running

from .conftest import sign_in

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


async def test_a_rotated_key_is_published_through_its_lead_before_it_signs(tmp_path: Path) -> None:
    ring = load_keyring(tmp_path / "keys.json", create=True)
    now = 1_800_000_000
    old = ring.signing_key_at(now)
    new = ring.rotate(overlap_seconds=930, lead_seconds=600, now=now)

    # during the lead: the old key signs, both are published, so caches fetch the new one
    assert ring.signing_key_at(now + 599)["kid"] == old["kid"]
    assert {k["kid"] for k in ring.public_jwks(now=now + 1)["keys"]} == {old["kid"], new["kid"]}
    assert "signs_from" not in ring.public_jwks(now=now + 1)["keys"][-1]
    # from the lead's end the new key signs; the old one stays for tokens it signed until then
    assert ring.signing_key_at(now + 600)["kid"] == new["kid"]
    assert {k["kid"] for k in ring.public_jwks(now=now + 600 + 929)["keys"]} == {
        old["kid"],
        new["kid"],
    }
    assert [k["kid"] for k in ring.public_jwks(now=now + 600 + 930)["keys"]] == [new["kid"]]
    # the file says the same to whoever reads it next
    reloaded = load_keyring(tmp_path / "keys.json", create=False)
    assert reloaded.signing_key_at(now + 599)["kid"] == old["kid"]
    assert reloaded.signing_key_at(now + 600)["kid"] == new["kid"]


def test_a_second_rotation_during_the_lead_is_refused(tmp_path: Path) -> None:
    ring = load_keyring(tmp_path / "keys.json", create=True)
    now = 1_800_000_000
    pending = ring.rotate(overlap_seconds=930, lead_seconds=600, now=now)
    with pytest.raises(KeyRotationPending, match=pending["kid"]):
        ring.rotate(overlap_seconds=930, lead_seconds=600, now=now + 300)
    assert [e["kid"] for e in load_keyring(tmp_path / "keys.json", create=False).entries][
        -1
    ] == pending["kid"]
    after = ring.rotate(overlap_seconds=930, lead_seconds=600, now=now + 601)
    assert ring.signing_key_at(now + 601 + 599)["kid"] == pending["kid"]
    assert ring.signing_key_at(now + 601 + 600)["kid"] == after["kid"]


async def test_a_running_service_signs_and_verifies_with_a_key_rotated_in_its_file(
    accounts_db: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=accounts_db, data_dir=tmp_path, log_level="WARNING")
    async with running(create_app(settings)) as app, rolled_back_client(app) as (client, _):
        before = await sign_in(client, DEMO_STAFF["username"], DEMO_STAFF["password"])
        old_kid = jwt.get_unverified_header(before["access_token"])["kid"]

        # another process (accounts-admin rotate-keys) rotates the file, with no lead
        new = load_keyring(settings.keys_file, create=False).rotate(overlap_seconds=930)
        await asyncio.sleep(1.1)  # the ring looks at its file once a second at most

        published = (await client.get("/.well-known/jwks.json")).json()
        assert {k["kid"] for k in published["keys"]} == {old_kid, new["kid"]}
        after = await sign_in(client, DEMO_STAFF["username"], DEMO_STAFF["password"])
        assert jwt.get_unverified_header(after["access_token"])["kid"] == new["kid"]
        for token in (before["access_token"], after["access_token"]):
            me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200, me.text


def test_rotate_keys_command_publishes_ahead_and_refuses_a_second_rotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ACCOUNTS_DATA_DIR", str(tmp_path))
    assert cli_main(["init-keys"]) == 0
    signing = load_keyring(tmp_path / "keys" / "accounts-signing.jwks.json", create=False)
    first = signing.signing_key["kid"]

    assert cli_main(["rotate-keys"]) == 0
    said = capsys.readouterr().out
    ring = load_keyring(tmp_path / "keys" / "accounts-signing.jwks.json", create=False)
    assert ring.signing_key["kid"] == first  # the default lead: not signing yet
    pending = ring.entries[-1]
    assert pending["signs_from"] - pending["created_at"] == 600
    assert pending["kid"] in said and "signs from" in said

    assert cli_main(["rotate-keys"]) == 1
    assert "rotate again after that" in capsys.readouterr().err
    assert cli_main(["rotate-keys", "--lead-seconds", "-5"]) == 2

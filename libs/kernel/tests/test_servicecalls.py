"""Signed service-to-service calls: what verifies and every way a signature is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel import servicecalls
from kernel.keyfiles import KeyFileMissing, load_hex_key
from kernel.servicecalls import sign, verify

KEY = bytes(range(32))
BODY = b'{"unit": "410711", "learners": ["2b7f0d0e-8a43-4c6f-9a53-0d6a1b7c9e11"]}'
PATH = "/api/v1/learner-groups/lookup"
NOW = 1_790_000_000.0


def test_a_signature_verifies_for_its_own_request() -> None:
    header = sign(KEY, "POST", PATH, BODY, now=NOW)
    assert header.startswith(f"t={int(NOW)},v1=")
    assert verify(KEY, header, "post", PATH, BODY, now=NOW + 299)


@pytest.mark.parametrize(
    ("key", "method", "path", "body", "now"),
    [
        (bytes(32), "POST", PATH, BODY, NOW),  # another key
        (KEY, "GET", PATH, BODY, NOW),  # another method
        (KEY, "POST", "/api/v1/learning-accounts/lookup", BODY, NOW),  # another route
        (KEY, "POST", PATH, BODY.replace(b"410711", b"410712"), NOW),  # another body
        (KEY, "POST", PATH, BODY, NOW + servicecalls.TOLERANCE_SECONDS + 1),  # replayed later
        (KEY, "POST", PATH, BODY, NOW - servicecalls.TOLERANCE_SECONDS - 1),  # from the future
    ],
)
def test_a_signature_is_refused_for_anything_else(
    key: bytes, method: str, path: str, body: bytes, now: float
) -> None:
    header = sign(KEY, "POST", PATH, BODY, now=NOW)
    assert not verify(key, header, method, path, body, now=now)


@pytest.mark.parametrize(
    "header", [None, "", "garbage", "t=abc,v1=00", f"t={int(NOW)}", f"v1={'0' * 64}", "t=,v1="]
)
def test_malformed_headers_are_refused(header: str | None) -> None:
    assert not verify(KEY, header, "POST", PATH, BODY, now=NOW)


def test_the_key_file_is_made_once_owner_only_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "service-calls.key"
    with pytest.raises(KeyFileMissing, match="init-keys"):
        load_hex_key(path, create=False, hint="run init-keys")
    made = load_hex_key(path, create=True)
    assert len(made) == 32 and path.stat().st_mode & 0o777 == 0o600
    assert load_hex_key(path, create=True) == made == load_hex_key(path, create=False)

"""`credits-admin verify-credential`: the verdict from files alone (keys and status list), for a
good, a tampered, an expired, a revoked and a wrong-issuer credential."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from credits.cli import main
from credits.credentials import documents, statuslist, vcjwt
from credits.credentials.documents import AchievementFacts, Holder, IssuerProfile
from credits.credentials.keys import generate_key, public_part

ISSUER = IssuerProfile(id="https://muye.example.org/college", name="牧野区社区学院", url="x")
LIST_URL = "https://muye.example.org/credentials/status/1"
KEY = generate_key()
KID = f"https://muye.example.org/.well-known/credential-keys.json#{KEY['kid']}"


def _token(*, index: int = 3, key: dict[str, Any] = KEY, **overrides: Any) -> str:
    now = datetime.now(UTC).replace(microsecond=0)
    values: dict[str, Any] = {
        "credential_id": f"urn:uuid:{uuid.uuid4()}",
        "issuer": ISSUER,
        "holder": Holder(f"urn:uuid:{uuid.uuid4()}", "李小梅", "s"),
        "facts": AchievementFacts(
            key="conversion/ou_course_credit",
            achievement_type="ext:CreditConversion",
            name="学分转换：开放大学课程学分",
            description="d",
            criteria="c",
            credits_available_hundredths=200,
            credits_earned_hundredths=200,
            awarded_at=now,
        ),
        "valid_from": now - timedelta(minutes=1),
        "status": statuslist.entry(LIST_URL, index),
    }
    values.update(overrides)
    kid = KID.split("#")[0] + "#" + key["kid"]
    return vcjwt.sign(documents.achievement_credential(**values), private_jwk=key, kid_uri=kid)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    now = datetime.now(UTC).replace(microsecond=0)
    keys = tmp_path / "credential-keys.json"
    keys.write_text(json.dumps({"keys": [public_part(KEY)]}))
    listed = tmp_path / "status-1.jwt"
    unsigned = statuslist.credential(
        list_url=LIST_URL,
        issuer=ISSUER.id,
        revoked={5},
        valid_from=now,
        valid_until=now + timedelta(days=1),
    )
    listed.write_text(vcjwt.sign(unsigned, private_jwk=KEY, kid_uri=KID))
    return {"keys": keys, "status": listed, "dir": tmp_path}


def _run(
    files: dict[str, Path], token: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any]]:
    credential = files["dir"] / f"{uuid.uuid4().hex}.jwt"
    credential.write_text(token)
    code = main(
        [
            "verify-credential",
            str(credential),
            "--keys",
            str(files["keys"]),
            "--status-list",
            str(files["status"]),
        ]
    )
    return code, json.loads(capsys.readouterr().out)


def test_a_good_credential_is_valid(files, capsys) -> None:
    code, result = _run(files, _token(), capsys)
    assert (code, result["verdict"]) == (0, "valid")


def test_a_tampered_credential_is_refused(files, capsys) -> None:
    head, payload, signature = _token().split(".")
    code, result = _run(files, f"{head}.{payload}.{signature[::-1]}", capsys)
    assert (code, result["verdict"]) == (1, "tampered")


def test_an_expired_credential_is_refused(files, capsys) -> None:
    past = datetime.now(UTC).replace(microsecond=0) - timedelta(days=400)
    token = _token(valid_from=past, valid_until=past + timedelta(days=365))
    code, result = _run(files, token, capsys)
    assert (code, result["verdict"]) == (1, "expired")


def test_a_revoked_credential_is_refused(files, capsys) -> None:
    code, result = _run(files, _token(index=5), capsys)
    assert (code, result["verdict"]) == (1, "revoked")


def test_another_issuers_credential_is_refused(files, capsys) -> None:
    code, result = _run(files, _token(key=generate_key()), capsys)
    assert (code, result["verdict"]) == (1, "wrong_issuer")


def test_without_the_status_list_a_revocable_credential_is_not_called_valid(files, capsys) -> None:
    code = main(["verify-credential", _token(), "--keys", str(files["keys"])])
    assert code == 1 and json.loads(capsys.readouterr().out)["verdict"] == "status_unknown"

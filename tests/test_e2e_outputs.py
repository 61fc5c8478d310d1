"""E-portfolio outputs end to end through the gateway on PostgreSQL: a resident's PDF
transcript read back (Chinese headings, name, figures, the QR code opening the verification
page), a conversion's credential valid and then revoked when the conversion is cancelled (by
the JSON endpoint and by the offline verifier with the published keys and status list), and
the verification page as headless Chromium shows it on a phone, kept as a screenshot."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from accounts.cli import DEMO_STAFF
from devstack.stack import ROOT, Stack
from testkit import browser
from testkit.documents import jwt_payload, read_pdf
from testkit.http import bearer, new_resident, online_hours, password_token, settled_credits

ARTIFACTS = ROOT / "var" / "test-artifacts"


@pytest.fixture(scope="module")
def learner(stack: Stack) -> dict[str, str]:
    """A resident, 李小梅, with 32 online hours of employment courses (2.13 credits)."""
    with httpx.Client(base_url=stack.config.url(stack.config.gateway_port), timeout=10) as gateway:
        return _arrange(gateway)


def _arrange(gateway: httpx.Client) -> dict[str, str]:
    admin = password_token(gateway, DEMO_STAFF["username"], DEMO_STAFF["password"])
    account = new_resident(
        gateway, admin, town="410711101", password="li-xiao-mei-pass", name="李小梅"
    )
    resident = password_token(gateway, str(account["account_number"]), "li-xiao-mei-pass")
    online_hours(gateway, admin, str(account["account_number"]))
    assert settled_credits(gateway, resident)["total_hundredths"] == 213
    return {
        "admin": admin,
        "resident": resident,
        "account_number": str(account["account_number"]),
        "id_number_masked": str(account["id_number_masked"]),
    }


def _verify_offline(credential: str, keys: Path, status: Path) -> dict:  # type: ignore[type-arg]
    done = subprocess.run(
        [sys.executable, "-m", "credits.cli", "verify-credential", credential]
        + ["--keys", str(keys), "--status-list", str(status)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=60,
    )
    return {"exit": done.returncode, **json.loads(done.stdout)}


def test_a_resident_downloads_a_transcript_that_reads_back_and_points_to_its_page(
    gateway: httpx.Client, stack: Stack, learner: dict[str, str]
) -> None:
    response = gateway.post("/api/v1/me/transcripts", headers=bearer(learner["resident"]))
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/pdf"
    number = response.headers["x-certificate-number"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "transcript.pdf").write_bytes(response.content)
    read = read_pdf(response.content)
    for heading in ("终身学习档案", "学分证明", "学时统计", "学分情况", "学习成果认证", "学分转换"):
        assert heading in read.text, heading
    assert "李小梅" in read.text and learner["id_number_masked"] in read.text
    assert learner["account_number"] in read.text
    # 8 x 4 online hours of employment; 2.13 credits earned and held, none converted
    assert "就业创业" in read.text and "32.0" in read.text
    assert "获得学分\n已转换学分\n已过期学分\n现有学分\n2.13\n0.00\n0.00\n2.13" in read.text
    assert all(read.fonts.values()), read.fonts
    page_url = f"{stack.config.url(stack.config.gateway_port)}/verify/{number}"
    assert read.qr_codes == [page_url]
    page = httpx.get(page_url)  # what the phone opens: no sign-in
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "有效" in page.text and "李*梅" in page.text and "李小梅" not in page.text


def test_a_conversion_credential_is_valid_until_the_conversion_is_cancelled(
    gateway: httpx.Client, stack: Stack, learner: dict[str, str], tmp_path: Path
) -> None:
    resident, admin = learner["resident"], learner["admin"]
    applied = gateway.post(
        "/api/v1/conversions",
        json={"target": "vocational_training_hours", "units": 1},
        headers=bearer(resident),
    ).json()
    approved = gateway.post(
        f"/api/v1/conversions/{applied['id']}/decision",
        json={"decision": "approve", "reason": "学分满足要求"},
        headers=bearer(admin) | {"Idempotency-Key": uuid.uuid4().hex},
    )
    assert approved.status_code == 200, approved.text
    issued = gateway.post(
        "/api/v1/me/credentials",
        json={"kind": "conversion", "subject": applied["id"]},
        headers=bearer(resident),
    )
    assert issued.status_code == 201, issued.text
    credential = issued.json()["credential"]
    assert jwt_payload(credential)["credentialSubject"]["creditsEarned"] == 1.0
    base = stack.config.url(stack.config.gateway_port)
    assert issued.json()["status_list_credential"].startswith(f"{base}/credentials/status/")
    keys = tmp_path / "credential-keys.json"
    keys.write_text(gateway.get("/.well-known/credential-keys.json").text)
    access_keys = gateway.get("/.well-known/jwks.json").json()
    assert {k["kid"] for k in access_keys["keys"]}.isdisjoint(
        k["kid"] for k in json.loads(keys.read_text())["keys"]
    )

    def status_file(name: str) -> Path:
        listed = httpx.get(issued.json()["status_list_credential"])
        assert listed.status_code == 200 and listed.headers["content-type"] == "application/vc+jwt"
        path = tmp_path / name
        path.write_text(listed.text)
        return path

    check = {"credential": credential}
    good = gateway.post("/api/v1/credential-verifications", json=check)
    assert good.json()["verdict"] == "valid", good.text
    assert _verify_offline(credential, keys, status_file("before.jwt"))["verdict"] == "valid"

    cancelled = gateway.post(
        f"/api/v1/conversions/{applied['id']}/cancel",
        json={"reason": "选错了培训项目"},
        headers=bearer(resident),
    )
    assert cancelled.status_code == 200, cancelled.text
    assert gateway.post("/api/v1/credential-verifications", json=check).json()["verdict"] == (
        "revoked"
    )
    offline = _verify_offline(credential, keys, status_file("after.jwt"))
    assert (offline["exit"], offline["verdict"]) == (1, "revoked")
    page = gateway.get(f"/verify/{issued.json()['certificate_number']}")
    assert "已撤销" in page.text


def test_the_verification_page_in_headless_chromium_on_a_phone(
    gateway: httpx.Client, stack: Stack, learner: dict[str, str]
) -> None:
    transcript = gateway.post("/api/v1/me/transcripts", headers=bearer(learner["resident"]))
    number = transcript.headers["x-certificate-number"]
    url = f"{stack.config.url(stack.config.gateway_port)}/verify/{number}"
    rendered = browser.dom(url)
    assert 'data-verdict="valid"' in rendered and "有效" in rendered
    assert "李*梅" in rendered and "李小梅" not in rendered
    assert number in rendered and "牧野区社区学院" in rendered
    shot = browser.screenshot(url, ARTIFACTS / "verification-page.png")
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    assert (width, height) == (390, 844)
    print(f"verification page screenshot: {shot}")  # noqa: T201
    unknown = browser.dom(f"{stack.config.url(stack.config.gateway_port)}/verify/MY2026-0000-0000")
    assert 'data-verdict="unknown"' in unknown

"""E-portfolio outputs on PostgreSQL and SQLite: the PDF transcript read back, credentials
issued, verified, revoked when their credits are reversed, and the verification page."""

from __future__ import annotations

import itertools
import json
import uuid
from pathlib import Path

import jsonschema

from credits.credentials import statuslist, vcjwt
from credits.ledger import settlement
from testkit.documents import jwt_payload, read_pdf
from testkit.http import bearer

from .conftest import LEARNER_HOMES, PROFILES, certified

DATA = Path(__file__).parent / "data" / "1edtech"
OB_SCHEMA = json.loads((DATA / "ob_v3p0_achievementcredential_schema.json").read_text())


async def _learner(factory, db, issue_token, *, name: str = "李小梅") -> tuple[uuid.UUID, str]:  # type: ignore[no-untyped-def]
    """A learner with 20 verified offline hours of law (2.00 credits) and 6 pending online hours
    of health (staff-entered: no credits until verified)."""
    learner = uuid.uuid4()
    LEARNER_HOMES[str(learner)] = "/410711/410711100/"
    PROFILES[str(learner)] = {
        "id": str(learner),
        "name": name,
        "id_number_masked": "410711********231X",
        "account_number": "MY4107110012345",
    }
    law, _ = await factory.activity(category="law")
    await factory.records(learner, law, count=2, minutes=600, status="verified")
    health, _ = await factory.activity(category="health", mode="online")
    await factory.records(
        learner, health, count=2, minutes=180, status="pending", category="health", mode="online"
    )
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    return learner, issue_token("resident", subject=str(learner), unit="410711100")


async def _converted(client, issue_token, resident: str, target: str = "ou_course_credit") -> str:  # type: ignore[no-untyped-def]
    applied = await client.post(
        "/api/v1/conversions", json={"target": target}, headers=bearer(resident)
    )
    assert applied.status_code == 201, applied.text
    college = issue_token("staff", role="college_staff", unit="410711")
    approved = await client.post(
        f"/api/v1/conversions/{applied.json()['id']}/decision",
        json={"decision": "approve", "reason": "符合条件"},
        headers=bearer(college) | {"Idempotency-Key": uuid.uuid4().hex},
    )
    assert approved.status_code == 200, approved.text
    return str(applied.json()["id"])


async def test_a_resident_transcript_reads_back_with_its_figures_and_qr_code(
    session_client, issue_token, factory
) -> None:
    client, db = session_client
    learner, resident = await _learner(factory, db, issue_token)
    await certified(client, issue_token, resident)
    await _converted(client, issue_token, resident)
    response = await client.post("/api/v1/me/transcripts", headers=bearer(resident))
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/pdf"
    number = response.headers["x-certificate-number"]
    read = read_pdf(response.content)
    for heading in ("终身学习档案", "学分证明", "学时统计", "学分情况", "学习成果认证", "学分转换"):
        assert heading in read.text, heading
    assert "李小梅" in read.text and "410711********231X" in read.text
    assert "MY4107110012345" in read.text and number in read.text
    assert "牧野区社区学院" in read.text
    # 20.0 verified offline hours of law, 6.0 pending online hours of health
    assert "法治教育" in read.text and "20.0" in read.text and "6.0" in read.text
    assert "其中待审核学时 6.0 小时" in read.text
    # earned 2.00 (law; staff-entered pending hours wait for verification) + 4.00 (level-4
    # certificate); 2.00 converted; 4.00 held
    assert "获得学分\n已转换学分\n已过期学分\n现有学分\n6.00\n2.00\n0.00\n4.00" in read.text
    assert "中式烹调师（四级）" in read.text and "开放大学课程学分" in read.text
    assert read.qr_codes == [f"http://127.0.0.1:8000/verify/{number}"]
    assert read.fonts and all(read.fonts.values()), read.fonts  # every font embedded
    page = await client.get(f"/verify/{number}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "有效" in page.text and "李*梅" in page.text and "李小梅" not in page.text


async def test_staff_issue_a_transcript_only_for_learners_they_cover(
    session_client, issue_token, factory
) -> None:
    client, db = session_client
    learner, _ = await _learner(factory, db, issue_token)
    elsewhere = issue_token("staff", role="school_staff", unit="410711101")
    covering = issue_token("staff", role="school_staff", unit="410711100")
    url = f"/api/v1/learners/{learner}/transcripts"
    assert (await client.post(url, headers=bearer(elsewhere))).status_code == 404
    issued = await client.post(url, headers=bearer(covering))
    assert issued.status_code == 201 and "李小梅" in read_pdf(issued.content).text
    other_resident = issue_token("resident", unit="410711100")
    assert (await client.post(url, headers=bearer(other_resident))).status_code == 403


async def test_a_conversion_credential_verifies_until_the_conversion_is_cancelled(
    session_client, issue_token, factory
) -> None:
    client, db = session_client
    learner, resident = await _learner(factory, db, issue_token)
    conversion = await _converted(client, issue_token, resident)
    transcript = await client.post("/api/v1/me/transcripts", headers=bearer(resident))
    issued = await client.post(
        "/api/v1/me/credentials",
        json={"kind": "conversion", "subject": conversion},
        headers=bearer(resident),
    )
    assert issued.status_code == 201, issued.text
    body = issued.json()
    credential = jwt_payload(body["credential"])
    jsonschema.Draft201909Validator(OB_SCHEMA).validate(credential)
    assert credential["credentialSubject"]["creditsEarned"] == 2.0
    assert credential["credentialSubject"]["achievement"]["creditsAvailable"] == 2.0
    assert credential["credentialStatus"]["statusListIndex"] == str(body["status_list_index"])
    check = {"credential": body["credential"]}
    good = await client.post("/api/v1/credential-verifications", json=check)
    assert good.json()["verdict"] == "valid", good.text
    assert good.json()["certificate_number"] == body["certificate_number"]
    assert good.json()["holder_masked_name"] == "李*梅"

    cancelled = await client.post(
        f"/api/v1/conversions/{conversion}/cancel",
        json={"reason": "选错了"},
        headers=bearer(resident),
    )
    assert cancelled.status_code == 200, cancelled.text
    revoked = await client.post("/api/v1/credential-verifications", json=check)
    assert revoked.json()["verdict"] == "revoked"
    # the bit is set in the published (signed) status list
    status = await client.get(body["status_list_credential"].replace("http://127.0.0.1:8000", ""))
    assert status.headers["content-type"] == "application/vc+jwt"
    keys = (await client.get("/.well-known/credential-keys.json")).json()
    listed = vcjwt.verify(
        status.text, keys=vcjwt.public_keys(keys), issuer="https://muye.example.org/college"
    )
    assert listed.valid, listed.reason
    assert listed.credential is not None
    bits = statuslist.decode(listed.credential["credentialSubject"]["encodedList"])
    assert statuslist.is_set(bits, body["status_list_index"])
    # the transcript that counted the conversion is revoked too
    number = transcript.headers["x-certificate-number"]
    assert "已撤销" in (await client.get(f"/verify/{number}")).text
    assert "已撤销" in (await client.get(f"/verify/{body['certificate_number']}")).text


async def test_residents_and_staff_list_what_was_issued_and_whether_it_stands(
    session_client, issue_token, factory
) -> None:
    client, db = session_client
    learner, resident = await _learner(factory, db, issue_token)
    conversion = await _converted(client, issue_token, resident)
    transcript = await client.post("/api/v1/me/transcripts", headers=bearer(resident))
    credential = await client.post(
        "/api/v1/me/credentials",
        json={"kind": "conversion", "subject": conversion},
        headers=bearer(resident),
    )
    numbers = [credential.json()["certificate_number"], transcript.headers["x-certificate-number"]]
    mine = (await client.get("/api/v1/me/documents", headers=bearer(resident))).json()
    assert [d["certificate_number"] for d in mine["items"]] == numbers  # newest first
    assert [(d["kind"], d["status"]) for d in mine["items"]] == [
        ("achievement", "valid"),
        ("transcript", "valid"),
    ]
    assert mine["items"][0]["verify_url"].endswith(f"/verify/{numbers[0]}")
    await client.post(
        f"/api/v1/conversions/{conversion}/cancel",
        json={"reason": "选错了"},
        headers=bearer(resident),
    )
    first = (await client.get("/api/v1/me/documents?limit=1", headers=bearer(resident))).json()
    assert [(d["status"], d["revoked_at"] is not None) for d in first["items"]] == [
        ("revoked", True)
    ]
    rest = (
        await client.get(
            f"/api/v1/me/documents?limit=1&cursor={first['next_cursor']}",
            headers=bearer(resident),
        )
    ).json()
    assert [d["certificate_number"] for d in rest["items"]] == numbers[1:]
    assert rest["next_cursor"] is None
    # staff covering the learner see the same list; anyone else's list is their own, empty
    town = issue_token("staff", role="school_staff", unit="410711100")
    staff_view = await client.get(f"/api/v1/learners/{learner}/documents", headers=bearer(town))
    assert [d["certificate_number"] for d in staff_view.json()["items"]] == numbers
    elsewhere = issue_token("staff", role="school_staff", unit="410711101")
    refused = await client.get(f"/api/v1/learners/{learner}/documents", headers=bearer(elsewhere))
    assert refused.status_code in (403, 404)
    other = issue_token("resident", subject=str(uuid.uuid4()))
    assert (await client.get("/api/v1/me/documents", headers=bearer(other))).json()["items"] == []
    # credentials issued one after another do not sit on neighbouring bits of the list
    more = [
        (
            await client.post(
                "/api/v1/me/credentials", json={"kind": "clr"}, headers=bearer(resident)
            )
        ).json()
        for _ in range(3)
    ]
    bits = [credential.json()["status_list_index"]] + [m["status_list_index"] for m in more]
    assert len(set(bits)) == 4
    assert [b - a for a, b in itertools.pairwise(bits)] != [1, 1, 1]


async def test_a_clr_carries_the_whole_record_and_a_certification_its_own_credential(
    session_client, issue_token, factory
) -> None:
    client, db = session_client
    learner, resident = await _learner(factory, db, issue_token)
    certification = await certified(client, issue_token, resident)
    staff = issue_token("staff", role="college_staff", unit="410711")
    one = await client.post(
        f"/api/v1/learners/{learner}/credentials",
        json={"kind": "certification", "subject": certification},
        headers=bearer(staff),
    )
    assert one.status_code == 201, one.text
    achievement = jwt_payload(one.json()["credential"])["credentialSubject"]["achievement"]
    assert achievement["achievementType"] == "Certification"
    assert achievement["creditsAvailable"] == 4.0
    clr = await client.post(
        "/api/v1/me/credentials", json={"kind": "clr"}, headers=bearer(resident)
    )
    assert clr.status_code == 201, clr.text
    document = jwt_payload(clr.json()["credential"])
    assert document["type"] == ["VerifiableCredential", "ClrCredential"]
    names = {c["name"] for c in document["credentialSubject"]["verifiableCredential"]}
    assert names == {
        "社区教育学习：法治教育",
        "社区教育学习：职业技能",
        "学习成果认证：中式烹调师（四级）",
    }
    for inner in document["credentialSubject"]["verifiableCredential"]:
        jsonschema.Draft201909Validator(OB_SCHEMA).validate(inner)
    assert clr.json()["expires_at"] is not None
    verdict = await client.post(
        "/api/v1/credential-verifications", json={"credential": clr.json()["credential"]}
    )
    assert verdict.json()["verdict"] == "valid"
    # nothing of someone else's, and nothing not approved
    refused = await client.post(
        "/api/v1/me/credentials",
        json={"kind": "conversion", "subject": str(uuid.uuid4())},
        headers=bearer(resident),
    )
    assert refused.status_code == 404 and refused.json()["type"].endswith("/nothing-to-certify")
    bad = await client.post(
        "/api/v1/me/credentials", json={"kind": "clr", "subject": "x"}, headers=bearer(resident)
    )
    assert bad.status_code == 422


async def test_voiding_a_record_revokes_the_snapshots_and_the_award_it_took_back(
    session_client, issue_token, factory
) -> None:
    client, db = session_client
    learner = uuid.uuid4()
    LEARNER_HOMES[str(learner)] = "/410711/410711100/"
    course, sessions = await factory.activity(sessions=4)
    records = await factory.records(
        learner, course, count=4, minutes=120, status="verified", sessions=sessions
    )
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    award = await client.post(
        "/api/v1/me/credentials",
        json={"kind": "award", "subject": str(course)},
        headers=bearer(resident),
    )
    assert award.status_code == 201, award.text
    assert jwt_payload(award.json()["credential"])["credentialSubject"]["creditsEarned"] == 0.5
    clr = await client.post(
        "/api/v1/me/credentials", json={"kind": "clr"}, headers=bearer(resident)
    )
    school = issue_token("staff", role="school_staff", unit="410711100")
    voided = await client.post(
        f"/api/v1/learning-records/{records[0]}/status",
        json={"status": "voided", "reason": "冒名签到"},
        headers=bearer(school),
    )
    assert voided.status_code == 200, voided.text
    for issued in (award, clr):
        verdict = await client.post(
            "/api/v1/credential-verifications", json={"credential": issued.json()["credential"]}
        )
        assert verdict.json()["verdict"] == "revoked", issued.json()["kind"]


async def test_garbage_and_unknown_numbers_are_told_apart_from_valid_ones(
    session_client, issue_token
) -> None:
    client, _ = session_client
    garbage = await client.post("/api/v1/credential-verifications", json={"credential": "a.b.c"})
    assert garbage.status_code == 200 and garbage.json()["verdict"] == "malformed"
    unknown = await client.get("/verify/MY2026-0000-0000")
    assert unknown.status_code == 404 and "未找到" in unknown.text
    assert unknown.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in unknown.headers["content-security-policy"]
    injected = await client.get("/verify/<script>alert(1)</script>")
    assert "<script>" not in injected.text
    keys = (await client.get("/.well-known/credential-keys.json")).json()
    assert keys["keys"] and all("d" not in k for k in keys["keys"])
    assert (await client.get("/credentials/status/99999")).status_code == 404

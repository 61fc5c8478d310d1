"""Certification on PostgreSQL and SQLite: submit with evidence (type and size checked, kept
by digest), review against the standards table, credits on approval, reasons on rejection."""

from __future__ import annotations

import hashlib
import uuid
from datetime import date
from pathlib import Path

from credits.certification import storage
from credits.certification.models import Certification
from credits.ledger import reconciliation
from testkit.http import bearer

from .conftest import CERTIFICATION, LEARNER_HOMES, audit_digests, state_digest

PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def _submit(client, token: str, **fields: object) -> dict:  # type: ignore[no-untyped-def]
    body = {**CERTIFICATION, **fields}
    response = await client.post("/api/v1/certifications", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _upload(client, token: str, cid: str, content: bytes, name: str = "证书.pdf"):  # type: ignore[no-untyped-def]
    return await client.post(
        f"/api/v1/certifications/{cid}/evidence",
        files={"file": (name, content, "application/octet-stream")},
        headers=bearer(token),
    )


async def _review(client, token: str, cid: str, **fields: object):  # type: ignore[no-untyped-def]
    body = {"decision": "approve", "reason": "证书真实有效", **fields}
    return await client.post(
        f"/api/v1/certifications/{cid}/review", json=body, headers=bearer(token)
    )


async def test_an_approved_certificate_is_credited_as_the_standard_says(
    session_client, issue_token, credits_app
) -> None:
    client, db = session_client
    learner = uuid.uuid4()
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    college = issue_token("staff", role="college_staff", unit="410711")
    submitted = await _submit(client, resident)
    assert submitted["status"] == "submitted" and submitted["hundredths"] is None
    no_evidence = await _review(client, college, submitted["id"])
    assert no_evidence.status_code == 409  # approved only on evidence
    uploaded = await _upload(client, resident, submitted["id"], PDF, name="../../etc/证书.pdf")
    assert uploaded.status_code == 201, uploaded.text
    evidence = uploaded.json()
    assert evidence["media_type"] == "application/pdf"
    assert evidence["original_name"] == "证书.pdf"  # folders in the name are dropped
    # control and format characters are dropped from the shown name: a right-to-left override
    # would show 证书\u202efdp.exe as 证书exe.pdf
    for given, shown in (
        ("证书\u202efdp.exe", "证书fdp.exe"),
        ("\u200b证\x00书\n.pdf", "证书.pdf"),
    ):
        assert storage.safe_name(given) == shown
    assert evidence["sha256"] == hashlib.sha256(PDF).hexdigest()
    kept = storage.path_of(
        Path(credits_app.state.settings.data_dir) / "evidence", evidence["sha256"]
    )
    assert kept.read_bytes() == PDF and kept.stat().st_mode & 0o777 == 0o600
    approved = await _review(client, college, submitted["id"])
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved" and approved.json()["hundredths"] == 400
    # the trail: submitted before, the decision and the status it led to after
    assert await audit_digests(db, "certification.review", submitted["id"]) == [
        (
            state_digest({"status": "submitted"}),
            state_digest(
                {
                    "decision": "approve",
                    "reason": "证书真实有效",
                    "level": None,
                    "category": None,
                    "status": "approved",
                }
            ),
        )
    ]
    credits = (await client.get("/api/v1/me/credits", headers=bearer(resident))).json()
    assert credits["categories"] == [{"category": "vocational_skills", "balance_hundredths": 400}]
    trace = (
        await client.get(
            f"/api/v1/credit-transactions/{approved.json()['transaction_id']}",
            headers=bearer(resident),
        )
    ).json()
    (source,) = trace["sources"]
    assert source["certification_id"] == submitted["id"]
    assert source["clause"] == "certification.vocational_qualification.4"
    download = await client.get(
        f"/api/v1/certifications/{submitted['id']}/evidence/{evidence['id']}",
        headers=bearer(college),
    )
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["x-content-type-options"] == "nosniff"
    # a stale evidence link the resident follows: a 404 they can read
    stale = await client.get(
        f"/api/v1/certifications/{submitted['id']}/evidence/{uuid.uuid4()}",
        headers=bearer(resident),
    )
    assert stale.status_code == 404 and "佐证材料" in stale.json()["detail_zh"]
    twice = await _review(client, college, submitted["id"])
    assert twice.status_code == 409
    late = await _upload(client, resident, submitted["id"], PNG, name="more.png")
    assert late.status_code == 409
    report = await reconciliation.reconcile(db, [learner])
    assert report.healthy, report.discrepancies


async def test_evidence_is_checked_by_content_and_size(session_client, issue_token) -> None:
    client, _ = session_client
    resident = issue_token("resident", unit="410711100")
    cid = (await _submit(client, resident))["id"]
    disguised = await _upload(client, resident, cid, b"MZ\x90\x00 not a pdf", name="证书.pdf")
    assert disguised.status_code == 422
    assert disguised.json()["reason"] == "not a PDF, PNG or JPEG file"
    assert "PDF" in disguised.json()["detail_zh"]
    big = await _upload(client, resident, cid, PDF + b"0" * 5_000_001)
    assert big.status_code == 422 and big.json()["reason"].startswith("larger than")
    empty = await _upload(client, resident, cid, b"")
    assert empty.status_code == 422
    for n in range(5):
        assert (
            await _upload(client, resident, cid, PNG + bytes([n]), name=f"{n}.png")
        ).status_code == 201
    sixth = await _upload(client, resident, cid, PDF)
    assert sixth.status_code == 422  # at most five files
    stranger = issue_token("resident", unit="410711100")
    assert (await _upload(client, stranger, cid, PDF)).status_code == 404


async def test_review_needs_a_category_where_the_standard_leaves_it_open(
    session_client, issue_token
) -> None:
    client, _ = session_client
    resident = issue_token("resident", unit="410711100")
    college = issue_token("staff", role="college_staff", unit="410711")
    cid = (
        await _submit(
            client, resident, outcome_type="award", level="city", title="新乡市百姓学习之星"
        )
    )["id"]
    assert (await _upload(client, resident, cid, PDF)).status_code == 201
    open_category = await _review(client, college, cid)
    assert open_category.status_code == 422
    unknown = await _review(client, college, cid, category="astrology")
    assert unknown.status_code == 422
    approved = await _review(client, college, cid, category="civic_morals")
    assert approved.json()["category"] == "civic_morals" and approved.json()["hundredths"] == 200


async def test_rejection_gives_a_reason_and_credits_nothing(session_client, issue_token) -> None:
    client, _ = session_client
    learner = uuid.uuid4()
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    college = issue_token("staff", role="college_staff", unit="410711")
    cid = (await _submit(client, resident))["id"]
    rejected = await _review(client, college, cid, decision="reject", reason="证书编号查无此证")
    assert rejected.status_code == 200
    assert (rejected.json()["status"], rejected.json()["review_reason"]) == (
        "rejected",
        "证书编号查无此证",
    )
    credits = (await client.get("/api/v1/me/credits", headers=bearer(resident))).json()
    assert credits["total_hundredths"] == 0
    unknown_level = await client.post(
        "/api/v1/certifications",
        json={
            "outcome_type": "vocational_qualification",
            "level": "9",
            "title": "x",
            "issuer": "y",
            "issued_on": "2026-01-01",
        },
        headers=bearer(resident),
    )
    assert unknown_level.status_code == 422


async def test_staff_submit_for_learners_they_cover_and_only_the_college_reviews(
    session_client, issue_token
) -> None:
    client, _ = session_client
    learner = uuid.uuid4()
    LEARNER_HOMES[str(learner)] = "/410711/410711100/410711100201/"
    point = issue_token("staff", role="learning_point_staff", unit="410711100")
    submitted = await _submit(client, point, learner=str(learner))
    elsewhere = issue_token("staff", role="learning_point_staff", unit="410711101")
    refused = await client.post(
        "/api/v1/certifications",
        json={
            "outcome_type": "mooc_certificate",
            "level": "short",
            "title": "x",
            "issuer": "y",
            "issued_on": "2026-01-01",
            "learner": str(learner),
        },
        headers=bearer(elsewhere),
    )
    assert refused.status_code == 404
    assert (await _upload(client, point, submitted["id"], PDF)).status_code == 201
    assert (await _review(client, point, submitted["id"])).status_code == 403
    listed = await client.get(
        "/api/v1/certifications", params={"status": "submitted"}, headers=bearer(point)
    )
    assert submitted["id"] in [c["id"] for c in listed.json()["items"]]
    assert (
        await client.get(
            "/api/v1/certifications", params={"status": "submitted"}, headers=bearer(elsewhere)
        )
    ).json()["items"] == []


async def test_one_certificate_is_submitted_once_until_it_is_rejected(
    session_client, issue_token
) -> None:
    """A retried POST (the app timed out after the first was stored) or the same certificate
    typed again is refused, naming the submission it repeats; after a rejection it may be sent
    again (with better evidence)."""
    client, _ = session_client
    resident = issue_token("resident", subject=str(uuid.uuid4()), unit="410711100")
    college = issue_token("staff", role="college_staff", unit="410711")
    first = await _submit(client, resident)
    for same in (
        CERTIFICATION,  # the retry
        {**CERTIFICATION, "title": " 中式烹调师(四级) ", "issuer": "新乡市 人力资源和社会保障局"},
    ):
        again = await client.post("/api/v1/certifications", json=same, headers=bearer(resident))
        assert again.status_code == 409, again.text
        problem = again.json()
        assert problem["type"].endswith("/certification-exists")
        assert (problem["existing"], problem["existing_status"]) == (first["id"], "submitted")
        assert first["id"] in problem["detail_zh"] and "不必重复提交" in problem["detail_zh"]
    # another certificate of the same day, or the same title from another issuer, is its own
    other = await _submit(client, resident, title="面点师（四级）")
    assert other["id"] != first["id"]
    rejected = await _review(client, college, first["id"], decision="reject", reason="照片不清")
    assert rejected.status_code == 200, rejected.text
    resent = await _submit(client, resident)
    assert resent["id"] not in (first["id"], other["id"])
    listed = (await client.get("/api/v1/me/certifications", headers=bearer(resident))).json()
    assert sorted(c["status"] for c in listed) == ["rejected", "submitted", "submitted"]


async def test_a_certificate_is_credited_once_even_when_submitted_twice(
    session_client, issue_token
) -> None:
    """Two submissions of one certificate that both got in (sent at once from two devices,
    or the same scan under another title) are not both credited: the second approval is a 409
    naming the credited one, and the balance holds the standard's credits once."""
    client, db = session_client
    learner = uuid.uuid4()
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    college = issue_token("staff", role="college_staff", unit="410711")
    first = await _submit(client, resident)
    assert (await _upload(client, resident, first["id"], PDF)).status_code == 201
    # the twin as a submission made at the same moment would leave it (the submit check ran
    # before either was stored)
    twin = Certification(
        learner_id=learner,
        learner_unit_path="/410711/410711100/",
        outcome_type=CERTIFICATION["outcome_type"],
        level=CERTIFICATION["level"],
        title=CERTIFICATION["title"].upper(),
        issuer=CERTIFICATION["issuer"],
        issued_on=date.fromisoformat(str(CERTIFICATION["issued_on"])),
        submitted_by=str(learner),
    )
    db.add(twin)
    await db.flush()
    assert (await _upload(client, resident, str(twin.id), PNG)).status_code == 201
    # the same scan as evidence of a "different" certificate
    renamed = await _submit(client, resident, title="烹调师证", issued_on="2026-07-01")
    assert (await _upload(client, resident, renamed["id"], PDF)).status_code == 201
    assert (await _review(client, college, first["id"])).status_code == 200
    for cid, why in ((str(twin.id), "已认定并计入学分"), (renamed["id"], "佐证材料与已认定")):
        refused = await _review(client, college, cid)
        assert refused.status_code == 409, refused.text
        assert refused.json()["type"].endswith("/certification-duplicate")
        assert refused.json()["existing"] == first["id"] and why in refused.json()["detail_zh"]
        rejected = await _review(client, college, cid, decision="reject", reason="重复提交")
        assert rejected.status_code == 200, rejected.text
    credits = (await client.get("/api/v1/me/credits", headers=bearer(resident))).json()
    assert credits["total_hundredths"] == 400, credits


async def test_the_same_evidence_file_uploaded_again_is_the_one_stored(
    session_client, issue_token
) -> None:
    """A retried upload gives back the evidence stored the first time (200, same id): it is
    listed once and takes one of the five places."""
    client, _ = session_client
    resident = issue_token("resident", subject=str(uuid.uuid4()), unit="410711100")
    cid = (await _submit(client, resident))["id"]
    first = await _upload(client, resident, cid, PDF)
    assert first.status_code == 201, first.text
    again = await _upload(client, resident, cid, PDF, name="证书(1).pdf")
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["original_name"] == "证书.pdf"  # the first upload's, as stored
    for n in range(4):  # four more different files fill the five places
        added = await _upload(client, resident, cid, PNG + bytes([n]), name=f"{n}.png")
        assert added.status_code == 201, added.text
    assert (await _upload(client, resident, cid, PDF)).status_code == 200  # still the same
    full = await _upload(client, resident, cid, PNG + b"\xff", name="more.png")
    assert full.status_code == 422 and "5" in full.json()["detail"]
    shown = (await client.get(f"/api/v1/certifications/{cid}", headers=bearer(resident))).json()
    assert len(shown["evidence"]) == 5

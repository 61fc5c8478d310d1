"""The e-portfolio outputs and certification given odd input, on PostgreSQL and SQLite: it is
answered as a problem, never a 500, and what a resident typed is printed as typed."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import uuid
from datetime import UTC, date, datetime, timedelta

import httpx
import pypdf
import pytest
from reportlab.pdfbase import pdfmetrics
from sqlalchemy import func, select

from credits.certification.models import Certification, CertificationEvidence
from credits.config import Settings
from credits.ledger.models import LedgerTransaction
from credits.transcript import render
from credits.transcript.figures import Figures
from kernel.pagination import encode_cursor
from testkit.documents import read_pdf
from testkit.http import bearer

from .conftest import EVIDENCE_PNG, LEARNER_HOMES, PROFILES, certified


def _unsigned(payload: dict[str, object]) -> str:
    """A compact JWS with ``payload`` and a signature that is not one."""

    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'kid': 'x#y', 'typ': 'JWT'})}.{part(payload)}.c2ln"


async def test_a_certification_title_is_printed_as_typed_never_read_as_markup(
    session_client, issue_token
) -> None:
    client, _ = session_client
    learner = uuid.uuid4()
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    await certified(client, issue_token, resident, title="R&D <b>工程师</b> 证书")
    await certified(client, issue_token, resident, title='<img src="/etc/passwd"/>')
    response = await client.post("/api/v1/me/transcripts", headers=bearer(resident))
    assert response.status_code == 201, response.text
    text = read_pdf(response.content).text
    assert "R&D <b>工程师</b> 证书" in text
    assert '<img src="/etc/passwd"/>' in text


LONG_NAME = "阿卜杜热合曼·买买提依明·" * 4 + "艾力"  # 54 characters: accounts allows 60


def test_a_long_name_stays_in_its_cell_of_the_transcript() -> None:
    font = Settings.model_fields["transcript_font_file"].default
    now = datetime(2026, 11, 25, 4, tzinfo=UTC)
    data = render.TranscriptData(
        issuer_name="牧野区社区学院",
        certificate_number="MY2026-0000-0000",
        issued_at=now,
        valid_until=now + timedelta(days=90),
        verify_url="http://127.0.0.1:8000/verify/MY2026-0000-0000",
        learner_name=LONG_NAME,
        id_number_masked="650102********123X",
        account_number="MY4107110099999",
        figures=Figures(),
    )
    page = pypdf.PdfReader(io.BytesIO(render.render(data, font))).pages[0]
    drawn: list[tuple[str, float, float]] = []  # text, left edge, right edge

    def visit(text: str, cm: list[float], tm: list[float], _font: object, size: float) -> None:
        if text.strip():
            left = tm[4] * cm[0] + cm[4]
            width = pdfmetrics.stringWidth(text.strip(), render.FONT, size) * cm[0]
            drawn.append((text.strip(), left, left + width))

    page.extract_text(visitor_text=visit)
    (next_cell,) = [left for text, left, _ in drawn if text == "有效期至"]
    name_parts = [(text, right) for text, _, right in drawn if text in LONG_NAME]
    assert "".join(text for text, _ in name_parts) == LONG_NAME
    assert all(right <= next_cell for _, right in name_parts), (name_parts, next_cell)


async def test_an_altered_documents_cursor_is_a_problem_not_a_500(
    session_client, issue_token
) -> None:
    client, _ = session_client
    resident = issue_token("resident", subject=str(uuid.uuid4()), unit="410711100")
    for altered in (encode_cursor({"before": "x"}), encode_cursor({"before": 10**30})):
        answer = await client.get(
            f"/api/v1/me/documents?cursor={altered}", headers=bearer(resident)
        )
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["type"].endswith("/invalid-cursor")


async def test_an_altered_certifications_cursor_is_a_problem_not_a_500(
    session_client, issue_token
) -> None:
    client, _ = session_client
    college = issue_token("staff", role="college_staff", unit="410711")
    for altered in (encode_cursor({"after": "x"}), encode_cursor({"other": 1})):
        answer = await client.get(
            f"/api/v1/certifications?cursor={altered}", headers=bearer(college)
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["type"].endswith("/invalid-cursor")


@pytest.mark.parametrize("number", ["3000000000", "9" * 30, "9" * 5000, "0", "²"])
async def test_a_credential_naming_a_status_list_out_of_range_is_judged_not_a_500(
    session_client, number: str
) -> None:
    client, _ = session_client
    forged = _unsigned(
        {
            "iss": "https://muye.example.org/college",
            "credentialStatus": {
                "type": "BitstringStatusListEntry",
                "statusPurpose": "revocation",
                "statusListIndex": "1",
                "statusListCredential": f"http://127.0.0.1:8000/credentials/status/{number}",
            },
        }
    )
    answer = await client.post("/api/v1/credential-verifications", json={"credential": forged})
    assert answer.status_code == 200, answer.text
    assert answer.json()["valid"] is False


async def test_a_credential_nested_past_the_parser_is_malformed_not_a_500(session_client) -> None:
    client, _ = session_client
    deep = base64.urlsafe_b64encode(b"[" * 50_000).decode().rstrip("=")
    # the payload is read unverified for its status list, the header to verify at all
    for token, verdict in ((f"e30.{deep}.c2ln", "tampered"), (f"{deep}.e30.c2ln", "malformed")):
        answer = await client.post("/api/v1/credential-verifications", json={"credential": token})
        assert answer.status_code == 200, answer.text
        assert answer.json()["verdict"] == verdict


async def test_a_resident_with_a_long_name_gets_their_transcript_and_credential(
    session_client, issue_token
) -> None:
    client, _ = session_client
    learner = uuid.uuid4()
    LEARNER_HOMES[str(learner)] = "/410711/410711100/"
    name = LONG_NAME
    PROFILES[str(learner)] = {
        "id": str(learner),
        "name": name,
        "id_number_masked": "650102********123X",
        "account_number": "MY4107110099999",
    }
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    await certified(client, issue_token, resident)
    transcript = await client.post("/api/v1/me/transcripts", headers=bearer(resident))
    assert transcript.status_code == 201, transcript.text
    assert name in read_pdf(transcript.content).text.replace("\n", "")
    page = await client.get(f"/verify/{transcript.headers['x-certificate-number']}")
    assert page.status_code == 200
    assert name not in page.text and f"{name[0]}*" in page.text and name[1:-1] not in page.text
    clr = await client.post(
        "/api/v1/me/credentials", json={"kind": "clr"}, headers=bearer(resident)
    )
    assert clr.status_code == 201, clr.text


# concurrency is the database's: these run on committed PostgreSQL transactions


@pytest.fixture
async def committed(credits_app, credits_db):  # type: ignore[no-untyped-def]
    if not credits_db.startswith("postgresql"):
        pytest.skip("concurrency is PostgreSQL's: SQLite serialises every writer")
    transport = httpx.ASGITransport(app=credits_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://credits") as client:
        yield client, credits_app.state.sessionmaker


async def _submitted_with_evidence(maker) -> tuple[uuid.UUID, uuid.UUID]:  # type: ignore[no-untyped-def]
    """A submitted certification with evidence, of a learner in a unit no other test lists."""
    learner = uuid.uuid4()
    LEARNER_HOMES[str(learner)] = "/410711/review-race/"  # where accounts says they live
    async with maker() as db, db.begin():
        certification = Certification(
            learner_id=learner,
            learner_unit_path="/410711/review-race/",
            outcome_type="vocational_qualification",
            level="4",
            title="中式烹调师（四级）",
            issuer="新乡市人力资源和社会保障局",
            issued_on=date(2026, 6, 30),
            submitted_by=str(learner),
            submitted_at=datetime.now(UTC),
        )
        db.add(certification)
        await db.flush()
        db.add(
            CertificationEvidence(
                certification_id=certification.id,
                sha256="0" * 64,
                media_type="image/png",
                size_bytes=len(EVIDENCE_PNG),
                original_name="证书.png",
                uploaded_by=str(learner),
            )
        )
    return certification.id, learner


async def test_concurrent_reviews_of_one_certification_credit_it_at_most_once(
    committed, issue_token
) -> None:
    client, maker = committed
    college = issue_token("staff", role="college_staff", unit="410711")
    cid, learner = await _submitted_with_evidence(maker)
    decisions = ["approve"] * 4 + ["reject"] * 2

    async def review(decision: str) -> httpx.Response:
        return await client.post(
            f"/api/v1/certifications/{cid}/review",
            json={"decision": decision, "reason": "并发审核"},
            headers=bearer(college),
        )

    answers = await asyncio.gather(*(review(d) for d in decisions))
    assert sorted(a.status_code for a in answers) == [200] + [409] * 5, [a.text for a in answers]
    async with maker() as db:
        status = (await db.get(Certification, cid)).status  # type: ignore[union-attr]
        credited = (
            await db.execute(
                select(func.count())
                .select_from(LedgerTransaction)
                .where(LedgerTransaction.learner_id == learner)
            )
        ).scalar_one()
    assert credited == (1 if status == "approved" else 0)


async def test_one_certificate_sent_at_once_from_two_devices_is_one_submission(
    committed, issue_token
) -> None:
    """Submissions of one learner take turns, so the duplicate check sees the first; uploads
    to one certification take turns, so the five-file limit holds."""
    client, maker = committed
    learner = uuid.uuid4()
    resident = issue_token("resident", subject=str(learner), unit="410711100")
    body = {
        "outcome_type": "vocational_qualification",
        "level": "4",
        "title": "茶艺师（四级）",
        "issuer": "新乡市人力资源和社会保障局",
        "issued_on": "2026-03-15",
    }
    answers = await asyncio.gather(
        *(
            client.post("/api/v1/certifications", json=body, headers=bearer(resident))
            for _ in range(6)
        )
    )
    assert sorted(a.status_code for a in answers) == [201] + [409] * 5, [a.text for a in answers]
    (cid,) = [a.json()["id"] for a in answers if a.status_code == 201]
    uploads = await asyncio.gather(
        *(
            client.post(
                f"/api/v1/certifications/{cid}/evidence",
                files={"file": (f"{n}.png", EVIDENCE_PNG + bytes([n]), "image/png")},
                headers=bearer(resident),
            )
            for n in range(8)
        )
    )
    assert sorted(u.status_code for u in uploads) == [201] * 5 + [422] * 3, [
        u.text for u in uploads
    ]
    async with maker() as db:
        submitted = (
            await db.execute(
                select(func.count())
                .select_from(Certification)
                .where(Certification.learner_id == learner)
            )
        ).scalar_one()
        files = (
            await db.execute(
                select(func.count())
                .select_from(CertificationEvidence)
                .where(CertificationEvidence.certification_id == uuid.UUID(cid))
            )
        ).scalar_one()
    assert (submitted, files) == (1, 5)

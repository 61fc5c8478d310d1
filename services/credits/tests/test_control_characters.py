"""Text with control characters is refused where it comes in, field by field, never a 500.

PostgreSQL's text holds no NUL: before, a NUL in one partner record's id made the whole batch a
500 (the good records lost with it), and one in a title or a reason was a 500 too.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from testkit.http import bearer

from .conftest import CERTIFICATION
from .test_ingest import _item, _learner, _online_course, _post, _stored
from .test_review import _activity, _records

CONTROL = "control character"


async def test_a_batch_keeps_its_good_records_beside_one_whose_id_holds_a_nul(
    session_client, issue_token
) -> None:
    client, db = session_client
    partner = f"nul-{uuid.uuid4().hex[:6]}"
    token = issue_token("partner", client_id=partner)
    course = await _online_course(client, issue_token, partner)
    learner = _learner()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    items = [
        _item("good-1", learner, course, start),
        _item("bad\u0000id", learner, course, start + timedelta(minutes=40)),
        _item("zero\u200bwidth", learner, course, start + timedelta(minutes=80)),
        _item("good-2", learner, course, start + timedelta(minutes=120), evidence={"n": "ab"}),
        # PostgreSQL cannot read a NUL back out of JSON either
        _item(
            "nul-evidence", learner, course, start + timedelta(minutes=160), evidence={"n": "a\0"}
        ),
    ]
    answer = await _post(client, token, items)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["created"], body["rejected"]) == (2, 3)
    statuses = [(r["id"], r["status"]) for r in body["results"]]
    assert statuses == [
        ("good-1", "created"),
        ("bad\u0000id", "rejected"),
        ("zero\u200bwidth", "rejected"),
        ("good-2", "created"),
        ("nul-evidence", "rejected"),
    ]
    for rejected in body["results"][1:3]:
        assert [e["field"] for e in rejected["errors"]] == ["id"]
        assert "control characters" in rejected["errors"][0]["reason"]
    assert body["results"][4]["errors"] == [
        {"field": "evidence", "reason": "Value error, evidence text may not hold NUL (U+0000)"}
    ]
    assert await _stored(db, partner) == 2
    # and the retry of the whole batch changes nothing
    again = (await _post(client, token, items)).json()
    assert (again["created"], again["duplicates"], again["rejected"]) == (0, 2, 3)
    assert await _stored(db, partner) == 2


async def test_titles_reasons_and_filters_with_control_characters_are_422s(
    session_client, issue_token
) -> None:
    client, db = session_client
    staff = issue_token("staff", role="college_staff", unit="410711")
    titled = await client.post(
        "/api/v1/activities",
        json={
            "title": "太极\u0000拳",
            "kind": "online_course",
            "category": "tai_chi",
            "mode": "online",
        },
        headers=bearer(staff),
    )
    assert titled.status_code == 422, titled.text
    assert titled.headers["content-type"].startswith("application/problem+json")
    assert CONTROL in titled.text and "title" in titled.text
    resident = issue_token("resident", subject=str(uuid.uuid4()))
    certificate = await client.post(
        "/api/v1/certifications",
        json={**CERTIFICATION, "issuer": "新乡市\u202e局"},  # a right-to-left override
        headers=bearer(resident),
    )
    assert certificate.status_code == 422 and "issuer" in certificate.text
    activity = await _activity(client, issue_token, "410711100")
    (record,) = await _records(db, "/410711/410711100/", uuid.uuid4(), activity, 1)
    school = issue_token("staff", role="school_staff", unit="410711100")
    url = f"/api/v1/learning-records/{record}/status"
    refused = await client.post(
        url, json={"status": "verified", "reason": "核对\u0000无误"}, headers=bearer(school)
    )
    assert refused.status_code == 422 and CONTROL in refused.text
    # a reason may run over lines
    kept = await client.post(
        url, json={"status": "verified", "reason": "签到表核对无误\n第二行"}, headers=bearer(school)
    )
    assert kept.status_code == 200, kept.text
    for path in ("/api/v1/learning-records", "/api/v1/activities"):
        filtered = await client.get(path, params={"category": "law\u0000"}, headers=bearer(school))
        assert filtered.status_code == 422, (path, filtered.text)
        assert filtered.headers["content-type"].startswith("application/problem+json")


async def test_an_xapi_statement_holding_a_nul_is_rejected_beside_a_good_one(
    session_client, issue_token
) -> None:
    from .conftest import new_learner
    from .test_xapi import URL, _partner, _statement

    client, _ = session_client
    client_id, token = _partner(issue_token)
    course = await _online_course(client, issue_token, client_id)
    number, _ = new_learner()
    ended = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    good = _statement(number, course, ended)
    bad = _statement(number, course, ended - timedelta(hours=2), context={"platform": "慕\0课"})
    answer = await client.post(URL, json=[good, bad], headers=bearer(token))
    assert answer.status_code == 200, answer.text
    assert [(r["status"], r["errors"]) for r in answer.json()["results"]] == [
        ("created", []),
        (
            "rejected",
            [
                {
                    "field": "statement",
                    "reason": "Value error, evidence text may not hold NUL (U+0000)",
                }
            ],
        ),
    ]

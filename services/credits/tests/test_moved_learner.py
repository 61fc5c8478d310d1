"""A resident who moves (accounts: a new residence_unit) takes their certifications and
conversions along: staff reach one item (view, evidence, review, decision, cancellation) when
accounts says they cover where the learner lives now, not where the item was filed
(``learner_unit_path``, which the credit audit keeps on purpose). The lists stay by the unit
where each item was filed (documented on the routes)."""

from __future__ import annotations

import uuid

from credits.ledger import settlement
from testkit.http import bearer

from .conftest import EVIDENCE_PNG, LEARNER_HOMES, UNREACHABLE, submitted_with_evidence

OLD_HOME = "/410711/410711100/410711100201/"  # a village of town 410711100
NEW_HOME = "/410711/410711101/410711101201/"  # a village of town 410711101


def _moved(issue_token):  # type: ignore[no-untyped-def]
    """A resident filed at OLD_HOME: their id and token (they move when the test says)."""
    learner = uuid.uuid4()
    LEARNER_HOMES[str(learner)] = OLD_HOME
    return learner, issue_token("resident", unit="410711100201", subject=str(learner))


async def test_a_moved_residents_certification_and_evidence_follow_the_residence(
    client, issue_token
) -> None:
    learner, resident = _moved(issue_token)
    cid, evidence = await submitted_with_evidence(client, resident)
    old_town = issue_token("staff", role="school_staff", unit="410711100")
    new_town = issue_token("staff", role="school_staff", unit="410711101")
    url = f"/api/v1/certifications/{cid}"
    assert (await client.get(url, headers=bearer(old_town))).status_code == 200
    assert (await client.get(url, headers=bearer(new_town))).status_code == 404

    LEARNER_HOMES[str(learner)] = NEW_HOME  # staff of accounts changed the residence

    def upload(token: str, extra: bytes):  # type: ignore[no-untyped-def]
        return client.post(
            f"{url}/evidence",
            files={"file": ("补充.png", EVIDENCE_PNG + extra, "image/png")},
            headers=bearer(token),
        )

    for caller, expected in ((old_town, 404), (new_town, 200), (resident, 200)):
        seen = await client.get(url, headers=bearer(caller))
        assert seen.status_code == expected, seen.text
        download = await client.get(f"{url}/evidence/{evidence}", headers=bearer(caller))
        assert download.status_code == expected, download.text
    refused = await upload(old_town, b"old")
    assert refused.status_code == 404
    assert refused.json()["type"].endswith("/certification-not-found")
    assert (await upload(new_town, b"new")).status_code == 201
    # the learner's own list asks accounts too, and agrees
    mine = f"/api/v1/learners/{learner}/certifications"
    assert (await client.get(mine, headers=bearer(old_town))).status_code == 404
    assert [c["id"] for c in (await client.get(mine, headers=bearer(new_town))).json()] == [cid]

    # the list stays by the unit where it was filed (as the route says)
    def listed(token: str):  # type: ignore[no-untyped-def]
        return client.get(
            "/api/v1/certifications", params={"learner": str(learner)}, headers=bearer(token)
        )

    assert [c["id"] for c in (await listed(old_town)).json()["items"]] == [cid]
    assert (await listed(new_town)).json()["items"] == []


async def test_the_college_where_the_learner_lives_now_reviews(client, issue_token) -> None:
    learner, resident = _moved(issue_token)
    cid, _ = await submitted_with_evidence(client, resident)
    LEARNER_HOMES[str(learner)] = NEW_HOME
    review = f"/api/v1/certifications/{cid}/review"
    body = {"decision": "reject", "reason": "证书编号无法核验"}
    old_college = issue_token("staff", role="college_staff", unit="410711100")
    new_college = issue_token("staff", role="college_staff", unit="410711101")
    refused = await client.post(review, json=body, headers=bearer(old_college))
    assert refused.status_code == 404, refused.text
    assert refused.json()["type"].endswith("/certification-not-found")
    reviewed = await client.post(review, json=body, headers=bearer(new_college))
    assert reviewed.status_code == 200, reviewed.text
    assert reviewed.json()["status"] == "rejected"


async def test_the_college_where_the_learner_lives_now_decides_and_cancels(
    session_client, issue_token, factory
) -> None:
    client, db = session_client
    learner, resident = _moved(issue_token)
    activity, _ = await factory.activity()
    await factory.records(learner, activity, count=3, minutes=600, status="verified")
    await settlement.settle(db, [learner], actor="test")
    await db.commit()
    applied = await client.post(
        "/api/v1/conversions",
        json={"target": "ou_course_credit", "units": 1},
        headers=bearer(resident),
    )
    assert applied.status_code == 201, applied.text
    conversion = applied.json()["id"]
    LEARNER_HOMES[str(learner)] = NEW_HOME
    old_college = issue_token("staff", role="college_staff", unit="410711100")
    new_college = issue_token("staff", role="college_staff", unit="410711101")

    def decide(token: str):  # type: ignore[no-untyped-def]
        return client.post(
            f"/api/v1/conversions/{conversion}/decision",
            json={"decision": "approve", "reason": "符合转换条件"},
            headers=bearer(token) | {"Idempotency-Key": f"moved-{conversion}"},
        )

    refused = await decide(old_college)
    assert refused.status_code == 404, refused.text
    assert refused.json()["type"].endswith("/conversion-not-found")
    approved = await decide(new_college)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"

    cancel = f"/api/v1/conversions/{conversion}/cancel"
    # as decide answers it: another college's conversion is not there for it
    assert (
        await client.post(cancel, json={"reason": "学员搬走"}, headers=bearer(old_college))
    ).status_code == 404
    school = issue_token("staff", role="school_staff", unit="410711101")
    assert (
        await client.post(cancel, json={"reason": "学员搬走"}, headers=bearer(school))
    ).status_code == 403  # not a role that cancels, whoever the learner is
    cancelled = await client.post(
        cancel, json={"reason": "选错了课程"}, headers=bearer(new_college)
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"

    # the list stays by the unit where the application was filed (as the route says)
    def listed(token: str):  # type: ignore[no-untyped-def]
        return client.get(
            "/api/v1/conversions", params={"learner": str(learner)}, headers=bearer(token)
        )

    assert [c["id"] for c in (await listed(old_college)).json()["items"]] == [conversion]
    assert (await listed(new_college)).json()["items"] == []


async def test_staff_are_told_to_retry_when_accounts_cannot_say(client, issue_token) -> None:
    learner, resident = _moved(issue_token)
    cid, _ = await submitted_with_evidence(client, resident)
    staff = issue_token("staff", role="school_staff", unit="410711100")
    path = f"/api/v1/learning-accounts/{learner}"
    UNREACHABLE.add(path)
    try:
        down = await client.get(f"/api/v1/certifications/{cid}", headers=bearer(staff))
        own = await client.get(f"/api/v1/certifications/{cid}", headers=bearer(resident))
    finally:
        UNREACHABLE.discard(path)
    assert down.status_code == 503, down.text
    assert own.status_code == 200  # the learner themself needs no answer from accounts

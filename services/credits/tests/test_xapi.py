"""xAPI statements from partner platforms: mapped onto partner records, every check of the
partner ingestion applied, per-statement results, a retried statement a no-op."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select

from credits.records.models import LearningRecord
from credits.xapi.statements import (
    ACTIVITY_IRI_PREFIX,
    LEARNER_HOME_PAGE,
    STARTED_AT,
    Refusal,
    duration_seconds,
)
from testkit.http import bearer

from .conftest import new_learner

COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
ATTENDED = "http://adlnet.gov/expapi/verbs/attended"
URL = "/api/v1/xapi/statements"
NAN = float("nan")


async def _online_course(client: httpx.AsyncClient, issue_token, partner: str) -> str:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/v1/activities",
        json={
            "title": "老年人智能手机课（线上）",
            "kind": "online_course",
            "category": "digital_skills",
            "mode": "online",
            "partner": partner,
        },
        headers=bearer(issue_token("staff", role="college_staff", unit="410711")),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _statement(
    learner: str,
    activity: str,
    ended: datetime,
    *,
    duration: str = "PT45M",
    verb: str = COMPLETED,
    **overrides: object,
) -> dict:
    statement = {
        "id": str(uuid.uuid4()),
        "actor": {
            "objectType": "Agent",
            "name": "王奶奶",
            "account": {"homePage": LEARNER_HOME_PAGE, "name": learner},
        },
        "verb": {"id": verb, "display": {"zh-CN": "完成", "en-US": "completed"}},
        "object": {
            "objectType": "Activity",
            "id": ACTIVITY_IRI_PREFIX + activity,
            "definition": {"name": {"zh-CN": "老年人智能手机课"}},
        },
        "result": {"completion": True, "duration": duration},
        "context": {"platform": "慕课平台", "language": "zh-CN"},
        "timestamp": ended.isoformat(),
    }
    statement.update(overrides)
    return statement


def _partner(issue_token):  # type: ignore[no-untyped-def]
    client_id = f"mooc-{uuid.uuid4().hex[:6]}"
    return client_id, issue_token("partner", client_id=client_id)


async def test_a_statement_becomes_a_pending_xapi_record_and_a_retry_is_a_duplicate(
    session_client, issue_token
) -> None:
    client, db = session_client
    client_id, token = _partner(issue_token)
    course = await _online_course(client, issue_token, client_id)
    number, learner_id = new_learner()
    ended = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    statement = _statement(number, course, ended, version="1.0.0")
    first = await client.post(URL, json=statement, headers=bearer(token))  # one, not an array
    assert first.status_code == 200, first.text
    (created,) = first.json()["results"]
    assert (created["status"], created["id"], created["index"]) == ("created", statement["id"], 0)
    record = await db.get(LearningRecord, created["record_id"])
    assert record is not None
    assert (record.source, record.status, record.learner_id) == ("xapi", "pending", learner_id)
    assert (record.source_client, record.external_id) == (client_id, statement["id"])
    assert record.minutes == 45 and record.mode == "online"
    assert record.ended_at.replace(tzinfo=UTC) == ended
    assert record.started_at.replace(tzinfo=UTC) == ended - timedelta(minutes=45)
    assert record.evidence["xapi_statement"] == statement

    again = (await client.post(URL, json=[statement], headers=bearer(token))).json()
    assert again["results"][0]["status"] == "duplicate"
    assert again["results"][0]["record_id"] == created["record_id"]
    changed = {**statement, "result": {"completion": True, "duration": "PT50M"}}
    conflict = (await client.post(URL, json=changed, headers=bearer(token))).json()["results"][0]
    assert conflict["status"] == "conflict" and conflict["record_id"] == created["record_id"]
    count = await db.execute(
        select(LearningRecord.id).where(LearningRecord.source_client == client_id)
    )
    assert len(count.all()) == 1


async def test_a_started_at_extension_sets_the_start_of_a_stretch_with_pauses(
    session_client, issue_token
) -> None:
    client, db = session_client
    client_id, token = _partner(issue_token)
    course = await _online_course(client, issue_token, client_id)
    number, _ = new_learner()
    ended = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    began = ended - timedelta(hours=2)
    paused = _statement(
        number,
        course,
        ended,
        duration="PT1H20M30S",
        verb=ATTENDED,
        context={"extensions": {STARTED_AT: began.isoformat()}},
    )
    squeezed = _statement(
        number,
        course,
        began,
        duration="PT3H",
        context={"extensions": {STARTED_AT: (began - timedelta(hours=2)).isoformat()}},
    )
    body = (await client.post(URL, json=[paused, squeezed], headers=bearer(token))).json()
    assert [r["status"] for r in body["results"]] == ["created", "rejected"]
    assert body["results"][1]["errors"] == [
        {"field": "result.duration", "reason": "more minutes than the interval holds"}
    ]
    record = await db.get(LearningRecord, body["results"][0]["record_id"])
    assert record is not None and record.minutes == 80
    assert record.started_at.replace(tzinfo=UTC) == began


async def test_statements_that_carry_no_learning_time_here_are_rejected_one_by_one(
    session_client, issue_token
) -> None:
    client, _ = session_client
    client_id, token = _partner(issue_token)
    course = await _online_course(client, issue_token, client_id)
    foreign = await _online_course(client, issue_token, "someone-else")
    (a, _), (b, _) = new_learner(), new_learner()
    day = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)

    def at(hours: int, learner: str = a, **overrides: object) -> dict:
        return _statement(learner, course, day + timedelta(hours=hours), **overrides)

    good = at(0)
    no_duration = at(3)
    no_duration["result"] = {"completion": True}
    no_timestamp = at(4)
    del no_timestamp["timestamp"]
    no_id = at(5)
    del no_id["id"]
    group = at(6)
    group["actor"] = {"objectType": "Group", "member": [good["actor"]]}
    items = [
        good,  # 0
        at(1, verb="http://adlnet.gov/expapi/verbs/experienced"),  # 1
        at(2, verb="http://adlnet.gov/expapi/verbs/voided"),  # 2
        no_duration,  # 3
        at(7, duration="P1M"),  # 4
        at(8, duration="PT30S"),  # 5
        no_timestamp,  # 6
        at(9, actor={"mbox": "mailto:someone@example.org"}),  # 7
        at(10, actor={"account": {"homePage": "https://other.example", "name": a}}),  # 8
        at(11, object={"id": "https://other.example/courses/1"}),  # 9
        at(12, object={"id": ACTIVITY_IRI_PREFIX + foreign}),  # 10
        at(13, learner="41071100000000"),  # 11
        group,  # 12
        no_id,  # 13
        {**at(14), "id": good["id"]},  # 14
        {**at(15), "foo": 1},  # 15
        at(16, timestamp=(day + timedelta(hours=16)).replace(tzinfo=None).isoformat()),  # 16
        "hello",  # 17
        at(0, duration="PT20M"),  # 18 overlaps 0
        at(1, learner=b, duration="PT1H30M"),  # 19
        at(17, version="0.95"),  # 20
        at(18, actor={**good["actor"], "mbox": "mailto:x@example.org"}),  # 21
    ]
    response = await client.post(URL, json=items, headers=bearer(token))
    assert response.status_code == 200, response.text
    body = response.json()
    results = body["results"]
    assert [r["index"] for r in results] == list(range(len(items)))
    assert [i for i, r in enumerate(results) if r["status"] == "created"] == [0, 19]
    assert results[19]["record_id"] is not None
    fields = {i: r["errors"][0]["field"] for i, r in enumerate(results) if r["errors"]}
    assert fields == {
        1: "verb.id",
        2: "verb.id",
        3: "result.duration",
        4: "result.duration",
        5: "result.duration",
        6: "timestamp",
        7: "actor.account",
        8: "actor.account.homePage",
        9: "object.id",
        10: "object.id",
        11: "actor.account.name",
        12: fields[12],
        13: "id",
        14: "id",
        15: "foo",
        16: "timestamp",
        17: "statement",
        18: "timestamp",
        20: "version",
        21: "actor",
    }
    assert fields[12].startswith("actor.")
    reasons = {i: r["errors"][0]["reason"] for i, r in enumerate(results) if r["errors"]}
    assert reasons[2] == "voiding is not taken here: ask staff to void the record"
    assert reasons[4].startswith("years and months have no fixed length")
    assert reasons[5] == "shorter than one minute"
    assert reasons[10] == "unknown activity, or not one of this partner's"
    assert reasons[11] == "unknown learning account number"
    assert reasons[14] == "repeats statement 0"
    assert reasons[18] == "overlaps a stretch already recorded for this learner"
    assert results[13]["id"] is None and results[14]["id"] == good["id"]
    assert (body["created"], body["rejected"]) == (2, 20)


async def test_bad_envelopes_and_callers_are_refused(client, issue_token) -> None:
    _, token = _partner(issue_token)
    for content in (b"not json", b"[]", b'"a statement"', b"3"):
        response = await client.post(URL, content=content, headers=bearer(token))
        assert response.status_code == 422, content
        assert response.json()["type"].endswith("/invalid-batch")
    many = await client.post(URL, json=[{}] * 1001, headers=bearer(token))
    assert many.status_code == 422 and "1001" in many.json()["detail"]
    for caller in (
        issue_token("resident"),
        issue_token("staff", role="district_admin", unit="410711"),
    ):
        assert (await client.post(URL, json=[{}], headers=bearer(caller))).status_code == 403


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT45M", 2700),
        ("PT4H35M59.14S", Decimal("16559.14")),
        ("PT16559.14S", Decimal("16559.14")),
        ("P1DT2H", 93600),
        ("PT1,5H", 5400),
        ("P2W", 1_209_600),
        ("PT0S", 0),
    ],
)
def test_iso_8601_durations_are_read_in_seconds(text: str, seconds: Decimal) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["PT", "P", "1H", "PT1H30", "P1Y", "P1M", "PT-5M", "pt5m"])
def test_durations_without_a_fixed_length_or_form_are_refused(text: str) -> None:
    with pytest.raises(Refusal):
        duration_seconds(text)


async def test_a_statement_sent_again_matches_whatever_the_spec_lets_differ(
    session_client, issue_token
) -> None:
    client, _ = session_client
    client_id, token = _partner(issue_token)
    course = await _online_course(client, issue_token, client_id)
    number, _ = new_learner()
    ended = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    statement = _statement(number, course, ended)
    first = (await client.post(URL, json=statement, headers=bearer(token))).json()
    assert first["created"] == 1
    # xAPI 1.0.3 part two 2.3.1: the timestamp's notation, the id's case, what an LRS may
    # assign (version, stored, authority), the Verb's display and the Activity Definition are
    # no part of the comparison
    beijing = timezone(timedelta(hours=8))
    again = [
        {**statement, "timestamp": ended.astimezone(beijing).isoformat()},
        {**statement, "id": statement["id"].upper()},
        {**statement, "version": "1.0.3", "stored": datetime.now(UTC).isoformat()},
        {
            **statement,
            "verb": {"id": COMPLETED},
            "object": {**statement["object"], "definition": {}},
        },
    ]
    for sent in again:
        result = (await client.post(URL, json=sent, headers=bearer(token))).json()["results"][0]
        assert (result["status"], result["record_id"]) == (
            "duplicate",
            first["results"][0]["record_id"],
        ), sent
    # the rest must match: another duration is another statement
    changed = {**statement, "result": {"completion": True, "duration": "PT2700S"}}
    result = (await client.post(URL, json=changed, headers=bearer(token))).json()["results"][0]
    assert result["status"] == "conflict"


async def test_statements_no_record_can_hold_are_refused_not_failed(client, issue_token) -> None:
    client_id, token = _partner(issue_token)
    course = await _online_course(client, issue_token, client_id)
    number, _ = new_learner()
    ended = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    items = [
        _statement(number, course, ended, duration="PT99999999999999999999H"),
        _statement(number, course, ended, duration="P99999999D"),
        _statement(number, course, ended, duration="PT" + "9" * 500 + "S"),
        _statement(number, course, datetime(1, 1, 1, 0, 10, tzinfo=UTC)),
        _statement(number, course, ended, result={"duration": "PT45M", "score": {"raw": NAN}}),
    ]
    content = json.dumps(items).encode()  # NaN as Python writes it, which is not JSON
    response = await client.post(URL, content=content, headers=bearer(token))
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["rejected"] * 5
    assert [r["errors"][0]["field"] for r in results] == [
        "result.duration",
        "result.duration",
        "result.duration",
        "timestamp",
        "statement",
    ]
    deep = b"[" * 100_000 + b"]" * 100_000
    response = await client.post(URL, content=deep, headers=bearer(token))
    assert response.status_code == 422 and response.json()["type"].endswith("/invalid-batch")

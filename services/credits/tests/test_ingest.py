"""Partner batches: per-item results, good items kept, retries no-ops, never stored twice."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select

from credits.ingest import parsing
from credits.ingest.learners import LearnerDirectory
from credits.ingest.parsing import parse_batch
from credits.ingest.service import CHINA
from credits.records.models import LearningRecord
from testkit.http import bearer

from .conftest import LEARNERS

_numbers = itertools.count(1)


def _learner(status: str = "active") -> str:
    number = f"4107119{next(_numbers):06d}X"[:14]
    LEARNERS[number] = (uuid.uuid4(), status)
    return number


async def _online_course(client: httpx.AsyncClient, issue_token, partner: str) -> str:  # type: ignore[no-untyped-def]
    staff = issue_token("staff", role="college_staff", unit="410711")
    response = await client.post(
        "/api/v1/activities",
        json={
            "title": "智能手机应用（线上）",
            "kind": "online_course",
            "category": "digital_skills",
            "mode": "online",
            "partner": partner,
        },
        headers=bearer(staff),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _item(
    record_id: str, learner: str, activity: str, start: datetime, minutes: int = 30, **extra: object
) -> dict:
    return {
        "id": record_id,
        "learner": learner,
        "activity": activity,
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=minutes)).isoformat(),
        "minutes": minutes,
        **extra,
    }


async def _post(
    client: httpx.AsyncClient, token: str, items: list[dict], key: str | None = None
) -> httpx.Response:
    headers = bearer(token) | ({"Idempotency-Key": key} if key else {})
    return await client.post(
        "/api/v1/learning-records:batch", json={"records": items}, headers=headers
    )


async def _stored(db, client_id: str) -> int:  # type: ignore[no-untyped-def]
    query = (
        select(func.count())
        .select_from(LearningRecord)
        .where(LearningRecord.source_client == client_id)
    )
    return int((await db.execute(query)).scalar_one())


async def test_a_mixed_batch_keeps_the_good_items_and_says_why_each_bad_one_failed(
    session_client, issue_token
) -> None:
    client, db = session_client
    partner = f"mooc-{uuid.uuid4().hex[:6]}"
    token = issue_token("partner", client_id=partner)
    course = await _online_course(client, issue_token, partner)
    foreign = await _online_course(client, issue_token, "someone-else")
    ok, frozen, busy = _learner(), _learner("frozen"), _learner()
    day = datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0) - timedelta(days=2)
    items = [
        _item("good-1", ok, course, day),  # 0
        _item("good-2", ok, course, day + timedelta(hours=1)),  # 1
        _item("nobody", "41071199999999", course, day),  # 2 unknown learner
        _item("frozen", frozen, course, day),  # 3 frozen learner
        _item("foreign", ok, foreign, day + timedelta(hours=3)),  # 4 not this partner's activity
        {
            **_item("backwards", ok, course, day),
            "end": (day - timedelta(minutes=5)).isoformat(),
        },  # 5
        _item("stuffed", ok, course, day + timedelta(hours=4), minutes=30) | {"minutes": 90},  # 6
        _item("future", ok, course, datetime.now(UTC) + timedelta(hours=2)),  # 7
        _item("overlap", ok, course, day + timedelta(minutes=10)),  # 8 overlaps good-1
        {"id": "shapeless", "learner": ok},  # 9 missing fields
        _item("good-1", ok, course, day + timedelta(hours=6)),  # 10 repeats item 0's id
    ]
    # a Beijing-time day three days ago: 23 hours of stretches, then one starting at 23:00 that
    # runs two hours past midnight; stretches count on the day they start, so it is refused
    midnight = (datetime.now(CHINA) - timedelta(days=3)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    items += [
        _item(f"long-{n}", busy, course, midnight + timedelta(hours=n), minutes=60)
        for n in range(23)
    ]
    items.append(_item("too-much", busy, course, midnight + timedelta(hours=23), minutes=120))
    response = await _post(client, token, items)
    assert response.status_code == 200, response.text
    body = response.json()
    status = {r["index"]: r for r in body["results"]}
    assert len(status) == len(items)
    assert [status[i]["status"] for i in (0, 1)] == ["created", "created"]
    reasons = {
        i: (status[i]["errors"][0]["field"], status[i]["errors"][0]["reason"]) for i in range(2, 11)
    }
    assert reasons[2] == ("learner", "unknown learning account number")
    assert reasons[3] == ("learner", "the learning account is frozen")
    assert reasons[4][0] == "activity"
    assert reasons[5] == ("end", "end must be after start")
    assert reasons[6] == ("minutes", "more minutes than the interval holds")
    assert reasons[7] == ("end", "the stretch ends in the future")
    assert reasons[8] == ("start", "overlaps a stretch already recorded for this learner")
    assert reasons[9][0] in {"activity", "start", "end", "minutes"}
    assert reasons[10] == ("id", "repeats item 0 of this batch")
    assert all(status[i]["status"] == "created" for i in range(11, 34))
    assert status[34]["errors"][0]["reason"] == "more than 24 hours in one day for this learner"
    assert (body["created"], body["rejected"]) == (25, 10)
    assert await _stored(db, partner) == 25


async def test_a_retried_batch_changes_nothing_and_changed_content_is_a_conflict(
    session_client, issue_token
) -> None:
    client, db = session_client
    partner = f"mooc-{uuid.uuid4().hex[:6]}"
    token = issue_token("partner", client_id=partner)
    course = await _online_course(client, issue_token, partner)
    learner = _learner()
    start = datetime.now(UTC) - timedelta(days=1)
    items = [_item(f"r{n}", learner, course, start + timedelta(hours=n)) for n in range(3)]
    first = (await _post(client, token, items)).json()
    again = (await _post(client, token, items)).json()
    assert [r["status"] for r in again["results"]] == ["duplicate"] * 3
    assert [r["record_id"] for r in again["results"]] == [r["record_id"] for r in first["results"]]
    assert await _stored(db, partner) == 3
    changed = [_item("r0", learner, course, start, minutes=20)]
    conflict = (await _post(client, token, changed)).json()["results"][0]
    assert (
        conflict["status"] == "conflict"
        and conflict["record_id"] == first["results"][0]["record_id"]
    )
    assert await _stored(db, partner) == 3


async def test_a_record_shows_the_evidence_its_partner_sent_and_nothing_of_ours(
    client, issue_token
) -> None:
    partner = f"mooc-{uuid.uuid4().hex[:6]}"
    course = await _online_course(client, issue_token, partner)
    learner = _learner()
    evidence = {"platform_course": "C-17", "score": 92}
    start = datetime.now(UTC) - timedelta(days=1)
    item = _item("e1", learner, course, start, evidence=evidence)
    posted = await _post(client, issue_token("partner", client_id=partner), [item])
    assert posted.json()["results"][0]["status"] == "created", posted.text
    resident = issue_token("resident", subject=str(LEARNERS[learner][0]))
    mine = (await client.get("/api/v1/me/records", headers=bearer(resident))).json()["items"]
    assert [r["evidence"] for r in mine] == [evidence]


async def test_idempotency_key_replays_the_stored_answer(session_client, issue_token) -> None:
    client, db = session_client
    partner = f"mooc-{uuid.uuid4().hex[:6]}"
    token = issue_token("partner", client_id=partner)
    course = await _online_course(client, issue_token, partner)
    items = [_item("k1", _learner(), course, datetime.now(UTC) - timedelta(hours=5))]
    first = await _post(client, token, items, key="batch-0001")
    replay = await _post(client, token, items, key="batch-0001")
    assert replay.json() == first.json() and replay.json()["results"][0]["status"] == "created"
    assert replay.headers["idempotent-replay"] == "true"
    other = await _post(client, token, [{**items[0], "minutes": 10}], key="batch-0001")
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")
    assert await _stored(db, partner) == 1


async def test_bad_envelopes_and_callers_are_refused(client, issue_token) -> None:
    token = issue_token("partner", client_id="mooc-envelope")
    for body in (b"not json", b'{"records": []}', b'{"rows": [1]}'):
        response = await client.post(
            "/api/v1/learning-records:batch", content=body, headers=bearer(token)
        )
        assert response.status_code == 422 and response.json()["type"].endswith("/invalid-batch")
    too_many = {"records": [{"id": str(n)} for n in range(1001)]}
    response = await client.post(
        "/api/v1/learning-records:batch", json=too_many, headers=bearer(token)
    )
    assert response.status_code == 422 and "1001" in response.json()["detail"]
    assert response.json()["type"].endswith("/batch-too-large")
    assert (response.json()["max_items"], response.json()["items"]) == (1000, 1001)
    resident = issue_token("resident")
    response = await client.post(
        "/api/v1/learning-records:batch", json={"records": [{}]}, headers=bearer(resident)
    )
    assert response.status_code == 403


async def test_concurrent_posts_of_one_record_id_store_exactly_one(
    credits_app, issue_token, credits_db
) -> None:
    # committed transactions here, not the rolled-back client: the race is the database's
    partner = f"mooc-{uuid.uuid4().hex[:6]}"
    token = issue_token("partner", client_id=partner)
    transport = httpx.ASGITransport(app=credits_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://credits") as client:
        course = await _online_course(client, issue_token, partner)
        item = _item("same-id", _learner(), course, datetime.now(UTC) - timedelta(hours=3))
        answers = await asyncio.gather(*(_post(client, token, [item]) for _ in range(12)))
    statuses = sorted(a.json()["results"][0]["status"] for a in answers)
    assert statuses == ["created"] + ["duplicate"] * 11
    assert len({a.json()["results"][0]["record_id"] for a in answers}) == 1
    async with credits_app.state.sessionmaker() as db:
        assert await _stored(db, partner) == 1


async def test_learners_are_asked_once_then_kept_for_the_cache_time(
    session_client, issue_token, credits_app
) -> None:
    client, db = session_client
    partner = f"mooc-{uuid.uuid4().hex[:6]}"
    token = issue_token("partner", client_id=partner)
    course = await _online_course(client, issue_token, partner)
    now = [1000.0]
    directory = LearnerDirectory(ttl_seconds=30, clock=lambda: now[0])
    kept, credits_app.state.learner_directory = credits_app.state.learner_directory, directory
    try:
        learner = _learner()
        start = datetime.now(UTC) - timedelta(days=1)
        first = await _post(client, token, [_item("c1", learner, course, start)])
        assert first.json()["created"] == 1 and directory.lookups == 1
        # closed in the accounts service: still accepted while the answer is kept...
        LEARNERS[learner] = (LEARNERS[learner][0], "closed")
        now[0] += 29
        second = await _post(
            client, token, [_item("c2", learner, course, start + timedelta(hours=1))]
        )
        assert second.json()["created"] == 1 and directory.lookups == 1
        # ...and refused once it has expired and is asked again
        now[0] += 2
        third = await _post(
            client, token, [_item("c3", learner, course, start + timedelta(hours=2))]
        )
        assert third.json()["results"][0]["errors"][0]["reason"] == "the learning account is closed"
        assert directory.lookups == 2
        # numbers the accounts service does not know are asked again every time, never kept
        for _ in range(2):
            await _post(client, token, [_item("c4", "41071199999999", course, start)])
        assert directory.lookups == 4
    finally:
        credits_app.state.learner_directory = kept
    assert await _stored(db, partner) == 2


def test_the_learner_cache_keeps_at_most_its_bound() -> None:
    directory = LearnerDirectory(ttl_seconds=30, max_entries=3, clock=lambda: 0.0)
    directory._keep({f"n{i}": (uuid.uuid4(), "active") for i in range(5)}, expires_at=30.0)
    assert list(directory._entries) == ["n2", "n3", "n4"]


def test_a_clean_body_parses_in_one_call_as_item_by_item() -> None:
    items = [
        {
            "id": "a",
            "learner": "41071100000001",
            "activity": str(uuid.uuid4()),
            "start": "2026-03-02T09:00:00+08:00",
            "end": "2026-03-02T01:30:00Z",
            "minutes": 30,
        },
    ]
    body = json.dumps({"records": items, "note": "ignored"}).encode()
    fast = parse_batch(body)
    slow = parsing.parse_items(json.loads(body)["records"])
    assert fast.records == slow.records and fast.refused == slow.refused == []
    assert fast.records[0].end - fast.records[0].start == timedelta(minutes=30)


async def _committed_posts(credits_app, issue_token, bodies) -> list[dict]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=credits_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://credits") as client:
        return [a.json() for a in await asyncio.gather(*(_post(client, *body) for body in bodies))]


async def test_concurrent_batches_never_store_two_overlapping_stretches(
    credits_app, issue_token
) -> None:
    # committed transactions: each batch decides without the others' rows, the database decides
    partner = f"mooc-{uuid.uuid4().hex[:6]}"
    token = issue_token("partner", client_id=partner)
    transport = httpx.ASGITransport(app=credits_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://credits") as client:
        course = await _online_course(client, issue_token, partner)
    learner = _learner()
    start = datetime.now(UTC) - timedelta(days=2)
    bodies = [
        (token, [_item(f"o{n}", learner, course, start + timedelta(minutes=10 * n), minutes=30)])
        for n in range(8)
    ]
    answers = await _committed_posts(credits_app, issue_token, bodies)
    results = [a["results"][0] for a in answers]
    created = [r for r in results if r["status"] == "created"]
    assert {r["errors"][0]["reason"] for r in results if r["status"] != "created"} == {
        "overlaps a stretch already recorded for this learner"
    }
    async with credits_app.state.sessionmaker() as db:
        stored = (
            await db.execute(
                select(LearningRecord.started_at, LearningRecord.ended_at)
                .where(LearningRecord.learner_id == LEARNERS[learner][0])
                .order_by(LearningRecord.started_at)
            )
        ).all()
    assert len(stored) == len(created) >= 1
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(stored))  # no two overlap


async def test_concurrent_batches_never_push_a_day_past_24_hours(credits_app, issue_token) -> None:
    partner = f"mooc-{uuid.uuid4().hex[:6]}"
    token = issue_token("partner", client_id=partner)
    transport = httpx.ASGITransport(app=credits_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://credits") as client:
        course = await _online_course(client, issue_token, partner)
    learner = _learner()
    midnight = (datetime.now(CHINA) - timedelta(days=4)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    # five batches of five hours each starting on one Beijing day, none overlapping (the last
    # runs past midnight): four fit in 24 hours
    bodies = [
        (token, [_item(f"d{n}", learner, course, midnight + timedelta(hours=5 * n), minutes=300)])
        for n in range(5)
    ]
    answers = await _committed_posts(credits_app, issue_token, bodies)
    results = [a["results"][0] for a in answers]
    assert sum(r["status"] == "created" for r in results) == 4
    assert {r["errors"][0]["reason"] for r in results if r["status"] != "created"} == {
        "more than 24 hours in one day for this learner"
    }
    async with credits_app.state.sessionmaker() as db:
        minutes = (
            await db.execute(
                select(func.sum(LearningRecord.minutes)).where(
                    LearningRecord.learner_id == LEARNERS[learner][0]
                )
            )
        ).scalar_one()
    assert minutes == 4 * 300


async def test_evidence_no_database_can_store_or_list_is_refused_item_by_item(
    session_client, issue_token
) -> None:
    client, db = session_client
    partner = f"mooc-{uuid.uuid4().hex[:6]}"
    token = issue_token("partner", client_id=partner)
    course = await _online_course(client, issue_token, partner)
    learner = _learner()
    start = datetime.now(UTC) - timedelta(days=1)
    good = json.dumps(_item("fine", learner, course, start, evidence={"score": 1.5}))
    # NaN and Infinity are not JSON (PostgreSQL refused the insert; SQLite stored text that
    # broke every retry), and evidence 500 levels deep could be stored but never listed
    nan = json.dumps(_item("nan", learner, course, start + timedelta(hours=1)))[:-1]
    deep = json.dumps(_item("deep", learner, course, start + timedelta(hours=2)))[:-1]
    body = (
        f'{{"records": [{good}, {nan}, "evidence": {{"score": NaN}}}},'
        f' {deep}, "evidence": {{"a": {"[" * 500 + "]" * 500}}}}}]}}'
    ).encode()
    for _ in range(2):  # and the retry answers the same
        response = await client.post(
            "/api/v1/learning-records:batch", content=body, headers=bearer(token)
        )
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert [r["status"] for r in results[1:]] == ["rejected", "rejected"]
        assert {r["errors"][0]["field"] for r in results[1:]} == {"evidence"}
    assert results[0]["status"] == "duplicate"
    resident = issue_token("resident", subject=str(LEARNERS[learner][0]))
    mine = await client.get("/api/v1/me/records", headers=bearer(resident))
    assert mine.status_code == 200 and [r["evidence"] for r in mine.json()["items"]] == [
        {"score": 1.5}
    ]
    # a body too deep for any JSON reader is not a batch
    response = await client.post(
        "/api/v1/learning-records:batch",
        content=b'{"records": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        headers=bearer(token),
    )
    assert response.status_code == 422 and response.json()["type"].endswith("/invalid-batch")
    assert await _stored(db, partner) == 1


async def test_times_at_the_ends_of_the_calendar_are_refused_item_by_item(
    client, issue_token
) -> None:
    partner = f"mooc-{uuid.uuid4().hex[:6]}"
    token = issue_token("partner", client_id=partner)
    course = await _online_course(client, issue_token, partner)
    learner = _learner()
    edges = [
        ("0001-01-01T00:00:00+08:00", "0001-01-01T07:00:00+08:00"),  # before year 1 in UTC
        ("9999-12-31T23:00:00-08:00", "9999-12-31T23:30:00-08:00"),  # after 9999 in UTC
        ("9999-12-31T20:00:00Z", "9999-12-31T20:30:00Z"),  # after 9999 in Beijing
    ]
    items = [
        {"id": f"edge-{n}", "learner": learner, "activity": course, "start": s, "end": e}
        | {"minutes": 1}
        for n, (s, e) in enumerate(edges)
    ]
    response = await _post(client, token, items)
    assert response.status_code == 200, response.text
    assert [r["status"] for r in response.json()["results"]] == ["rejected"] * 3
    assert {r["errors"][0]["field"] for r in response.json()["results"]} == {"start"}


async def test_one_idempotency_key_sent_at_once_with_two_bodies_replays_neither(
    credits_app, issue_token
) -> None:
    # committed transactions: both requests find no stored answer, the unique key decides
    partner = f"mooc-{uuid.uuid4().hex[:6]}"
    token = issue_token("partner", client_id=partner)
    transport = httpx.ASGITransport(app=credits_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://credits") as client:
        course = await _online_course(client, issue_token, partner)
    start = datetime.now(UTC) - timedelta(days=1)
    bodies = [
        (token, [_item(f"race-{n}", _learner(), course, start)], "same-key") for n in range(2)
    ]
    answers = await _committed_posts(credits_app, issue_token, bodies)
    assert sorted(a.get("status", 200) for a in answers) == [200, 422], answers
    assert [a["type"] for a in answers if "type" in a] == [
        "https://muye.example.org/problems/idempotency-key-reused"
    ]
    async with credits_app.state.sessionmaker() as db:
        assert await _stored(db, partner) == 1


async def test_a_record_of_no_whole_minute_is_refused_and_its_neighbours_kept(
    session_client, issue_token
) -> None:
    """A 0-minute stretch was stored and counted its learner as a participant in the
    statistics (an xAPI statement under a minute was already refused)."""
    client, db = session_client
    partner = f"mooc-{uuid.uuid4().hex[:6]}"
    token = issue_token("partner", client_id=partner)
    course = await _online_course(client, issue_token, partner)
    learner = _learner()
    day = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    answer = await _post(
        client,
        token,
        [_item("none", learner, course, day, minutes=0), _item("some", learner, course, day)],
    )
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["rejected", "created"], results
    reason = "at least one whole minute: a stretch of less is no learning"
    assert results[0]["errors"] == [{"field": "minutes", "reason": reason}]
    assert await _stored(db, partner) == 1

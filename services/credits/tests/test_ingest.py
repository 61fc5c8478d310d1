"""Partner batches: per-item results, good items kept, retries no-ops, never stored twice."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select

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

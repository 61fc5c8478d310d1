"""Registration figures for the statistics reports, on PostgreSQL and SQLite: counts of a unit's
residents' accounts in SQL, by group, for a period of Beijing days; staff see their own unit.
And the group lookup the credits service's report asks: places per group, for reading staff of
the report's unit, in one statement beyond SQLite's and asyncpg's parameter limits."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from sqlalchemy import event, select

from accounts.audit.models import AuditEntry
from accounts.learners.models import LearningAccount
from accounts.learners.statistics import GROUP_LOOKUP_LIMIT
from kernel import servicecalls

from .conftest import bearer, sign_in
from .test_learners import MUYE_TOWN, WANGCUN, new_account, village

PERIOD = {"from": "2026-01-01", "to": "2026-12-31"}


async def _open(client, token: str, residence: str, groups: list[str]) -> str:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/v1/learning-accounts",
        json=new_account(residence, groups=groups),
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_registrations_are_counted_per_unit_group_and_period(
    session_client, staff_factory
) -> None:
    client, session = session_client
    college = await staff_factory("college_staff", "410711")
    first, second = await village(client, WANGCUN, 0), await village(client, WANGCUN, 1)
    await _open(client, college, first, ["elderly", "rural_residents"])
    frozen = await _open(client, college, first, ["youth"])
    earlier = await _open(client, college, second, [])
    later = await _open(client, college, second, ["elderly"])
    await _open(client, college, await village(client, MUYE_TOWN), ["elderly"])
    # 00:30 on 1 January 2027 Beijing time is still 2026 in UTC: not registered by 2026's end
    for account, created in (
        (earlier, datetime(2025, 6, 1, tzinfo=UTC)),
        (later, datetime(2026, 12, 31, 16, 30, tzinfo=UTC)),
    ):
        row = await session.get(LearningAccount, uuid.UUID(account))
        assert row is not None
        row.created_at = created
    row = await session.get(LearningAccount, uuid.UUID(frozen))
    assert row is not None
    row.status = "frozen"
    await session.commit()
    staff = await staff_factory("school_staff", WANGCUN)
    response = await client.get(
        f"/api/v1/units/{WANGCUN}/registrations", params=PERIOD, headers=bearer(staff)
    )
    assert response.status_code == 200, response.text
    town = response.json()
    assert (town["population"], town["population_is_demo"]) == (45000, True)
    assert (town["registered"], town["active"], town["registered_in_period"]) == (3, 2, 2)
    assert town["by_group"] == {
        "elderly": 1, "youth": 1, "disabled": 0, "unemployed": 0, "migrant_workers": 0,
        "rural_residents": 1, "veterans": 0, "left_behind": 0,
    }  # fmt: skip
    auditor = await staff_factory("auditor", "410711")
    district = (
        await client.get(
            "/api/v1/units/410711/registrations", params=PERIOD, headers=bearer(auditor)
        )
    ).json()
    assert (district["registered"], district["by_group"]["elderly"]) == (4, 2)
    next_year = (
        await client.get(
            "/api/v1/units/410711/registrations",
            params={"from": "2027-01-01", "to": "2027-01-01"},
            headers=bearer(auditor),
        )
    ).json()
    assert (next_year["registered"], next_year["registered_in_period"]) == (5, 1)


async def test_staff_of_another_unit_are_refused(session_client, staff_factory) -> None:
    client, _ = session_client
    other = await staff_factory("school_staff", MUYE_TOWN)
    refused = await client.get(
        f"/api/v1/units/{WANGCUN}/registrations", params=PERIOD, headers=bearer(other)
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["detail_zh"]
    missing = await client.get(
        "/api/v1/units/999999/registrations", params=PERIOD, headers=bearer(other)
    )
    assert missing.status_code == 404


LOOKUP = "/api/v1/learner-groups/lookup"


async def _lookup(client, app, body: dict, token: str | None = None, *, key: bytes | None = None):  # type: ignore[no-untyped-def]
    """POST the lookup as the credits service does: signed with the service call key."""
    content = json.dumps(body).encode()
    signature = servicecalls.sign(key or app.state.service_key, "POST", LOOKUP, content)
    headers = {"content-type": "application/json", servicecalls.HEADER: signature}
    return await client.post(
        LOOKUP, content=content, headers=headers | (bearer(token) if token else {})
    )


async def test_group_lookup_answers_places_per_group(
    session_client, staff_factory, accounts_app
) -> None:
    client, db = session_client
    college = await staff_factory("college_staff", "410711")
    home = await village(client, WANGCUN)
    both = await _open(client, college, home, ["elderly", "rural_residents"])
    young = await _open(client, college, home, ["youth"])
    none = await _open(client, college, home, [])
    # lives in the other town and learned at Wangcun's activities: counted in Wangcun's report
    visitor = await _open(
        client, college, await village(client, MUYE_TOWN), ["elderly", "disabled"]
    )
    unknown = str(uuid.uuid4())
    asked = [unknown, both, young, none, visitor, both]
    staff = await staff_factory("school_staff", WANGCUN)
    response = await _lookup(client, accounts_app, {"unit": WANGCUN, "learners": asked}, staff)
    assert response.status_code == 200, response.text
    answer = response.json()
    # the unknown id names no account; one named twice is answered at both places
    assert (answer["unit"], answer["asked"], answer["found"]) == (WANGCUN, 6, 5)
    assert answer["groups"] == {
        "elderly": [1, 4, 5], "youth": [2], "disabled": [4], "unemployed": [],
        "migrant_workers": [], "rural_residents": [1, 5], "veterans": [], "left_behind": [],
    }  # fmt: skip
    # places only: no id, name or other personal data comes back
    for learner in (both, young, none, visitor, unknown):
        assert learner not in response.text
    assert "王秀英" not in response.text and "residence" not in response.text
    # and the lookup is on the audit trail, with who asked and how many
    (entry,) = (
        (
            await db.execute(
                select(AuditEntry).where(
                    AuditEntry.action == "learner_groups.lookup",
                    AuditEntry.target_id == WANGCUN,
                )
            )
        )
        .scalars()
        .all()
    )
    assert (entry.actor_role, entry.outcome) == ("school_staff", "ok")
    assert entry.after_digest is not None


async def test_group_lookup_says_which_residents_of_the_unit_were_not_listed(
    session_client, staff_factory, accounts_app
) -> None:
    """The report's participation counts the unit's residents wherever they learned: the lookup
    says how many of the learners it lists live in the unit (its learning points included) and
    gives the ids of the residents it did not list, and nobody else's."""
    client, db = session_client
    college = await staff_factory("college_staff", "410711")
    first, second = await village(client, WANGCUN, 0), await village(client, WANGCUN, 1)
    here = await _open(client, college, first, [])
    there = await _open(client, college, second, ["youth"])
    stayed_home = await _open(client, college, first, [])
    learned_online = await _open(client, college, second, [])
    visitor = await _open(client, college, await village(client, MUYE_TOWN), [])
    staff = await staff_factory("school_staff", WANGCUN)
    asked = [here, there, visitor, str(uuid.uuid4())]
    answer = (
        await _lookup(client, accounts_app, {"unit": WANGCUN, "learners": asked}, staff)
    ).json()
    assert answer["listed_residents"] == 2  # here and there; the visitor lives elsewhere
    assert sorted(answer["other_residents"]) == sorted([stayed_home, learned_online])
    # a learning point: only its own residents
    point = (
        await _lookup(client, accounts_app, {"unit": first, "learners": [there]}, staff)
    ).json()
    assert (point["listed_residents"], sorted(point["other_residents"])) == (
        0,
        sorted([here, stayed_home]),
    )
    # a report that counted nobody at the unit's activities still asks after its residents
    nobody = await _lookup(client, accounts_app, {"unit": WANGCUN, "learners": []}, staff)
    assert nobody.status_code == 200, nobody.text
    assert nobody.json()["listed_residents"] == 0 and nobody.json()["groups"]["youth"] == []
    assert sorted(nobody.json()["other_residents"]) == sorted(
        [here, there, stayed_home, learned_online]
    )
    assert visitor not in nobody.text and "王秀英" not in nobody.text
    # who lives where is on the trail too: how many were given, and a digest of their ids
    entries = (
        (
            await db.execute(
                select(AuditEntry)
                .where(AuditEntry.action == "learner_groups.lookup")
                .order_by(AuditEntry.seq)  # type: ignore[arg-type]
            )
        )
        .scalars()
        .all()
    )
    assert len(entries) == 3 and all(e.after_digest for e in entries)
    assert len({e.after_digest for e in entries}) == 3


async def test_group_lookup_is_for_reading_staff_of_the_unit(
    session_client, staff_factory, accounts_app
) -> None:
    client, _ = session_client
    college = await staff_factory("college_staff", "410711")
    mine = await client.post(
        "/api/v1/learning-accounts",
        json=new_account(await village(client, WANGCUN), groups=["disabled"]),
        headers=bearer(college),
    )
    body = {"unit": WANGCUN, "learners": [mine.json()["id"]]}
    resident = (await sign_in(client, mine.json()["account_number"], "resident-pass-1"))[
        "access_token"
    ]
    assert (await _lookup(client, accounts_app, body)).status_code == 401
    for token in (resident, await staff_factory("school_staff", MUYE_TOWN)):
        refused = await _lookup(client, accounts_app, body, token)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["detail_zh"] and "disabled" not in refused.text
    unknown_unit = await _lookup(client, accounts_app, {**body, "unit": "999999"}, college)
    assert unknown_unit.status_code == 404
    for role, unit in (("auditor", "410711"), ("school_staff", WANGCUN)):
        token = await staff_factory(role, unit)
        answer = await _lookup(client, accounts_app, {**body, "unit": unit}, token)
        assert answer.status_code == 200, answer.text
        assert answer.json()["groups"]["disabled"] == [0]


async def test_group_lookup_takes_its_whole_limit_in_one_statement(
    session_client, staff_factory, accounts_app
) -> None:
    """Beyond SQLite's 32,766 and asyncpg's 32,767 bound parameters; more is refused (422)."""
    client, _ = session_client
    college = await staff_factory("college_staff", "410711")
    home = await village(client, WANGCUN)
    known = [await _open(client, college, home, ["veterans"]) for _ in range(2)]
    learners = [str(uuid.uuid4()) for _ in range(GROUP_LOOKUP_LIMIT)]
    learners[40_000], learners[-1] = known
    auditor = await staff_factory("auditor", "410711")
    read: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if "learning_account" in statement:
            read.append(statement)

    engine = accounts_app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        response = await _lookup(
            client, accounts_app, {"unit": "410711", "learners": learners}, auditor
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert response.status_code == 200, response.text[:500]
    # all of them at once, not in chunks: on PostgreSQL one statement answers everything; on
    # SQLite one reads the groups and one the unit's residents
    postgres = accounts_app.state.engine.dialect.name == "postgresql"
    assert len(read) == (1 if postgres else 2)
    answer = response.json()
    assert (answer["asked"], answer["found"]) == (GROUP_LOOKUP_LIMIT, 2)
    assert (answer["listed_residents"], answer["other_residents"]) == (2, [])
    assert answer["groups"]["veterans"] == [40_000, GROUP_LOOKUP_LIMIT - 1]
    over = {"unit": "410711", "learners": [*learners, str(uuid.uuid4())]}
    too_many = await _lookup(client, accounts_app, over, auditor)
    assert too_many.status_code == 422
    assert too_many.headers["content-type"].startswith("application/problem+json")


async def test_group_lookup_refuses_ids_not_written_as_credits_writes_them(
    session_client, staff_factory, accounts_app
) -> None:
    """Ids are taken as text, lowercase and hyphenated (str(uuid)), and go to the database and
    the audit digest as they came: any other spelling is refused, naming its place."""
    client, _ = session_client
    college = await staff_factory("college_staff", "410711")
    learner = await _open(client, college, await village(client, WANGCUN), ["veterans"])
    for spelling in (learner.upper(), learner.replace("-", ""), "{" + learner + "}", "x"):
        body = {"unit": WANGCUN, "learners": [learner, spelling]}
        refused = await _lookup(client, accounts_app, body, college)
        assert refused.status_code == 422, (spelling, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
        problem = refused.json()
        assert problem["type"].endswith("/validation-error")
        assert [e["location"] for e in problem["errors"]] == [["body", "learners", "1"]]
    answer = await _lookup(client, accounts_app, {"unit": WANGCUN, "learners": [learner]}, college)
    assert answer.status_code == 200, answer.text
    assert answer.json()["groups"]["veterans"] == [0]


async def test_group_lookup_answers_the_credits_service_only(
    session_client, staff_factory, accounts_app
) -> None:
    """A staff token that may read the unit is not enough: the request must be signed with the
    service call key, for this very body (a signature cannot be reused to ask for other ids)."""
    client, _ = session_client
    college = await staff_factory("college_staff", "410711")
    learner = await _open(client, college, await village(client, WANGCUN), ["disabled"])
    body = {"unit": WANGCUN, "learners": [learner]}
    staff = await staff_factory("school_staff", WANGCUN)
    signed = json.dumps(body).encode()
    signature = servicecalls.sign(accounts_app.state.service_key, "POST", LOOKUP, signed)
    other_ids = json.dumps({**body, "learners": [learner, str(uuid.uuid4())]}).encode()
    refused = [
        await client.post(LOOKUP, json=body, headers=bearer(staff)),  # unsigned
        await _lookup(client, accounts_app, body, staff, key=bytes(32)),  # another key
        await client.post(  # the signature of one body sent with another
            LOOKUP,
            content=other_ids,
            headers=bearer(staff)
            | {"content-type": "application/json", servicecalls.HEADER: signature},
        ),
    ]
    for response in refused:
        assert response.status_code == 403, response.text
        assert response.json()["type"].endswith("/service-signature-required")
        assert "disabled" not in response.text
    assert (await _lookup(client, accounts_app, body, staff)).status_code == 200

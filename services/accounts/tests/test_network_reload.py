"""Loading the network again with units under other parents: the units' residents keep a copy
of their unit's path (``residence_path``, read by the account list, the registration counts and
the import's "outside your unit" check), rewritten with the unit's path in the same transaction
and audited."""

from __future__ import annotations

import copy
import uuid

from sqlalchemy import select, text
from sqlmodel import col

from accounts.learners.models import LearningAccount
from accounts.network.models import Unit
from accounts.network.service import load_network, muye_network

from .conftest import bearer
from .test_learners import new_account, village

WANGCUN, MUYE, THIRD = "410711100", "410711101", "410711400"


def _moved(**parents: str) -> dict:  # type: ignore[type-arg]
    """The shipped network with the units named given other parents."""
    network = copy.deepcopy(muye_network())
    for unit in network["units"]:
        if unit["key"] in parents:
            unit["parent"] = parents[unit["key"]]
    return network


async def _registered(client, token: str, unit: str) -> int:  # type: ignore[no-untyped-def]
    answer = await client.get(
        f"/api/v1/units/{unit}/registrations",
        params={"from": "2026-01-01", "to": "2030-12-31"},
        headers=bearer(token),
    )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["registered"])


async def _listed(client, token: str) -> set[str]:  # type: ignore[no-untyped-def]
    ids: set[str] = set()
    cursor = None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        page = await client.get("/api/v1/learning-accounts", params=params, headers=bearer(token))
        assert page.status_code == 200, page.text
        ids |= {a["id"] for a in page.json()["items"]}
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return ids


async def _paths(session, ids: list[str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Each account's residence_path, next to its unit's path (they must agree)."""
    rows = await session.execute(
        select(LearningAccount.id, LearningAccount.residence_path, Unit.path)
        .join(Unit, col(Unit.id) == col(LearningAccount.residence_unit_id))
        .where(col(LearningAccount.id).in_([uuid.UUID(i) for i in ids]))
    )
    found = {}
    for account, residence_path, unit_path in rows:
        assert residence_path == unit_path, (residence_path, unit_path)
        found[str(account)] = residence_path
    return found


async def test_a_village_under_another_town_takes_its_residents_along(
    session_client, staff_factory
) -> None:
    client, session = session_client
    college = await staff_factory("college_staff", "410711")
    moving = await village(client, WANGCUN)
    resident = await client.post(
        "/api/v1/learning-accounts", json=new_account(moving), headers=bearer(college)
    )
    assert resident.status_code == 201, resident.text
    account = resident.json()["id"]
    old_staff = await staff_factory("school_staff", WANGCUN)
    new_staff = await staff_factory("school_staff", MUYE)
    before = (await _registered(client, college, WANGCUN), await _registered(client, college, MUYE))
    assert account in await _listed(client, old_staff)

    report = await load_network(session=session, data=_moved(**{moving: MUYE}))
    await session.commit()

    assert (await _paths(session, [account]))[account] == f"/410711/{MUYE}/{moving}/"
    assert account not in await _listed(client, old_staff)
    assert account in await _listed(client, new_staff)
    after = (await _registered(client, college, WANGCUN), await _registered(client, college, MUYE))
    assert after == (before[0] - 1, before[1] + 1)
    entries = (
        await session.execute(
            text(
                "SELECT actor, target_type, target_id FROM audit_entry"
                " WHERE action = 'unit.path' ORDER BY seq"
            )
        )
    ).all()
    assert [tuple(e) for e in entries] == [("system:network-data", "unit", moving)]
    assert (report["updated"], report["residents_moved"]) == (1, 1), report

    again = await load_network(session=session, data=_moved(**{moving: MUYE}))
    assert (again["updated"], again["residents_moved"]) == (0, 0)  # nothing left to move


async def test_a_moved_town_and_a_village_leaving_it_both_end_where_their_units_are(
    session_client, staff_factory
) -> None:
    """Not a prefix rewrite: the town's move rewrites the leaving village's path first, so its
    old prefix no longer matches what its residents would hold."""
    client, session = session_client
    college = await staff_factory("college_staff", "410711")
    staying, leaving = await village(client, WANGCUN, 0), await village(client, WANGCUN, 1)
    ids = []
    for residence in (staying, leaving):
        made = await client.post(
            "/api/v1/learning-accounts", json=new_account(residence), headers=bearer(college)
        )
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])

    report = await load_network(session=session, data=_moved(**{WANGCUN: MUYE, leaving: THIRD}))
    await session.commit()
    assert await _paths(session, ids) == {
        ids[0]: f"/410711/{MUYE}/{WANGCUN}/{staying}/",
        ids[1]: f"/410711/{THIRD}/{leaving}/",
    }
    assert report["residents_moved"] >= 2, report
    third = await staff_factory("school_staff", THIRD)
    assert ids[1] in await _listed(client, third) and ids[0] not in await _listed(client, third)


async def test_every_unit_created_or_changed_by_a_reload_is_audited(session_client) -> None:
    """Not only moves: a population changed (a rate's denominator) and a unit added are on
    the trail, with the fields before and after; a reload that changes nothing writes none."""
    _, session = session_client
    network = copy.deepcopy(muye_network())
    town = next(u for u in network["units"] if u["key"] == WANGCUN)
    town["population"] = (town.get("population") or 0) + 1000
    network["units"].append(
        {"key": "410711100999", "name": "新建社区", "level": "learning_point", "parent": WANGCUN}
    )
    start = (await session.execute(text("SELECT seq FROM audit_head"))).scalar_one()
    await load_network(session=session, data=network, actor="cli:test-ops")
    await load_network(session=session, data=network, actor="cli:test-ops")  # no change
    await session.commit()
    trail = await session.execute(
        text(
            "SELECT action, target_id, actor, before_digest IS NOT NULL FROM audit_entry"
            " WHERE seq > :s ORDER BY seq"
        ),
        {"s": start},
    )
    assert [tuple(r) for r in trail] == [
        ("unit.update", WANGCUN, "cli:test-ops", True),
        ("unit.create", "410711100999", "cli:test-ops", False),
    ]

"""Answers that confirm an ID number is registered are audited, naming the account, even when
the request fails or is a dry run (they can be used to test guesses at a masked number)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from testkit.people import id_number

from .conftest import bearer
from .test_import import _csv, _upload
from .test_learners import MUYE_TOWN, WANGCUN, new_account, village


async def _entries(session: AsyncSession, action: str) -> list[dict]:
    rows = await session.execute(
        text(
            "SELECT actor, target_type, target_id, reason, outcome FROM audit_entry"
            " WHERE action = :a ORDER BY seq"
        ),
        {"a": action},
    )
    return [dict(r._mapping) for r in rows]


async def _subject(client, token: str) -> str:  # type: ignore[no-untyped-def]
    return str((await client.get("/api/v1/me", headers=bearer(token))).json()["subject"])


def _row(name: str, number: str, residence: str) -> list[str]:
    return [name, number, "", residence, "老年人", "2026-01", "2026-10-01", "纸质"]


async def test_a_duplicate_refusal_is_audited_naming_the_existing_account(
    session_client, staff_factory
) -> None:
    client, session = session_client
    token = await staff_factory("learning_point_staff", WANGCUN)
    residence = await village(client, WANGCUN)
    number = id_number()
    first = await client.post(
        "/api/v1/learning-accounts",
        json=new_account(residence, id_number=number),
        headers=bearer(token),
    )
    assert first.status_code == 201, first.text
    before = len(await _entries(session, "learning_account.create.duplicate"))
    again = await client.post(
        "/api/v1/learning-accounts",
        json=new_account(residence, id_number=number, name="另一个人"),
        headers=bearer(token),
    )
    assert again.status_code == 409
    body = again.json()
    assert body["type"].endswith("/duplicate-account")
    assert set(body) <= {"type", "title", "status", "detail", "detail_zh", "request_id"}
    assert first.json()["id"] not in again.text  # the answer itself still names nothing
    entries = await _entries(session, "learning_account.create.duplicate")
    assert len(entries) == before + 1
    assert entries[-1] == {
        "actor": await _subject(client, token),
        "target_type": "learning_account",
        "target_id": first.json()["id"],
        "reason": "ID number already registered",
        "outcome": "refused",
    }


async def test_imports_audit_every_registered_account_a_row_matched(
    session_client, staff_factory
) -> None:
    client, session = session_client
    token = await staff_factory("school_staff", WANGCUN)
    residence = await village(client, WANGCUN)
    same, changed, new, outside = id_number(), id_number(), id_number(), id_number()
    created = await _upload(
        client,
        token,
        "a.csv",
        _csv([_row("同样", same, residence), _row("改名", changed, residence)]),
        dry_run=False,
    )
    assert created["created"] == 2
    listed = await client.get(
        "/api/v1/learning-accounts", params={"limit": 100}, headers=bearer(token)
    )
    ids = {a["name"]: a["id"] for a in listed.json()["items"]}
    elsewhere = await client.post(
        "/api/v1/learning-accounts",
        json=new_account(await village(client, MUYE_TOWN), id_number=outside),
        headers=bearer(await staff_factory("school_staff", MUYE_TOWN)),
    )
    assert elsewhere.status_code == 201, elsewhere.text
    probe = _csv(
        [
            _row("同样", same, residence),
            _row("改名了", changed, residence),
            _row("外镇", outside, residence),
            _row("新人", new, residence),
        ]
    )
    before = len(await _entries(session, "learning_account.import.match"))

    dry = await _upload(client, token, "b.csv", probe, dry_run=True)
    assert set(dry) == {
        "dry_run",
        "total",
        "created",
        "updated",
        "unchanged",
        "rejected",
        "problems",
    }
    assert (dry["created"], dry["updated"], dry["unchanged"], dry["rejected"]) == (1, 1, 1, 1)
    actor = await _subject(client, token)
    summary = (await _entries(session, "learning_account.import.dry_run"))[-1]
    assert summary["actor"] == actor
    assert summary["reason"] == "dry run: 3 of 4 rows matched registered accounts"
    matches = (await _entries(session, "learning_account.import.match"))[before:]
    assert {(m["target_id"], m["outcome"]) for m in matches} == {
        (ids["同样"], "unchanged"),
        (ids["改名"], "would_update"),
        (elsewhere.json()["id"], "outside_unit"),
    }
    assert all(m["actor"] == actor and m["reason"].startswith("dry run") for m in matches)

    # a real run names the accounts it leaves alone; the one it changes has its update entry
    await _upload(client, token, "b.csv", probe, dry_run=False)
    matches = (await _entries(session, "learning_account.import.match"))[before + 3 :]
    assert {(m["target_id"], m["outcome"]) for m in matches} == {
        (ids["同样"], "unchanged"),
        (elsewhere.json()["id"], "outside_unit"),
    }
    updated = await _entries(session, "learning_account.update")
    assert updated[-1]["target_id"] == ids["改名"]

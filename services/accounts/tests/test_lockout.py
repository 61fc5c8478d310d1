"""The sign-in lockout counts every wrong password, also when many arrive at once, and checks
none beyond the limit."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from accounts import SERVICE_ROOT, accountno
from accounts.config import Settings
from accounts.learners.models import LearningAccount
from accounts.main import create_app
from accounts.network.service import load_network, muye_network
from accounts.staff.service import ensure_staff
from kernel.clock import aware
from testkit.apps import running
from testkit.fixtures import migrated_database
from testkit.people import phone

from .test_signin import _resident

VICTIM = {
    "username": "victim",
    "display_name": "受害者",
    "password": "correct horse battery",
    "role": "learning_point_staff",
    "unit_key": "410711100",
}


async def _seed(session: AsyncSession) -> None:
    await load_network(session=session, data=muye_network())
    await ensure_staff(session=session, **VICTIM)


@pytest.fixture
def fresh_postgres_db(request: pytest.FixtureRequest) -> str:
    """A database of its own: these requests really commit, each in its own session."""
    return migrated_database(
        request,
        backend="postgresql",
        service="accounts_lockout",
        service_root=SERVICE_ROOT,
        seed=_seed,
    )


async def _failures(session: AsyncSession, table: str, key: str, value: str) -> tuple:
    row = (
        await session.execute(
            text(f"SELECT failed_sign_ins, locked_until FROM {table} WHERE {key} = :v"),
            {"v": value},
        )
    ).one()
    return int(row[0]), row[1]  # a datetime on PostgreSQL, text on SQLite


async def _newest_staff(session: AsyncSession) -> str:
    """The username of the staff member made last (by ``staff_factory``)."""
    return str(
        (
            await session.execute(
                text("SELECT username FROM staff_user ORDER BY created_at DESC LIMIT 1")
            )
        ).scalar_one()
    )


async def _staff_failures(session: AsyncSession, username: str) -> tuple:
    """A staff member's failed count and the time of the last failure."""
    return tuple(
        (
            await session.execute(
                text("SELECT failed_sign_ins, last_failed_at FROM staff_user WHERE username = :u"),
                {"u": username},
            )
        ).one()
    )


async def test_concurrent_wrong_passwords_lock_at_the_limit_and_no_more_are_checked(
    fresh_postgres_db: str, tmp_path: Path
) -> None:
    limit = 8
    settings = Settings(
        database_url=fresh_postgres_db,
        data_dir=tmp_path,
        log_level="WARNING",
        max_failed_sign_ins=limit,
    )
    async with running(create_app(settings)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def guess(n: int) -> int:
                answer = await client.post(
                    "/auth/token",
                    data={"grant_type": "password", "username": "victim", "password": f"g{n}"},
                )
                return answer.status_code

            # more at once than the limit: attempts on one account take turns, the limit-th
            # failure locks, and the ones after it are refused without their password checked
            extra = 4
            codes = await asyncio.gather(*(guess(n) for n in range(limit + extra)))
            assert sorted(codes) == [400] * limit + [429] * extra
            right = await client.post(
                "/auth/token",
                data={
                    "grant_type": "password",
                    "username": "victim",
                    "password": VICTIM["password"],
                },
            )
        async with AsyncSession(app.state.engine) as session:
            failed, locked_until = await _failures(session, "staff_user", "username", "victim")
            outcomes = (
                await session.execute(
                    text(
                        "SELECT outcome, count(*) FROM audit_entry"
                        " WHERE action = 'sign_in.failed' GROUP BY outcome"
                    )
                )
            ).all()
    assert failed == 0  # counted again from nought when the lock ends
    assert locked_until is not None and aware(locked_until) > datetime.now(UTC)
    assert right.status_code == 429
    assert dict(outcomes) == {"refused": limit - 1, "locked": 1, "locked_out": extra + 1}


async def test_wrong_passwords_count_one_by_one_for_staff_and_residents(
    session_client, staff_factory, accounts_settings
) -> None:
    client, session = session_client
    limit = accounts_settings.max_failed_sign_ins
    resident = await _resident(client, await staff_factory("school_staff", "410711100"))
    await staff_factory("learning_point_staff", "410711100")
    staff = await _newest_staff(session)
    for username, table, key in (
        (resident["account_number"], "learning_account", "account_number"),
        (staff, "staff_user", "username"),
    ):
        form = {"grant_type": "password", "username": username, "password": "wrong-password"}
        for n in range(1, limit + 1):
            assert (await client.post("/auth/token", data=form)).status_code == 400
            failed, locked_until = await _failures(session, table, key, username)
            assert failed == (n if n < limit else 0)  # the lock starts the count again
            assert (locked_until is not None) == (n == limit)
        locked = await client.post("/auth/token", data=form)
        assert locked.status_code == 429
        assert (await _failures(session, table, key, username))[0] == 0  # not counted


async def _answers(client: httpx.AsyncClient, username: str, times: int) -> list[tuple]:
    """Status, problem type and Retry-After of ``times`` wrong passwords under ``username``."""
    form = {"grant_type": "password", "username": username, "password": "wrong-password"}
    answers = []
    for _ in range(times):
        answer = await client.post("/auth/token", data=form)
        answers.append((answer.status_code, answer.json()["type"], "retry-after" in answer.headers))
    return answers


async def test_a_name_that_names_no_one_locks_as_a_registered_one_does(
    session_client, staff_factory, accounts_settings
) -> None:
    client, session = session_client
    limit = accounts_settings.max_failed_sign_ins
    resident = await _resident(client, await staff_factory("school_staff", "410711100"))
    unregistered = phone()
    assert unregistered != resident["phone"]

    registered_answers = await _answers(client, resident["phone"], limit + 2)
    unknown_answers = await _answers(client, unregistered, limit + 2)
    # the lockout says nothing about whether the phone is registered
    assert unknown_answers == registered_answers
    assert [a[0] for a in unknown_answers] == [400] * limit + [429] * 2

    kept = (await session.execute(text("SELECT * FROM unknown_name_attempts"))).mappings().all()
    assert len(kept) == 1  # the keyed hash of the name, never the name itself
    assert all(unregistered not in str(value) for value in kept[0].values())
    assert kept[0]["locked_until"] is not None and kept[0]["failed_sign_ins"] == 0
    outcomes = (
        await session.execute(
            text(
                "SELECT outcome, count(*) FROM audit_entry WHERE action = 'sign_in.failed'"
                " AND target_type = 'username' GROUP BY outcome"
            )
        )
    ).all()
    assert dict(outcomes) == {"refused": limit - 1, "locked": 1, "locked_out": 2}


async def test_the_case_of_a_check_x_says_nothing_about_whether_a_number_is_registered(
    session_client, staff_factory, accounts_settings
) -> None:
    """Sign-in finds "...x" as "...X"; the failures of an unknown number are counted under the
    same folded name, so "...x" then "...X" share one count for both, and the answers agree."""
    client, session = session_client
    limit = accounts_settings.max_failed_sign_ins
    resident = await _resident(client, await staff_factory("school_staff", "410711100"))
    numbers = (accountno.make("410711", n) for n in range(9_000_000, 9_000_100))
    registered, unregistered = [n for n in numbers if n.endswith("X")][:2]
    await session.execute(
        update(LearningAccount)
        .where(col(LearningAccount.id) == uuid.UUID(resident["id"]))
        .values(account_number=registered)
    )
    await session.commit()
    answers = {}
    for number in (registered, unregistered):
        lower = await _answers(client, number[:-1] + "x", limit)
        answers[number] = lower + await _answers(client, number, 1)
    assert answers[unregistered] == answers[registered], answers
    assert [a[0] for a in answers[registered]] == [400] * limit + [429]


async def test_unknown_names_quiet_for_a_month_are_let_go(session_client) -> None:
    client, session = session_client
    await _answers(client, phone(), 1)
    await session.execute(
        text("UPDATE unknown_name_attempts SET last_attempt_at = :long_ago"),
        {"long_ago": datetime(2020, 1, 1, tzinfo=UTC)},
    )
    recent = phone()
    await _answers(client, recent, 1)
    left = (await session.execute(text("SELECT failed_sign_ins FROM unknown_name_attempts"))).all()
    assert [row[0] for row in left] == [1]  # only the name tried just now


async def test_an_accounts_failures_quiet_for_a_month_start_again(
    session_client, staff_factory, accounts_settings
) -> None:
    client, session = session_client
    limit = accounts_settings.max_failed_sign_ins
    resident = await _resident(client, await staff_factory("school_staff", "410711100"))
    number = resident["account_number"]
    assert [a[0] for a in await _answers(client, number, limit - 1)] == [400] * (limit - 1)
    assert await _failures(session, "learning_account", "account_number", number) == (
        limit - 1,
        None,
    )
    # those failures were a month and more ago: the next one is the first again, no lock
    await session.execute(
        text("UPDATE learning_account SET last_failed_at = :long_ago WHERE account_number = :n"),
        {"long_ago": datetime(2020, 1, 1, tzinfo=UTC), "n": number},
    )
    assert [a[0] for a in await _answers(client, number, 1)] == [400]
    assert await _failures(session, "learning_account", "account_number", number) == (1, None)
    # recent failures still lock at the limit
    assert [a[0] for a in await _answers(client, number, limit)] == [400] * (limit - 1) + [429]
    failed, locked_until = await _failures(session, "learning_account", "account_number", number)
    assert failed == 0 and locked_until is not None


async def test_a_good_sign_in_forgets_the_failures_before_it(session_client, staff_factory) -> None:
    client, session = session_client
    await staff_factory("learning_point_staff", "410711100")
    username = await _newest_staff(session)
    await _answers(client, username, 2)
    stamped = await _staff_failures(session, username)
    assert stamped[0] == 2 and stamped[1] is not None
    good = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": username, "password": "correct horse battery"},
    )
    assert good.status_code == 200, good.text
    cleared = await _staff_failures(session, username)
    assert cleared == (0, None)

"""A cursor someone changed is a 400 problem naming it, never a database error."""

from __future__ import annotations

import uuid

import pytest

from kernel.pagination import encode_cursor
from testkit.http import bearer

ALTERED_ROW_IDS = [{"before": "x"}, {"before": 10**30}, {"before": True}, {"before": -1}, {"at": 3}]
ALTERED_UUIDS = [{"after": "x"}, {"after": 5}, {"after": None}, {"before": "x"}]


@pytest.mark.parametrize("position", ALTERED_ROW_IDS)
async def test_an_altered_credit_history_cursor_is_a_problem(client, issue_token, position) -> None:
    resident = issue_token("resident", subject=str(uuid.uuid4()))
    answer = await client.get(
        "/api/v1/me/credit-history",
        params={"cursor": encode_cursor(position)},
        headers=bearer(resident),
    )
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith("/invalid-cursor")


@pytest.mark.parametrize("position", ALTERED_UUIDS)
async def test_an_altered_conversions_cursor_is_a_problem(client, issue_token, position) -> None:
    staff = issue_token("staff", role="college_staff", unit="410711")
    answer = await client.get(
        "/api/v1/conversions", params={"cursor": encode_cursor(position)}, headers=bearer(staff)
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["type"].endswith("/invalid-cursor")


async def test_issued_cursors_still_page(client, issue_token) -> None:
    staff = issue_token("staff", role="college_staff", unit="410711")
    cursor = encode_cursor({"after": str(uuid.uuid4())})
    answer = await client.get(
        "/api/v1/conversions", params={"cursor": cursor}, headers=bearer(staff)
    )
    assert answer.status_code == 200 and answer.json()["items"] == []
    resident = issue_token("resident", subject=str(uuid.uuid4()))
    history = await client.get(
        "/api/v1/me/credit-history",
        params={"cursor": encode_cursor({"before": 12})},
        headers=bearer(resident),
    )
    assert history.status_code == 200 and history.json()["items"] == []

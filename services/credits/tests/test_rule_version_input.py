"""Input the rule versions and the ledger's routes refuse as problems, not 500s: days a rule
version cannot take effect on, and ids past their column's range (PostgreSQL and SQLite)."""

from __future__ import annotations

from datetime import date

import pytest

from credits.rules.models import RuleVersion
from credits.rules.service import published
from testkit.http import bearer


@pytest.mark.parametrize(
    "dates",
    [
        {"effective_from": "0001-01-01"},
        {"effective_from": "1999-12-31"},
        {"effective_from": "2101-01-01"},
        {"effective_from": "2026-01-01", "effective_to": "9999-12-31"},
    ],
)
async def test_a_version_outside_2000_to_2100_is_a_422_problem(
    session_client, issue_token, dates
) -> None:
    client, db = session_client
    college = issue_token("staff", role="college_staff", unit="410711")
    (default,) = [v for v in await published(db) if v.code == "muye-default"][:1]
    draft = await client.post(
        "/api/v1/rule-versions",
        json={"code": "muye-typo", "title": "typo in the year", "body": dict(default.body)} | dates,
        headers=bearer(college),
    )
    assert draft.status_code == 422, draft.text
    assert draft.headers["content-type"] == "application/problem+json"


async def test_a_version_on_the_bounds_is_a_draft_that_dry_runs(
    session_client, issue_token
) -> None:
    client, db = session_client
    college = issue_token("staff", role="college_staff", unit="410711")
    (default,) = [v for v in await published(db) if v.code == "muye-default"][:1]
    draft = await client.post(
        "/api/v1/rule-versions",
        json={
            "code": "muye-bounds",
            "title": "the widest version",
            "effective_from": "2000-01-01",
            "effective_to": "2100-12-31",
            "body": dict(default.body),
        },
        headers=bearer(college),
    )
    assert draft.status_code == 201, draft.text
    dry = await client.post(
        f"/api/v1/rule-versions/{draft.json()['id']}/publish",
        json={"dry_run": True, "reason": "试算"},
        headers=bearer(college),
    )
    assert dry.status_code == 200, dry.text


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/api/v1/credit-transactions/99999999999999999999"),
        ("GET", "/api/v1/credit-transactions/9223372036854775808"),  # 2**63
        ("GET", "/api/v1/credit-transactions/0"),
        ("GET", "/api/v1/rule-versions/3000000000"),
        ("GET", "/api/v1/rule-versions/99999999999999999999"),
        ("POST", "/api/v1/rule-versions/3000000000/publish"),
    ],
)
async def test_an_id_out_of_range_is_a_404_problem(client, issue_token, method, path) -> None:
    college = issue_token("staff", role="college_staff", unit="410711")
    response = await client.request(
        method, path, json={"dry_run": True, "reason": "试算"}, headers=bearer(college)
    )
    assert response.status_code == 404, (response.status_code, response.text[:200])
    assert response.headers["content-type"] == "application/problem+json"


async def test_publishing_an_out_of_range_id_for_real_is_a_404_problem(client, issue_token) -> None:
    college = issue_token("staff", role="college_staff", unit="410711")
    response = await client.post(
        "/api/v1/rule-versions/3000000000/publish",
        json={"dry_run": False, "reason": "发布"},
        headers=bearer(college),
    )
    assert response.status_code == 404, response.text[:200]


async def test_a_stored_draft_out_of_range_is_refused_on_publishing(
    session_client, issue_token
) -> None:
    # a draft kept before drafts were bounded: a 422 problem, not a 500 (OverflowError)
    client, db = session_client
    (default,) = [v for v in await published(db) if v.code == "muye-default"][:1]
    stored = RuleVersion(
        code="muye-old-typo",
        version=1,
        title="typo in the year",
        effective_from=date(1, 1, 1),
        body=dict(default.body),
        digest="0" * 64,
        created_by="test",
    )
    db.add(stored)
    await db.commit()
    college = issue_token("staff", role="college_staff", unit="410711")
    for dry_run in (True, False):
        response = await client.post(
            f"/api/v1/rule-versions/{stored.id}/publish",
            json={"dry_run": dry_run, "reason": "试算"},
            headers=bearer(college),
        )
        assert response.status_code == 422, response.text
        assert response.json()["type"].endswith("/rule-version-refused")

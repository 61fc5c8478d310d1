"""The gateway end to end: every forged token refused, an access matrix generated from the
route table, rate limits (in process and shared through Redis), metrics, page size."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from accounts.cli import DEMO_STAFF
from devstack.stack import ROOT, Stack
from gateway.routes import AUTHENTICATED, PUBLIC, ROUTES
from kernel.roles import STAFF_ROLES
from kernel.settings import DEFAULT_AUDIENCE, DEFAULT_ISSUER
from testkit.http import bearer, new_resident, password_token
from testkit.people import id_number, phone
from testkit.postgres import free_port
from testkit.redis import REDIS_URL, redis_answers
from testkit.tokens import forged_tokens


@pytest.fixture(scope="module")
def forged(stack: Stack) -> dict[str, str]:
    keys = json.loads((stack.config.data_dir / "keys" / "accounts-signing.jwks.json").read_text())
    return forged_tokens(keys["keys"][-1], issuer=DEFAULT_ISSUER, audience=DEFAULT_AUDIENCE)


def test_every_forged_token_is_a_401_problem_at_the_gateway(
    gateway: httpx.Client, forged: dict[str, str]
) -> None:
    for case, token in sorted(forged.items()):
        response = gateway.get("/api/v1/me", headers=bearer(token))
        assert response.status_code == 401, (case, response.status_code, response.text)
        assert response.headers["content-type"] == "application/problem+json", case
        assert response.headers["www-authenticate"] == "Bearer", case


def test_every_forged_token_is_refused_by_the_service_itself(
    stack: Stack, forged: dict[str, str]
) -> None:
    accounts = stack.config.url(stack.config.accounts_port)
    for case, token in sorted(forged.items()):
        response = httpx.get(f"{accounts}/api/v1/me", headers=bearer(token))
        assert response.status_code == 401, (case, response.text)


@pytest.fixture(scope="module")
def principals(stack: Stack) -> dict[str, str | None]:
    """A token for every role (None: anonymous), and someone else's account id."""
    with httpx.Client(base_url=stack.config.url(stack.config.gateway_port), timeout=10) as gateway:
        admin = password_token(gateway, DEMO_STAFF["username"], DEMO_STAFF["password"])
        villages = gateway.get(
            "/api/v1/units", params={"under": "410711100", "level": "learning_point"}
        )
        village = villages.json()["items"][0]["key"]
        tokens: dict[str, str | None] = {"anonymous": None, "district_admin": admin}
        units = {
            "learning_point_staff": village,
            "school_staff": "410711100",
            "school_staff_elsewhere": "410711101",
        }
        for name in [*STAFF_ROLES, "school_staff_elsewhere"]:
            if name == "district_admin":
                continue
            role = name.removesuffix("_elsewhere")
            username = f"m-{name[:12]}-{uuid.uuid4().hex[:6]}"
            created = gateway.post(
                "/api/v1/staff",
                json={
                    "username": username,
                    "display_name": role,
                    "password": "matrix-password",
                    "role": role,
                    "unit": units.get(name, "410711"),
                },
                headers=bearer(admin),
            )
            assert created.status_code == 201, created.text
            tokens[name] = password_token(gateway, username, "matrix-password")
        accounts = []
        for _ in range(2):
            made = gateway.post(
                "/api/v1/learning-accounts",
                json={
                    "name": "矩阵",
                    "id_number": id_number(),
                    "phone": phone(),
                    "residence_unit": village,
                    "consent": {
                        "version": "v1",
                        "at": "2026-11-01T00:00:00+08:00",
                        "channel": "paper",
                    },
                    "password": "matrix-resident",
                },
                headers=bearer(admin),
            )
            assert made.status_code == 201, made.text
            accounts.append(made.json())
        tokens["resident"] = password_token(
            gateway, accounts[0]["account_number"], "matrix-resident"
        )
        client_id = f"matrix-{uuid.uuid4().hex[:6]}"
        secret = gateway.post(
            "/api/v1/partner-clients",
            json={
                "client_id": client_id,
                "name": "p",
                "unit": "410711",
                "scopes": ["records:write"],
            },
            headers=bearer(admin),
        ).json()["client_secret"]
        partner = gateway.post(
            "/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        )
        tokens["partner"] = partner.json()["access_token"]
        tokens["_someone_else"] = accounts[1]["id"]
        return tokens


def _fill(template: str, someone_else: str) -> str:
    values = {
        "account_id": someone_else,
        "key": "410711",
        "client_id": "nobody-here",
        "activity_id": "00000000-0000-0000-0000-000000000000",
        "session_id": "00000000-0000-0000-0000-000000000000",
        "record_id": "1",
        "version_id": "1",
        "learner_id": someone_else,
        "transaction_id": "1",
        "certification_id": "00000000-0000-0000-0000-000000000000",
        "evidence_id": "00000000-0000-0000-0000-000000000000",
        "conversion_id": "00000000-0000-0000-0000-000000000000",
        "unit": "410711100",
        "year": "2026",
        "account_number": "41071100000000",
        "list_number": "1",
        "certificate_number": "MY2026-0000-0000",
    }
    return re.sub(r"\{([a-z_]+)\}", lambda m: values[m.group(1)], template)


def _cells() -> list[tuple[str, str, str]]:
    roles = ["anonymous", "resident", "partner", *STAFF_ROLES]
    cells = []
    for route in ROUTES:
        if route.access == PUBLIC:
            continue
        for method in route.methods:
            for role in roles:
                allowed = role != "anonymous" and (
                    route.access == AUTHENTICATED or role in route.access
                )
                if not allowed:
                    cells.append((method, route.template, role))
    return cells


@pytest.mark.parametrize(("method", "template", "role"), _cells())
def test_forbidden_cells_of_the_route_table_are_refused(
    gateway: httpx.Client, principals: dict[str, str | None], method: str, template: str, role: str
) -> None:
    token = principals[role]
    headers = bearer(token) if token else {}
    path = _fill(template, str(principals["_someone_else"]))
    response = gateway.request(method, path, json={} if method != "GET" else None, headers=headers)
    expected = {401} if token is None else {403, 404}
    assert response.status_code in expected, (method, path, role, response.text)
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("role", "expected"),
    [("resident", 404), ("school_staff_elsewhere", 404), ("school_staff", 200), ("auditor", 200)],
)
def test_someone_elses_account_is_visible_only_to_staff_covering_it(
    gateway: httpx.Client, principals: dict[str, str | None], role: str, expected: int
) -> None:
    token = principals[role]
    assert token is not None
    response = gateway.get(
        f"/api/v1/learning-accounts/{principals['_someone_else']}", headers=bearer(token)
    )
    assert response.status_code == expected


def test_page_size_over_100_is_refused_at_the_gateway(gateway: httpx.Client) -> None:
    response = gateway.get("/api/v1/units", params={"limit": "500"})
    assert response.status_code == 422
    assert response.json()["type"].endswith("/page-size-too-large")


def test_a_forwarded_answer_has_one_date_and_one_server(gateway: httpx.Client) -> None:
    """The service's own Date and Server were passed on beside the gateway's: two of each
    (a client joining repeated fields saw "Mon, 07 Dec ..., Mon, 07 Dec ...")."""
    for path in ("/api/v1/categories", "/api/v1/units"):  # credits and accounts
        answer = gateway.get(path)
        assert answer.status_code == 200, answer.text
        assert len(answer.headers.get_list("date")) == 1, answer.headers
        assert len(answer.headers.get_list("server")) == 1, answer.headers


def test_metrics_count_requests_by_route_template(gateway: httpx.Client) -> None:
    gateway.get("/api/v1/units/410711")
    text = gateway.get("/metrics").text
    assert 'gateway_requests_total{method="GET",route="/api/v1/units/{key}",status="200"}' in text
    assert "gateway_request_duration_seconds_bucket" in text


@contextmanager
def _extra_gateway(stack: Stack, **env: str) -> Iterator[str]:
    port = free_port()
    environment = {**stack.config.env(), "GATEWAY_PORT": str(port), **env}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "gateway.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_per_address_limit_gives_429_with_retry_after(stack: Stack) -> None:
    with _extra_gateway(stack, GATEWAY_RATE_LIMIT_PER_IP="5/minute") as url:
        answers = [httpx.get(f"{url}/api/v1/unit-levels").status_code for _ in range(7)]
        assert answers[:5] == [200] * 5
        refused = httpx.get(f"{url}/api/v1/unit-levels")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.json()["type"].endswith("/rate-limited")


def test_requests_with_a_bad_token_count_against_their_address(stack: Stack) -> None:
    """The token is checked before the limits are counted (one round trip for all of them), but
    a refused token is still counted: a flood of forged tokens is limited like any other."""
    with _extra_gateway(stack, GATEWAY_RATE_LIMIT_PER_IP="3/minute") as url:
        forged = {"Authorization": "Bearer not-a-token"}
        codes = [httpx.get(f"{url}/api/v1/me", headers=forged).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        assert httpx.get(f"{url}/api/v1/unit-levels").status_code == 429  # the same address


def test_sign_in_limit_is_stricter_than_the_address_limit(stack: Stack) -> None:
    with _extra_gateway(stack, GATEWAY_RATE_LIMIT_SIGN_IN="2/minute") as url:
        client = httpx.Client(base_url=url)
        form = {
            "grant_type": "password",
            "username": f"nobody-{uuid.uuid4().hex[:8]}",  # locks no real account
            "password": "not the password",
        }
        codes = [client.post("/auth/token", data=form).status_code for _ in range(3)]
        assert codes == [400, 400, 429]
        refused = client.post("/auth/token", data=form)
        assert refused.json()["type"].endswith("/rate-limited")
        assert "sign-in" in refused.json()["detail"]
        assert client.get("/api/v1/unit-levels").status_code == 200  # other routes unaffected


def test_per_client_limit_follows_the_token_not_the_address(stack: Stack) -> None:
    with _extra_gateway(stack, GATEWAY_RATE_LIMIT_PER_CLIENT="3/minute") as url:
        token = password_token(
            httpx.Client(base_url=url), DEMO_STAFF["username"], DEMO_STAFF["password"]
        )
        seen = [httpx.get(f"{url}/api/v1/me", headers=bearer(token)).status_code for _ in range(4)]
        assert seen == [200, 200, 200, 429]
        assert httpx.get(f"{url}/api/v1/unit-levels").status_code == 200  # public: address only


@pytest.mark.skipif(not redis_answers(), reason="no Redis at 127.0.0.1:6379")
def test_two_gateways_share_one_limit_through_redis(stack: Stack) -> None:
    shared = {
        "GATEWAY_REDIS_URL": REDIS_URL,
        "GATEWAY_RATE_LIMIT_PER_IP": "6/minute",
        "GATEWAY_RATE_LIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex}",
    }
    with _extra_gateway(stack, **shared) as url_a, _extra_gateway(stack, **shared) as url_b:
        codes = [httpx.get(f"{u}/api/v1/unit-levels").status_code for u in [url_a, url_b] * 4]
    assert codes[:6] == [200] * 6
    assert codes[6:] == [429, 429]


@pytest.mark.skipif(not redis_answers(), reason="no Redis at 127.0.0.1:6379")
def test_a_residents_write_through_one_gateway_is_in_their_portfolio_through_another(
    stack: Stack,
) -> None:
    """Two gateway processes sharing the portfolio generations through Redis: a portfolio one
    of them keeps is not served after the resident wrote through the other."""
    shared = {"GATEWAY_REDIS_URL": REDIS_URL, "GATEWAY_RATE_LIMIT_KEY_PREFIX": uuid.uuid4().hex}
    with _extra_gateway(stack, **shared) as url_a, _extra_gateway(stack, **shared) as url_b:
        a, b = httpx.Client(base_url=url_a), httpx.Client(base_url=url_b)
        admin = password_token(a, DEMO_STAFF["username"], DEMO_STAFF["password"])
        account = new_resident(a, admin, town="410711100", password="zhao-gui-lan-pass")
        resident = bearer(password_token(a, str(account["account_number"]), "zhao-gui-lan-pass"))
        soon = datetime.now(UTC) + timedelta(days=2)
        course = a.post(
            "/api/v1/activities",
            json={
                "title": "家庭教育讲座",
                "kind": "lecture",
                "category": "family_education",
                "mode": "offline",
                "host_unit": "410711100",
                "sessions": [
                    {
                        "starts_at": soon.isoformat(),
                        "ends_at": (soon + timedelta(hours=2)).isoformat(),
                        "place": "牧野区社区学院",
                    }
                ],
            },
            headers=bearer(admin),
        ).json()
        a.get("/api/v1/me/portfolio", headers=resident)
        kept = a.get("/api/v1/me/portfolio", headers=resident)
        assert "age" in kept.headers and kept.json()["enrolments"] == []
        enrolled = b.post(f"/api/v1/activities/{course['id']}/enrolments", headers=resident)
        assert enrolled.status_code == 201, enrolled.text
        after = a.get("/api/v1/me/portfolio", headers=resident)
        assert "age" not in after.headers
        assert [e["activity_id"] for e in after.json()["enrolments"]] == [course["id"]]

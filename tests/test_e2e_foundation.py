"""The walking skeleton end to end: real processes, real PostgreSQL, only through the gateway."""

from __future__ import annotations

import json
import time
import uuid

import httpx

from accounts.cli import DEMO_STAFF
from devstack.stack import Stack


def _sign_in(gateway: httpx.Client) -> str:
    response = gateway.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": DEMO_STAFF["username"],
            "password": DEMO_STAFF["password"],
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return str(response.json()["access_token"])


def test_readyz_reports_every_service_ready(gateway: httpx.Client) -> None:
    response = gateway.get("/readyz")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert set(checks) == {"gateway", "accounts", "credits"}
    for service in ("accounts", "credits"):
        database = checks[service]["checks"]["database"]
        assert database == {**database, "status": "ready", "backend": "postgresql"}


def test_staff_signs_in_and_reads_own_profile(gateway: httpx.Client) -> None:
    token = _sign_in(gateway)
    response = gateway.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["unit_name"] == "牧野区社区学院"


def test_both_services_answer_through_the_gateway(gateway: httpx.Client) -> None:
    town = gateway.get("/api/v1/units/410711100")
    assert town.status_code == 200
    assert town.json()["division_name"] == "王村镇"
    categories = gateway.get("/api/v1/categories")
    assert categories.status_code == 200
    assert "digital_skills" in {c["code"] for c in categories.json()}


def test_protected_route_without_token_is_refused_at_the_gateway(gateway: httpx.Client) -> None:
    response = gateway.get("/api/v1/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["type"].endswith("/invalid-token")


def test_forged_token_is_refused_at_the_gateway(gateway: httpx.Client) -> None:
    token = _sign_in(gateway)
    head, payload, signature = token.split(".")
    response = gateway.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {head}.{payload}.{signature[::-1]}"}
    )
    assert response.status_code == 401


def test_unrouted_path_is_a_404_problem(gateway: httpx.Client) -> None:
    response = gateway.get("/internal/admin")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_wrong_method_is_a_405_problem(gateway: httpx.Client) -> None:
    response = gateway.delete("/api/v1/categories")
    assert response.status_code == 405
    assert response.json()["type"].endswith("/method-not-allowed")


def test_oversized_body_is_refused_before_forwarding(gateway: httpx.Client) -> None:
    response = gateway.post("/auth/token", content=b"x" * 2_000_001)
    assert response.status_code == 413
    assert response.json()["type"].endswith("/payload-too-large")


def test_request_id_is_carried_to_the_service(gateway: httpx.Client, stack: Stack) -> None:
    request_id = f"e2e-{uuid.uuid4().hex}"
    response = gateway.get("/api/v1/units/410711", headers={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] == request_id
    # the access line is written once the response is sent, so it may trail the answer a little
    deadline = time.monotonic() + 5
    while True:
        log = (stack.config.data_dir / "accounts.log").read_text()
        lines = [json.loads(line) for line in log.splitlines() if request_id in line]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert any(line.get("path") == "/api/v1/units/410711" for line in lines)


def test_service_outage_is_a_503_and_the_gateway_recovers(
    gateway: httpx.Client, stack: Stack
) -> None:
    stack.stop(only=("credits",))
    try:
        down = gateway.get("/api/v1/categories")
        assert down.status_code == 503
        assert down.headers["retry-after"] == "5"
        assert down.json()["type"].endswith("/upstream-unavailable")
        ready = gateway.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["credits"]["status"] == "failing"
        assert ready.json()["checks"]["accounts"]["status"] == "ready"
    finally:
        stack.start(only=("credits",), log_dir=stack.config.data_dir)
        stack.wait_ready()
    assert gateway.get("/api/v1/categories").status_code == 200

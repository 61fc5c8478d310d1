"""The route table: denied by default, templates matched exactly."""

from __future__ import annotations

import pytest

from gateway.routes import AUTHENTICATED, PUBLIC, ROUTES, match, methods_on


@pytest.mark.parametrize(
    ("method", "path", "template"),
    [
        ("GET", "/api/v1/units/410711100", "/api/v1/units/{key}"),
        ("GET", "/api/v1/units", "/api/v1/units"),
        ("POST", "/auth/token", "/auth/token"),
        (
            "DELETE",
            "/api/v1/activities/a1/enrolments/me",
            "/api/v1/activities/{activity_id}/enrolments/me",
        ),
        (
            "DELETE",
            "/api/v1/activities/a1/enrolments/41071100000000",
            "/api/v1/activities/{activity_id}/enrolments/{account_number}",
        ),
    ],
)
def test_known_routes_match_their_template(method: str, path: str, template: str) -> None:
    route, known = match(method, path)
    assert known and route is not None and route.template == template


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/units/410711/extra",
        "/api/v1/units/",
        "/api/v1/unitsX",
        "/admin",
        "/api/v1/me/../units",
    ],
)
def test_anything_else_is_not_routed(path: str) -> None:
    route, known = match("GET", path)
    assert route is None and not known


@pytest.mark.parametrize("method", ["DELETE", "HEAD"])
def test_wrong_method_on_a_known_path_is_told_apart(method: str) -> None:
    route, known = match(method, "/api/v1/units")
    assert route is None and known


def test_the_methods_on_a_path_are_those_of_every_route_it_matches() -> None:
    assert methods_on("/api/v1/learning-accounts/a1") == ["GET", "PATCH"]
    assert methods_on("/admin") == []


def test_every_route_declares_its_access() -> None:
    for route in ROUTES:
        assert route.access in (PUBLIC, AUTHENTICATED) or (
            isinstance(route.access, tuple) and route.access
        ), route

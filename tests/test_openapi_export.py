"""The exported OpenAPI documents in openapi/ match the code (re-export with `make openapi`)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from credits.statistics.groups import LOOKUP_CHUNK
from devstack.openapi import OPENAPI_DIR, documents, render
from gateway.routes import ROUTES

CURRENT = documents()


def _refs(node: Any) -> list[str]:
    """Every $ref under ``node``."""
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


@pytest.mark.parametrize("name", sorted(CURRENT))
def test_exported_document_matches_the_code(name: str) -> None:
    exported = (OPENAPI_DIR / name).read_text(encoding="utf-8")
    assert exported == render(CURRENT[name]), f"openapi/{name} is stale: run `make openapi`"


def test_gateway_document_publishes_every_route_and_only_those() -> None:
    gateway = CURRENT["gateway.json"]
    published = {
        (method.upper(), path)
        for path, operations in gateway["paths"].items()
        for method in operations
        if path not in ("/healthz", "/readyz")
    }
    routed = {(m, r.template) for r in ROUTES for m in r.methods}
    assert published == routed
    # the portfolios the gateway composes itself are published like the rest, with their roles
    learner = gateway["paths"]["/api/v1/learners/{learner_id}/portfolio"]["get"]
    assert learner["security"] == [{"bearerAuth": []}] and "auditor" in learner["x-roles"]
    assert gateway["paths"]["/api/v1/me/portfolio"]["get"]["x-roles"] == ["resident"]
    portfolio = gateway["components"]["schemas"]["Portfolio"]["properties"]
    for ref in _refs(portfolio):
        assert ref.removeprefix("#/components/schemas/") in gateway["components"]["schemas"]
    assert gateway["paths"]["/api/v1/me"]["get"]["security"] == [{"bearerAuth": []}]
    assert "security" not in gateway["paths"]["/api/v1/units"]["get"]
    assert gateway["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_gateway_serves_the_same_document(gateway) -> None:  # type: ignore[no-untyped-def]
    served = gateway.get("/openapi.json")
    assert served.status_code == 200
    assert served.json()["paths"] == CURRENT["gateway.json"]["paths"]


def test_credits_asks_for_groups_in_chunks_accounts_accepts() -> None:
    # the two services keep the limit apart (neither imports the other): the contract joins them
    lookup = CURRENT["accounts.json"]["components"]["schemas"]["GroupLookup"]
    assert 1 <= LOOKUP_CHUNK <= lookup["properties"]["learners"]["maxItems"]


def _resolved(document: dict[str, Any], name: str) -> dict[str, Any]:
    """A schema of the document with its components, for jsonschema to follow the refs."""
    return {**document["components"]["schemas"][name], "components": document["components"]}


def test_errors_are_documented_as_the_problems_they_are(gateway) -> None:  # type: ignore[no-untyped-def]
    """Every operation's 422 is the validation problem and every other error a problem, as
    sent (FastAPI documented its own {detail: [{loc, msg}]}, which no route ever sends); real
    answers through the gateway match the documented schemas."""
    for name, document in CURRENT.items():
        assert "HTTPValidationError" not in document["components"]["schemas"], name
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                responses = operation["responses"]
                assert set(responses["default"]["content"]) == {"application/problem+json"}
                if "422" in responses:
                    (media,) = responses["422"]["content"].values()
                    assert media["schema"]["$ref"].endswith("/ValidationProblem"), (path, method)
    document = CURRENT["gateway.json"]
    invalid = gateway.get("/api/v1/units", params={"level": "x" * 41})  # over 40 characters
    assert invalid.status_code == 422
    jsonschema.validate(invalid.json(), _resolved(document, "ValidationProblem"))
    missing = gateway.get("/api/v1/units/no-such-unit")
    assert missing.status_code == 404
    jsonschema.validate(missing.json(), _resolved(document, "Problem"))
    with pytest.raises(jsonschema.ValidationError):  # the schema says something
        jsonschema.validate(
            {"detail": [{"loc": ["query"], "msg": "x"}]}, _resolved(document, "ValidationProblem")
        )

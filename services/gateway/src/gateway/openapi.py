"""The gateway's public API document: the services' routed operations, merged.

Only operations in the route table are published, each marked with the security it needs, so
the document says exactly what the gateway lets through.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from gateway.routes import COMPOSED, PUBLIC, ROUTES
from kernel.app import BEARER_SCHEME
from kernel.problemdocs import with_problems

GATEWAY_PATHS: dict[str, Any] = {
    "/healthz": {"get": {"summary": "The gateway process is alive", "tags": ["health"]}},
    "/readyz": {
        "get": {"summary": "The gateway and every service behind it are ready", "tags": ["health"]}
    },
}

_PORTFOLIO_DESCRIPTION = (
    "Profile (masked), enrolments, attendance (check-ins), hours by year, category and mode "
    "(online and offline), recent learning records, credit balance and history, "
    "certifications, conversions and awards, fetched from the services at once. Records, "
    "check-ins and ledger entries come as their first page with `next_cursor`; page on with "
    "the part's own route. `complete` is false and `missing` names each part that could not "
    "be had (its value is null); partial data is never presented as complete. Awards are the "
    "approved certifications of outcome type `award` (there is no awards register yet)."
)


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _list(name: str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(name)}


PORTFOLIO_SCHEMA: dict[str, Any] = {
    "title": "Portfolio",
    "description": "终身学习电子档案: one learner's parts; a part that could not be had is null.",
    "type": "object",
    "required": ["complete", "missing"],
    "properties": {
        "complete": {"type": "boolean", "description": "every part is here"},
        "missing": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "part name -> why it could not be had",
        },
        "profile": _nullable(_ref("AccountPublic")),
        "enrolments": _nullable(_list("EnrolmentPublic")),
        "attendance": _nullable(_ref("Page_AttendancePublic_")),
        "hours": _nullable(_ref("HoursSummary")),
        "recent_records": _nullable(_ref("Page_RecordPublic_")),
        "credit_balance": _nullable(_ref("CreditSummary")),
        "credit_history": _nullable(_ref("Page_TransactionPublic_")),
        "certifications": _nullable(_list("CertificationPublic")),
        "conversions": _nullable(_list("ConversionPublic")),
        "awards": _nullable(_list("CertificationPublic")),
    },
}
_PORTFOLIO_RESPONSES = {
    "200": {
        "description": "The portfolio (check `complete`)",
        "content": {"application/json": {"schema": _ref("Portfolio")}},
    }
}

# the routes the gateway composes itself (upstream COMPOSED in the route table)
COMPOSED_OPERATIONS: dict[str, dict[str, Any]] = {
    "/api/v1/me/portfolio": {
        "get": {
            "summary": "The signed-in resident's e-portfolio (终身学习电子档案)",
            "description": _PORTFOLIO_DESCRIPTION,
            "operationId": "my_portfolio",
            "tags": ["portfolio"],
            "responses": _PORTFOLIO_RESPONSES,
        }
    },
    "/api/v1/learners/{learner_id}/portfolio": {
        "get": {
            "summary": "A learner's e-portfolio, for staff covering the learner and auditors",
            "description": _PORTFOLIO_DESCRIPTION
            + " The accounts service decides first whether the caller may see the learner; "
            "when not, the answer is 404 and nothing else is fetched.",
            "operationId": "learner_portfolio",
            "tags": ["portfolio"],
            "parameters": [
                {
                    "name": "learner_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "format": "uuid"},
                }
            ],
            "responses": _PORTFOLIO_RESPONSES,
        }
    },
}


def merge(service_docs: Mapping[str, Mapping[str, Any]], *, version: str) -> dict[str, Any]:
    """Build the public document from each upstream's OpenAPI document (by service name)."""
    paths: dict[str, Any] = copy.deepcopy(GATEWAY_PATHS)
    schemas: dict[str, Any] = {}
    for route in ROUTES:
        if route.upstream == COMPOSED:
            doc: Mapping[str, Any] = {"paths": COMPOSED_OPERATIONS}
        else:
            doc = service_docs[route.upstream]
        operations = doc.get("paths", {}).get(route.template, {})
        for method in route.methods:
            operation = operations.get(method.lower())
            if operation is None:
                raise ValueError(f"{route.upstream} has no {method} {route.template}")
            published = copy.deepcopy(operation)
            if route.access != PUBLIC:
                published["security"] = [{"bearerAuth": []}]
                if isinstance(route.access, tuple):
                    published["x-roles"] = list(route.access)
            paths.setdefault(route.template, {})[method.lower()] = published
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            if name in schemas and schemas[name] != schema:
                raise ValueError(f"schema {name} differs between services")
            schemas[name] = schema
    schemas["Portfolio"] = PORTFOLIO_SCHEMA
    # the operations the gateway answers itself (health, composed portfolios) answer errors
    # as problems too: said as the services' documents say them
    merged = with_problems(
        {"paths": dict(sorted(paths.items())), "components": {"schemas": schemas}}
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Muye learning-credit bank",
            "version": version,
            "description": "The public API of the Muye learning-credit bank (学分银行), "
            "served by the gateway. Errors are RFC 9457 application/problem+json.",
        },
        "paths": merged["paths"],
        "components": {
            "schemas": dict(sorted(merged["components"]["schemas"].items())),
            "securitySchemes": BEARER_SCHEME,
        },
    }

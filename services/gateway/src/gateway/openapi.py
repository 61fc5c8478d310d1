"""The gateway's public API document: the services' routed operations, merged.

Only operations in the route table are published, each marked with the security it needs, so
the document says exactly what the gateway lets through.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from gateway.routes import PUBLIC, ROUTES
from kernel.app import BEARER_SCHEME

GATEWAY_PATHS: dict[str, Any] = {
    "/healthz": {"get": {"summary": "The gateway process is alive", "tags": ["health"]}},
    "/readyz": {
        "get": {"summary": "The gateway and every service behind it are ready", "tags": ["health"]}
    },
    "/api/v1/me/portfolio": {
        "get": {
            "summary": "The signed-in resident's e-portfolio (终身学习电子档案)",
            "description": "Profile (masked), enrolments, hours by year, category and mode, and "
            "recent records, fetched from the services at once. `complete` is false and "
            "`missing` names each part that could not be had; `not_yet_offered` lists parts "
            "that arrive with the credit ledger.",
            "tags": ["portfolio"],
            "security": [{"bearerAuth": []}],
            "x-roles": ["resident"],
        }
    },
}


def merge(service_docs: Mapping[str, Mapping[str, Any]], *, version: str) -> dict[str, Any]:
    """Build the public document from each upstream's OpenAPI document (by service name)."""
    paths: dict[str, Any] = copy.deepcopy(GATEWAY_PATHS)
    schemas: dict[str, Any] = {}
    for route in ROUTES:
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
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Muye learning-credit bank",
            "version": version,
            "description": "The public API of the Muye learning-credit bank (学分银行), "
            "served by the gateway. Errors are RFC 9457 application/problem+json.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(schemas.items())), "securitySchemes": BEARER_SCHEME},
    }

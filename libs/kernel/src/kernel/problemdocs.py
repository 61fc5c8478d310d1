"""The problems every route may answer, said in the OpenAPI document as they are sent.

FastAPI documents a 422 as its own ``HTTPValidationError`` (``detail: [{loc, msg}]``), while
every error here is RFC 9457 ``application/problem+json`` (:mod:`kernel.problems`): a partner
generating a client from the exported contract got the wrong shape for every error, and no
other error at all. :func:`with_problems` rewrites the generated document: each operation's
422 is the validation problem (``errors: [{location, message, type}]``), and a ``default``
response names the problem every other error is.
"""

from __future__ import annotations

from typing import Any

from kernel.problems import PROBLEM_JSON, PROBLEMS

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; extension members depend on the type",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri", "description": f"stable, under {PROBLEMS}"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "what happened and what to do (English)"},
        "detail_zh": {
            "type": "string",
            "description": "the same in Chinese, where a resident may read it",
        },
        "request_id": {"type": "string", "description": "quote it when asking for help"},
    },
    "additionalProperties": True,
}
VALIDATION_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "ValidationProblem",
    "description": f"the problem {PROBLEMS}validation-error: each part of the request that does"
    " not match the schema",
    "allOf": [
        {"$ref": "#/components/schemas/Problem"},
        {
            "type": "object",
            "required": ["errors"],
            "properties": {
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["location", "message", "type"],
                        "properties": {
                            "location": {"type": "array", "items": {"type": "string"}},
                            "message": {"type": "string"},
                            "type": {"type": "string"},
                        },
                    },
                }
            },
        },
    ],
}
_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


def _content(name: str) -> dict[str, Any]:
    return {PROBLEM_JSON: {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def with_problems(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with every operation's errors as the problems they are (in place)."""
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = {
                    "description": "The request does not match the schema (each part named)",
                    "content": _content("ValidationProblem"),
                }
            responses.setdefault(
                "default",
                {
                    "description": "An error, as RFC 9457 problem details",
                    "content": _content("Problem"),
                },
            )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["ValidationProblem"] = VALIDATION_PROBLEM_SCHEMA
    return document

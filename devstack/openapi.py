"""Export the OpenAPI documents to openapi/ (`make openapi`); tests compare them to the code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from accounts.main import create_app as accounts_app
from credits.main import create_app as credits_app
from devstack.stack import ROOT
from gateway import openapi as gateway_openapi

OPENAPI_DIR = ROOT / "openapi"


def documents() -> dict[str, dict[str, Any]]:
    """The current documents, by file name, built from the code."""
    services = {"accounts": accounts_app().openapi(), "credits": credits_app().openapi()}
    gateway = gateway_openapi.merge(services, version="0.1.0")
    return {
        "accounts.json": services["accounts"],
        "credits.json": services["credits"],
        "gateway.json": gateway,
    }


def render(document: dict[str, Any]) -> str:
    """The exact text written for a document."""
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def main() -> None:
    """Write every document to openapi/."""
    OPENAPI_DIR.mkdir(exist_ok=True)
    for name, document in documents().items():
        path: Path = OPENAPI_DIR / name
        path.write_text(render(document), encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

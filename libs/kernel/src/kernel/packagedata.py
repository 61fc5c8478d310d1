"""Reference data shipped inside a service package (categories, rules, targets, standards)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def read_json(package: str, relative: str) -> dict[str, Any]:
    """The JSON object at ``relative`` inside ``package`` (read as UTF-8)."""
    text = resources.files(package).joinpath(relative).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data

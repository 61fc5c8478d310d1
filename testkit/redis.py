"""The Redis our machines run on loopback, for the tests and benchmarks that share state
through it (rate limits, the portfolio cache's generations); they skip when it is absent."""

from __future__ import annotations

import socket

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_answers() -> bool:
    """Whether something accepts connections on Redis's port on loopback."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False

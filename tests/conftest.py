"""End-to-end fixtures: the three services as real uvicorn processes on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack.stack import Stack, StackConfig, prepare
from testkit.postgres import PostgresServer, free_port


@pytest.fixture(scope="session")
def stack(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Prepared databases (migrated by Alembic, seeded) and the three services running."""
    data_dir: Path = tmp_path_factory.mktemp("e2e")
    config = StackConfig(
        data_dir=data_dir,
        gateway_port=free_port(),
        accounts_port=free_port(),
        credits_port=free_port(),
        accounts_database_url=postgres.create_database("e2e_accounts"),
        credits_database_url=postgres.create_database("e2e_credits"),
        extra_env={
            "ACCOUNTS_LOG_LEVEL": "INFO",
            "CREDITS_LOG_LEVEL": "INFO",
            # The suite signs in hundreds of times from one address within a minute; the limits
            # themselves are tested on gateways of their own (tests/test_e2e_gateway.py).
            "GATEWAY_RATE_LIMIT_SIGN_IN": "100000/minute",
            "GATEWAY_RATE_LIMIT_PER_IP": "1000000/minute",
            "GATEWAY_RATE_LIMIT_PER_CLIENT": "1000000/minute",
        },
    )
    prepare(config)
    running = Stack(config)
    running.start(log_dir=data_dir)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


@pytest.fixture
def gateway(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.config.url(stack.config.gateway_port), timeout=10) as client:
        yield client
